"""Rendering trial commands: every substituted value is exactly one shell word.

A template is bash text with ``{name}`` placeholders. Each value (a search value, a file
name matched by a ``File`` glob, ``{trial_dir}``) is formatted as typed on a command line
and then shell-quoted (:func:`shlex.quote`), so no value is ever run as shell code and a
path with spaces or quotes stays one argument. Plain values (``0.1``, ``resnet18``) need no
quotes and are written unchanged.

Templates written for the old, unquoted substitution keep working where the quotes
surround exactly one placeholder (``'{x}'`` or ``"{x}"``): those quotes are dropped and
the value quoted by gml instead. A placeholder anywhere else inside a quoted string
(``bash -c 'train {x}'``) cannot be quoted safely (the string may be re-parsed by
another shell) and is a configuration error with the way out: close the quotes around
the placeholder (``echo 'acc='{x}' done'``) or pass the value as an argument
(``bash -c 'train "$1"' _ {x}``).
"""

from __future__ import annotations

import shlex
import string
from typing import Any

import attrs

from .space import format_value

_NONE, _SINGLE, _DOUBLE, _ANSI, _ESCAPED = "none", "single", "double", "ansi", "escaped"


class TemplateQuoteError(ValueError):
    """A placeholder sits inside a quoted string of the template."""


@attrs.frozen
class _Field:
    name: str
    spec: str
    conversion: str | None


def _scan(text: str, state: str) -> str:
    """The bash quoting state after ``text``, starting in ``state`` (``_ESCAPED``: a
    backslash outside quotes ends it)."""
    if state == _ESCAPED:
        state, text = _NONE, text[1:]
    i = 0
    while i < len(text):
        c = text[i]
        if state == _SINGLE:
            if c == "'":
                state = _NONE
        elif state == _ANSI:
            if c == "\\":
                i += 1
            elif c == "'":
                state = _NONE
        elif state == _DOUBLE:
            if c == "\\":
                i += 1
            elif c == '"':
                state = _NONE
        else:
            if c == "\\":
                if i + 1 == len(text):
                    return _ESCAPED
                i += 1
            elif c == "'":
                state = _SINGLE
            elif c == '"':
                state = _DOUBLE
            elif c == "$" and text[i + 1:i + 2] == "'":
                state, i = _ANSI, i + 1
        i += 1
    return state


@attrs.frozen
class CommandTemplate:
    """A parsed template: literal texts and fields, with redundant quotes around lone
    placeholders removed (see the module docstring)."""

    parts: tuple  # of str | _Field

    @classmethod
    def parse(cls, template: str) -> CommandTemplate:
        """Parse ``template``; raise ``ValueError`` for bad braces and :class:`TemplateQuoteError`
        for a placeholder inside a quoted string."""
        parts: list[Any] = []
        for literal, field, spec, conv in string.Formatter().parse(template):
            if literal:
                parts.append(literal)
            if field is not None:
                parts.append(_Field(field, spec or "", conv))
        # walk the parts, tracking the quoting state; strip quotes around lone placeholders
        state = before = _NONE
        for i, part in enumerate(parts):
            if isinstance(part, str):
                before, state = state, _scan(part, state)
                continue
            if state == _NONE:
                continue
            prev = parts[i - 1] if i > 0 and isinstance(parts[i - 1], str) else ""
            nxt = parts[i + 1] if i + 1 < len(parts) and isinstance(parts[i + 1], str) else ""
            quote = "'" if state == _SINGLE else '"' if state == _DOUBLE else None
            if state == _ESCAPED:
                raise TemplateQuoteError(f"placeholder '{{{part.name}}}' follows a backslash; remove it "
                                         "(gml shell-quotes every value)")
            lone = (quote is not None and prev.endswith(quote) and _scan(prev[:-1], before) == _NONE
                    and nxt.startswith(quote))
            if not lone:
                raise TemplateQuoteError(
                    f"placeholder '{{{part.name}}}' is inside a quoted string; gml shell-quotes every value, "
                    f"so close the quotes around it ('text '{{{part.name}}}' text') or, for bash -c, pass it "
                    f"as an argument (bash -c 'train \"$1\"' _ {{{part.name}}})")
            parts[i - 1] = prev[:-1]
            parts[i + 1] = nxt[1:]
            state = _NONE
            # the following literal is scanned from the unquoted state when the loop reaches it
        return cls(tuple(p for p in parts if not (isinstance(p, str) and not p)))

    @property
    def fields(self) -> list[str]:
        return [p.name for p in self.parts if isinstance(p, _Field)]

    def render(self, values: dict[str, Any]) -> str:
        """The command with every value formatted and shell-quoted."""
        fmt = string.Formatter()
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = values[part.name]
            if part.conversion:
                value = fmt.convert_field(value, part.conversion)
            text = format(value, part.spec) if part.spec else format_value(value)
            out.append(shlex.quote(text))
        return "".join(out)


def render_command(template: str, values: dict[str, Any]) -> str:
    """Render ``template`` with shell-quoted ``values`` (see :class:`CommandTemplate`)."""
    return CommandTemplate.parse(template).render(values)
