"""RECRAFT without ε-recalibration: the same knobs as RECRAFT (ε then only weights FA)."""
from __future__ import annotations

from search_spaces.recraft import defaults, space  # noqa: F401 - the same space, on purpose
