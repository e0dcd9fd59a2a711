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
import re
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


_PART = re.compile(r"^part-(\d+)-(\d+)_(\w+)\.parquet$")


def live_parts(files: list[str]) -> list[str]:
    """The Parquet files of one partition folder a reader must read (export.ts ``liveParts``).

    A compacted part ``part-<from>-<to>_c.parquet`` holds the rows of every part whose
    transaction range lies inside ``[from, to]``; for a few milliseconds after it is renamed in
    (or after a crash in between) those inputs are still in the folder. They are left out here,
    so a listing taken at any moment yields each row once. Files of one export sharing a range
    (``_0``, ``_1``) do not cover each other.
    """
    parts = [(f, (int(m.group(1)), int(m.group(2)))) for f in files if (m := _PART.match(f))]

    def covered(f: str, r: tuple[int, int]) -> bool:
        return any(
            o != f and orng[0] <= r[0] and r[1] <= orng[1] and (orng != r or o.endswith("_c.parquet"))
            for o, orng in parts
        )

    dead = {f for f, r in parts if covered(f, r)}
    return [f for f in files if f.endswith(".parquet") and f not in dead]


def table_files(folder: Path, table: str, hive: bool) -> list[str]:
    """Absolute paths of the files a reader of ``table`` must read, from one listing."""
    base = folder / table
    if not base.is_dir():
        return []
    if not hive:
        return sorted(str(p) for p in base.iterdir() if p.is_file() and p.suffix == ".parquet")
    out = []
    for d in base.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            out += [str(d / f) for f in live_parts([p.name for p in d.iterdir() if p.is_file()])]
    return sorted(out)


def view_sql(folder: Path, table: str, layout: dict, files: list[str] | None = None) -> str:
    """The VIEW over one table's files (the same as connectors/duckdb-sink/query.ts builds).

    It reads the listed files (``table_files``: compaction inputs next to their merged part left
    out). Partitioned tables are read with ``hive_partitioning`` and gain a DATE column ``date``
    (UTC day of the row, see docs/warehouse.md): filter on it to open only the days you need. A
    table without files yet is an empty view with its columns.
    """
    if files is None:
        files = table_files(folder, table, layout["hive"])
    if files:
        hive = ", hive_partitioning = true" if layout["hive"] else ""
        listed = ", ".join(_literal(f) for f in files)
        return f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM read_parquet([{listed}], union_by_name = true{hive})'
    cols = [f'CAST(NULL AS {t}) AS "{n}"' for n, t in layout["columns"]]
    if layout["hive"]:
        cols.append('CAST(NULL AS DATE) AS "date"')
    return f'CREATE OR REPLACE VIEW "{table}" AS SELECT {", ".join(cols)} WHERE false'


def _vanished(err: Exception) -> bool:
    """A listed file was gone when DuckDB opened it (a compaction deleted its inputs meanwhile)."""
    m = str(err)
    return isinstance(err, duckdb.IOException) and any(
        s in m for s in ("No such file", "No files found", "Cannot open file", "does not exist")
    )


class Connection:
    """An in-memory DuckDB connection whose table views follow the export.

    Before each ``sql`` / ``execute`` / ``query`` the table folders are listed again and a view is
    replaced when its files changed (new parts, a compaction), so a long-lived connection sees
    each new export and never a row twice; when a listed file vanished before DuckDB opened it, the
    statement runs again on a new listing. Everything else is the wrapped
    ``duckdb.DuckDBPyConnection`` (``raw``). A relation from ``sql`` is bound to the files of its
    listing: run it (``.df()``, ``.fetchall()``) soon, or call ``sql`` again.
    """

    RETRIES = 5

    def __init__(self, folder: Path, layout: dict):
        self.raw = duckdb.connect(":memory:")
        self._folder = folder
        self._layout = layout
        self._files: dict[str, list[str]] = {}
        self.refresh()
        self.raw.execute(COMPARISON_EVENTS_VIEW)

    def refresh(self) -> None:
        """Re-list the table folders and replace the views whose files changed."""
        for table in TABLES:
            layout = self._layout[table]
            files = table_files(self._folder, table, layout["hive"])
            if self._files.get(table) != files:
                self.raw.execute(view_sql(self._folder, table, layout, files))
                self._files[table] = files

    def _run(self, method: str, *args, **kwargs):
        for attempt in range(1, self.RETRIES + 1):
            self.refresh()
            try:
                return getattr(self.raw, method)(*args, **kwargs)
            except duckdb.IOException as err:
                if attempt == self.RETRIES or not _vanished(err):
                    raise

    def sql(self, *args, **kwargs):
        return self._run("sql", *args, **kwargs)

    def query(self, *args, **kwargs):
        return self._run("query", *args, **kwargs)

    def execute(self, *args, **kwargs):
        return self._run("execute", *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.raw.close()


def connect(data_dir: str | os.PathLike | None = None) -> Connection:
    """An in-memory DuckDB connection with one VIEW per exported table (and ``comparison_events``).

    The views are listed again before every statement (``Connection``), so a long-lived
    connection sees each new export, and a compaction in progress never shows a row twice.
    """
    folder = parquet_dir(data_dir)
    meta_file = folder / "_meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"no warehouse export in {folder}: is the warehouse sink running (and PENUMBRA_DATA_DIR right)?"
        )
    return Connection(folder, json.loads(meta_file.read_text())["layout"])


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
