"""A viewer's rollups on the mirror see only the runs Postgres lets the viewer read
(docs/access.md).

`Filters.visible_runs` holds those run ids (from `ingest.access.viewer.visible_runs`: row-level
security decides). On DuckDB, `restriction(con, filters_params)` turns them into the
mirror's dense run keys, registers them on `con` as the table `visible_run_keys`, and
returns the expressions that fill `{{engine.visible_run_filter}}` and its kin: the named
fragments of sql/engine.sql (a semi-join on run_key) when restricted, `TRUE` otherwise.
Resolving ids to keys scans run_keys once; the answer is kept (a small LRU) for as long
as the mirror's keys cannot have changed: the same full build and the same number of keys
(keys are append-only and never reused within a build).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import pyarrow as pa

from queries import sqltext

KEYS_TABLE = "visible_run_keys"
_UNRESTRICTED = {
    "engine.visible_run_filter": "TRUE",
    "engine.visible_run_row_filter": "TRUE",
    "engine.visible_user_filter": "TRUE",
}
_CACHE_SIZE = 32
_cache: OrderedDict[tuple, pa.Table] = OrderedDict()
_lock = threading.Lock()


def restriction(con: Any, params: dict[str, Any]) -> dict[str, str]:
    """Make `con` (DuckDB) ready for the access fragments; return the expressions that
    fill them: {} when restricted (the named fragments apply, reading visible_run_keys),
    TRUE for each when every run is visible."""
    if not params.get("restricted"):
        return dict(_UNRESTRICTED)
    con.register(KEYS_TABLE, run_keys(con, tuple(params["visible_runs"])))
    return {}


def run_keys(con: Any, ids: tuple[str, ...]) -> pa.Table:
    """The mirror's run keys (one column `key`) of the runs `ids` (those in the mirror)."""
    generation = tuple(con.execute(sqltext.render("duckdb", "key_generation").duckdb).fetchall()[0])
    cache_key = (generation, ids)
    with _lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
    con.register("visible_run_ids", pa.table({"id": pa.array(ids, pa.string())}))
    keys = con.sql(sqltext.render("duckdb", "run_keys_of_ids").duckdb).to_arrow_table()
    con.unregister("visible_run_ids")
    with _lock:
        _cache[cache_key] = keys
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return keys
