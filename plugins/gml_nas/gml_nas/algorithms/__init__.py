"""One-shot NAS algorithms: ``BigNAS`` (sandwich rule, in-place distillation) and ``SPOS``."""
