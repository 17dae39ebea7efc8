"""Evidence: the plain numbers that inspection and probes measured.

A flat mapping from a measurement's name to plain data (numbers, lists, dicts of
numbers), readable as attributes. Stages write it; rules only read it, so a rule
can be tested on a hand-made ``Evidence(feature_scale={"x": 5120.0})``. A key that
was not measured is simply absent (``ev.get("key")`` is None) and rules that need
it stay silent.
"""

from __future__ import annotations

from typing import Any


class Evidence(dict):
    """Measured facts by name; ``ev.feature_scale`` is ``ev["feature_scale"]``."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"evidence {key!r} was not measured") from None

    def has(self, *keys: str) -> bool:
        """True when every key was measured (and is not None)."""
        return all(self.get(k) is not None for k in keys)
