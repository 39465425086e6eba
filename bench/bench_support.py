"""What the benchmark scripts share. bench/ is a folder of scripts, not a package: each
script's folder is on sys.path, so `from bench_support import bench_queries` works."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def bench_queries() -> ModuleType:
    """bench/queries.py as a module (its `prepare` of a demo database in a folder, `timed`
    medians): imported by path, since its name would clash with the `queries` package."""
    spec = importlib.util.spec_from_file_location("bench_queries", ROOT / "bench" / "queries.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
