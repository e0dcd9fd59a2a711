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

When the warehouse is on S3 (a sink with ``PENUMBRA_PARQUET_S3=true``), ``connect(s3=True)`` — or
``PENUMBRA_PARQUET_READ=s3`` in the environment, Penumbra's own switch — reads the bucket's export
``s3://<bucket>/<prefix>warehouse/`` straight through DuckDB's httpfs extension, with the same
views (``PENUMBRA_S3_*`` settings, as Penumbra reads them). The extension is the one PyPI
publishes for duckdb 1.5.5, the version notebooks/requirements.txt pins (``httpfs_extension``).
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


# ---- the bucket (S3) -------------------------------------------------------------------------

#: The DuckDB version whose httpfs extension PyPI publishes (``duckdb-extension-httpfs``), pinned
#: in notebooks/requirements.txt and on the TypeScript side (connectors/duckdb-httpfs/README.md):
#: an extension only loads on the DuckDB version it was built for. Move all three together.
HTTPFS_DUCKDB_VERSION = "1.5.5"


def httpfs_extension() -> str:
    """Path of DuckDB's httpfs extension for this ``duckdb``, the first that exists of:

    1. ``$DUCKDB_HTTPFS_EXTENSION`` (the integration tests' setup hands the fetched file over);
    2. the ``duckdb-extension-httpfs`` wheel installed by pip (notebooks/requirements.txt):
       ``duckdb_extension_httpfs/extensions/v<version>/httpfs.duckdb_extension``;
    3. the file the TypeScript side fetched from the same wheel: ``<$PENUMBRA_CACHE_DIR, else
       <repo>/.cache>/duckdb-extensions/v<version>/<platform>/httpfs.duckdb_extension``.

    Raises RuntimeError naming the pin when none fits this duckdb (2.x has no wheel on PyPI;
    ``INSTALL httpfs`` works only where extensions.duckdb.org is reachable).
    """
    version = duckdb.__version__
    candidates: list[Path] = []
    env = os.environ.get("DUCKDB_HTTPFS_EXTENSION")
    if env:
        candidates.append(Path(env))
    try:
        import duckdb_extension_httpfs  # the PyPI wheel; only a data file, no code

        candidates.append(Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{version}" / "httpfs.duckdb_extension")
    except ImportError:
        pass
    platform = duckdb.connect(":memory:").execute("PRAGMA platform").fetchone()[0]
    cache = Path(os.environ.get("PENUMBRA_CACHE_DIR") or repo_root() / ".cache")
    candidates.append(cache / "duckdb-extensions" / f"v{version}" / platform / "httpfs.duckdb_extension")
    for c in candidates:
        # Each path names the DuckDB version it was built for (…/v<version>/…): a file for another
        # version would not load, so only this duckdb's version counts.
        if f"v{version}" in c.parts and c.is_file():
            return str(c)
    raise RuntimeError(
        f"no httpfs extension for duckdb {version}: PyPI publishes duckdb-extension-httpfs only up to "
        f"{HTTPFS_DUCKDB_VERSION}, so notebooks pin duckdb=={HTTPFS_DUCKDB_VERSION} "
        "(python3 -m pip install -r notebooks/requirements.txt). Looked in: " + ", ".join(str(c) for c in candidates)
    )


def s3_settings(env: dict | None = None) -> dict:
    """The bucket as Penumbra reads it from ``PENUMBRA_S3_*`` (pipeline/config/config.ts, same defaults)."""
    e = os.environ if env is None else env
    endpoint = e.get("PENUMBRA_S3_ENDPOINT") or f"http://127.0.0.1:{e.get('PENUMBRA_S3_PORT') or 8333}"
    prefix = e.get("PENUMBRA_S3_PREFIX") or ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return {
        "endpoint": endpoint,
        "local": not e.get("PENUMBRA_S3_ENDPOINT"),
        "bucket": e.get("PENUMBRA_S3_BUCKET") or "penumbra",
        "region": e.get("PENUMBRA_S3_REGION") or "us-east-1",
        "access_key_id": e.get("PENUMBRA_S3_ACCESS_KEY_ID") or None,
        "secret_access_key": e.get("PENUMBRA_S3_SECRET_ACCESS_KEY") or None,
        "prefix": prefix,
        "path_style": (e.get("PENUMBRA_S3_FORCE_PATH_STYLE") or "true").lower() != "false",
    }


def s3_secret_sql(s: dict, name: str = "penumbra_s3") -> str:
    """The DuckDB S3 secret for the bucket (the same as connectors/duckdb-httpfs ``s3SecretSql``)."""
    from urllib.parse import urlparse

    url = urlparse(s["endpoint"])
    parts = [
        "TYPE s3",
        f"ENDPOINT {_literal(url.netloc)}",
        f"USE_SSL {'true' if url.scheme == 'https' else 'false'}",
        f"URL_STYLE {_literal('path' if s['path_style'] else 'vhost')}",
        f"REGION {_literal(s['region'])}",
        f"SCOPE {_literal('s3://' + s['bucket'] + '/')}",
    ]
    if s["access_key_id"] and s["secret_access_key"]:
        key = (s["access_key_id"], s["secret_access_key"])
    elif s["local"]:
        key = ("penumbra-local", "penumbra-local")  # the local S3Proxy takes any key
    else:
        key = None  # DuckDB's default chain
    if key:
        parts += [f"KEY_ID {_literal(key[0])}", f"SECRET {_literal(key[1])}"]
    return f"CREATE OR REPLACE SECRET {name} ({', '.join(parts)})"


def warehouse_s3_url(s: dict) -> str:
    """``s3://<bucket>/<prefix>warehouse/``: where a sink with PENUMBRA_PARQUET_S3=true publishes the export."""
    return f"s3://{s['bucket']}/{s['prefix']}warehouse/"


def s3_table_files(listed: list[str], url: str, table: str, hive: bool) -> list[str]:
    """The files a reader of ``table`` must read, from one bucket listing (``table_files`` for s3://)."""
    base = f"{url}{table}/"
    rel = [f[len(base):] for f in listed if f.startswith(base) and f.endswith(".parquet")]
    if not hive:
        return sorted(base + r for r in rel if "/" not in r)
    by_dir: dict[str, list[str]] = {}
    for r in rel:
        d, _, name = r.rpartition("/")
        if d and "/" not in d and not d.startswith("."):
            by_dir.setdefault(d, []).append(name)
    return sorted(f"{base}{d}/{f}" for d, names in by_dir.items() for f in live_parts(names))


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
    # Local: an IO error naming the missing file; S3 (httpfs): the GET of a listed object is a 404.
    return isinstance(err, duckdb.IOException) and (
        any(s in m for s in ("No such file", "No files found", "Cannot open file", "does not exist"))
        or ("HTTP" in m and "404" in m)
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

    def __init__(self, folder: Path | str, layout: dict, raw: duckdb.DuckDBPyConnection | None = None):
        self.raw = raw or duckdb.connect(":memory:")
        #: A local folder, or the bucket's ``s3://…/warehouse/`` (then ``raw`` has httpfs and the secret).
        self._folder = folder
        self._layout = layout
        self._files: dict[str, list[str]] = {}
        self.refresh()
        self.raw.execute(COMPARISON_EVENTS_VIEW)

    def _listing(self):
        if isinstance(self._folder, str):
            # One ListObjectsV2 walk for every table (glob over s3:// through httpfs).
            listed = [r[0] for r in self.raw.execute(f"SELECT file FROM glob({_literal(self._folder + '**/*.parquet')})").fetchall()]
            return lambda table, hive: s3_table_files(listed, self._folder, table, hive)
        return lambda table, hive: table_files(self._folder, table, hive)

    def refresh(self) -> None:
        """Re-list the table folders and replace the views whose files changed."""
        files_of = self._listing()
        for table in TABLES:
            layout = self._layout[table]
            files = files_of(table, layout["hive"])
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


def _reads_s3(s3: bool | None) -> bool:
    return os.environ.get("PENUMBRA_PARQUET_READ") == "s3" if s3 is None else s3


def _open_bucket() -> tuple[duckdb.DuckDBPyConnection, str, dict]:
    """An in-memory connection with httpfs and the bucket's secret, the export's URL and its ``_meta.json``."""
    settings = s3_settings()
    url = warehouse_s3_url(settings)
    raw = duckdb.connect(":memory:")
    # Signature checking stays on: the wheel carries DuckDB's signed official binary.
    raw.execute(f"LOAD {_literal(httpfs_extension())}")
    raw.execute(s3_secret_sql(settings))
    try:
        meta = raw.execute(f"SELECT content FROM read_text({_literal(url + '_meta.json')})").fetchone()
    except duckdb.IOException:
        meta = None
    if not meta:
        raw.close()
        raise FileNotFoundError(f"no warehouse export in {url}: is a sink running with PENUMBRA_PARQUET_S3=true (and PENUMBRA_S3_* right)?")
    return raw, url, json.loads(meta[0])


def connect(data_dir: str | os.PathLike | None = None, *, s3: bool | None = None) -> Connection:
    """An in-memory DuckDB connection with one VIEW per exported table (and ``comparison_events``).

    The views are listed again before every statement (``Connection``), so a long-lived
    connection sees each new export, and a compaction in progress never shows a row twice.
    ``s3`` (default: ``$PENUMBRA_PARQUET_READ == 's3'``) reads the bucket's export instead of the
    data dir's folder: httpfs (``httpfs_extension``) and the ``PENUMBRA_S3_*`` bucket.
    """
    if _reads_s3(s3):
        raw, url, meta = _open_bucket()
        return Connection(url, meta["layout"], raw)
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


def freshness(data_dir: str | os.PathLike | None = None, *, s3: bool | None = None) -> dict:
    """What ``_meta.json`` says about the last export, plus its age in seconds.

    Data in the views is at most (snapshot interval + one sink batch) behind the topics while the
    sink runs; ``age_seconds`` growing well past the interval means the sink is not running.
    ``s3`` as in ``connect``: the bucket's ``_meta.json``.
    """
    if _reads_s3(s3):
        raw, _, meta = _open_bucket()
        raw.close()
    else:
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
