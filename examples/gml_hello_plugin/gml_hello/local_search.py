"""``HelloLocalSearcher``: (1+1)-style local search in the unit cube, for gml-hpo.

Half of the suggestions perturb the best point so far with Gaussian noise (sigma 0.1 in
each dimension's unit encoding), the other half are uniform samples; needs gml-hpo.
"""

from __future__ import annotations

from gml_hpo.searchers.base import Params, Searcher


class HelloLocalSearcher(Searcher):
    def _suggest(self, running: list[Params]) -> Params | None:
        scored = [(self.score(r), p) for p, r in self.history if r is not None]
        if not scored or self.rng.random() < 0.5:
            return self.random_new(running)
        best = max(scored, key=lambda s: s[0])[1]
        units = [min(1.0, max(0.0, u + self.rng.gauss(0.0, 0.1))) for u in self.space.to_unit(best)]
        return self.space.from_unit(units)
