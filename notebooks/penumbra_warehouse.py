"""Read the Penumbra warehouse from a notebook.

The DuckDB file has exactly one writer (the warehouse sink); notebooks never open it. They read
the Parquet files the sink exports every few seconds under ``<data dir>/warehouse/parquet/``:
one folder per table, Hive-partitioned by day for the big ones
(``telemetry_events/date=2025-12-06/part-….parquet``, append-only parts, compacted in the
background), plus ``_meta.json`` (docs/warehouse.md). Spark, Trino or DuckDB read the same layout
directly, locally or from the S3 bucket the sink can publish it to.

    import penumbra_warehouse as pw
    con = pw.connect()                       # in-memory duckdb, one VIEW per table (+ comparison_events)
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

#: Tables the sink exports (docs/warehouse.md); their layout comes from ``_meta.json``.
TABLES = (
    "items",
    "profile_history",
    "assignments",
    "telemetry_events",
    "metric_windows",
    "alerts",
    "audit",
    "rollout_decisions",
    "bandit_weights",
    "dead_letters",
    "change_features",
    "rollout_outcomes",
    "risk_scores",
    "risk_models",
    "segment_memberships",
    "segment_evaluations",
    "pins",
    "sink_offsets",
)


def parquet_dir(data_dir: str | os.PathLike | None = None) -> Path:
    base = data_dir or os.environ.get("PENUMBRA_DATA_DIR") or ".penumbra"
    return Path(base).resolve() / "warehouse" / "parquet"


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _has_files(folder: Path, table: str, hive: bool) -> bool:
    base = folder / table
    if not base.is_dir():
        return False
    if not hive:
        return any(p.suffix == ".parquet" for p in base.iterdir() if p.is_file())
    return any(
        f.suffix == ".parquet"
        for d in base.iterdir()
        if d.is_dir() and not d.name.startswith(".")
        for f in d.iterdir()
    )


def view_sql(folder: Path, table: str, layout: dict) -> str:
    """The VIEW over one table's files (the same as connectors/duckdb-sink/query.ts builds).

    Partitioned tables are read with ``hive_partitioning`` and gain a DATE column ``date`` (UTC day
    of the row, see docs/warehouse.md): filter on it to open only the days you need. A table
    without files yet is an empty view with its columns.
    """
    if _has_files(folder, table, layout["hive"]):
        glob = str(folder / layout["glob"])
        hive = ", hive_partitioning = true" if layout["hive"] else ""
        return f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM read_parquet({_literal(glob)}, union_by_name = true{hive})'
    cols = [f'CAST(NULL AS {t}) AS "{n}"' for n, t in layout["columns"]]
    if layout["hive"]:
        cols.append('CAST(NULL AS DATE) AS "date"')
    return f'CREATE OR REPLACE VIEW "{table}" AS SELECT {", ".join(cols)} WHERE false'


def connect(data_dir: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one VIEW per exported table.

    Views list the files at query time, so a long-lived connection sees each new export.
    """
    folder = parquet_dir(data_dir)
    meta_file = folder / "_meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"no warehouse export in {folder}: is the warehouse sink running (and PENUMBRA_DATA_DIR right)?"
        )
    layout = json.loads(meta_file.read_text())["layout"]
    con = duckdb.connect(":memory:")
    for table in TABLES:
        con.execute(view_sql(folder, table, layout[table]))
    con.execute(COMPARISON_EVENTS_VIEW)
    return con


#: Every comparison is a shadow vs ITS control arm (docs/warehouse.md "Comparing a shadow with its
#: control"): verified events of a shadow, and of the control cohort drawn for it, labelled by the
#: shadow they belong to (``shadow``) and the arm (``arm``: 'shadow' | 'control').
COMPARISON_EVENTS_VIEW = """
CREATE VIEW comparison_events AS
SELECT *, CASE WHEN variant = 'control' THEN control_of ELSE variant END AS shadow,
          CASE WHEN variant = 'control' THEN 'control' ELSE 'shadow' END AS arm
FROM telemetry_events
WHERE verified AND variant <> 'original' AND (variant <> 'control' OR control_of IS NOT NULL)"""


def freshness(data_dir: str | os.PathLike | None = None) -> dict:
    """What ``_meta.json`` says about the last export, plus its age in seconds.

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


def risk_trainer():
    """The rollout-risk trainer, ``pipeline/risk-model/train_risk.py``, as a module (the same code the
    pipeline's retrain route runs: TRAINING_QUERY, evaluate, export_onnx, train)."""
    import importlib.util

    path = repo_root() / "pipeline" / "risk-model" / "train_risk.py"
    spec = importlib.util.spec_from_file_location("penumbra_train_risk", path)
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
