"""Where the data folders shipped with symgrad live: `templates/` and `csrc/` are top-level in the
repository and installed as the (namespace) packages `symgrad.templates` and `symgrad.csrc`."""
from __future__ import annotations

import functools
import importlib.util
import os


@functools.lru_cache(maxsize=None)
def resource_dir(name: str) -> str | None:
    """The folder of `symgrad.<name>` (installed), else `<repo>/<name>` (a source checkout)."""
    try:
        spec = importlib.util.find_spec(f"symgrad.{name}")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isdir(location):
            return location
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name)
    return here if os.path.isdir(here) else None
