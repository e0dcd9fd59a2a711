"""Read the Penumbra warehouse from a notebook.

The DuckDB file has exactly one writer (the warehouse sink); notebooks never open it. They read
the Parquet snapshots the sink publishes every few seconds under
``<data dir>/warehouse/parquet/`` (one ``<table>.parquet`` per table, replaced atomically, plus
``_meta.json``).

    import penumbra_warehouse as pw
    con = pw.connect()                       # in-memory duckdb, one VIEW per table
    con.sql("select variant, count(*) from telemetry_events group by 1").df()
    pw.freshness()                           # when the snapshot was taken, row counts

The data dir is ``data_dir`` if given, else ``$PENUMBRA_DATA_DIR``, else ``./.penumbra``.
See docs/warehouse.md for tables and columns.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import duckdb

#: Tables the sink exports (docs/warehouse.md).
TABLES = (
    "items",
    "profile_history",
    "assignments",
    "telemetry_events",
    "metric_windows",
    "alerts",
    "audit",
    "dead_letters",
    "sink_offsets",
)


def parquet_dir(data_dir: str | os.PathLike | None = None) -> Path:
    base = data_dir or os.environ.get("PENUMBRA_DATA_DIR") or ".penumbra"
    return Path(base).resolve() / "warehouse" / "parquet"


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def connect(data_dir: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one VIEW per exported table.

    Views read the Parquet file at query time, so a long-lived connection sees each new snapshot.
    """
    folder = parquet_dir(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no warehouse snapshots in {folder}: is the warehouse sink running (and PENUMBRA_DATA_DIR right)?"
        )
    con = duckdb.connect(":memory:")
    for table in TABLES:
        path = folder / f"{table}.parquet"
        if path.exists():
            con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet({_literal(str(path))})')
    return con


def freshness(data_dir: str | os.PathLike | None = None) -> dict:
    """What `_meta.json` says about the last export, plus its age in seconds.

    Data in the views is at most (snapshot interval + one sink batch) behind the topics while the
    sink runs; ``age_seconds`` growing well past the interval means the sink is not running.
    """
    meta = json.loads((parquet_dir(data_dir) / "_meta.json").read_text())
    return {
        "exported_at": meta["exportedAtIso"],
        "age_seconds": max(0.0, time.time() - meta["exportedAt"] / 1000),
        "snapshot_interval_ms": meta["snapshotIntervalMs"],
        "tables": meta["tables"],
        "offsets": meta["offsets"],
    }


# ---- shared by the notebooks -------------------------------------------------------------

#: Item the notebooks read when PENUMBRA_ITEM is not set (the `penumbra start --demo` item).
DEFAULT_ITEM = "com.example.multipage"


def item_id(default: str = DEFAULT_ITEM) -> str:
    """The item a notebook reports on: ``$PENUMBRA_ITEM``, else ``default``."""
    return os.environ.get("PENUMBRA_ITEM") or default


def repo_root() -> Path:
    """The Penumbra checkout (for the golden cases): ``$PENUMBRA_REPO``, else the parent of this file's folder."""
    env = os.environ.get("PENUMBRA_REPO")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def traffic_split_reference():
    """The Python reference of the bucketing hash, ``pipeline/traffic-split/reference.py``, as a module."""
    import importlib.util

    path = repo_root() / "pipeline" / "traffic-split" / "reference.py"
    spec = importlib.util.spec_from_file_location("penumbra_traffic_split_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_out(numbers: dict) -> str | None:
    """Write the numbers a notebook computed as JSON to ``$PENUMBRA_NOTEBOOK_OUT`` (tests compare them).

    NaN becomes null and ±inf "Infinity"/"-Infinity". Returns the path written, or None when unset.
    """
    out = os.environ.get("PENUMBRA_NOTEBOOK_OUT")
    if not out:
        return None
    from penumbra_stats import jsonable

    Path(out).write_text(json.dumps(jsonable(numbers), indent=1, allow_nan=False))
    return out
