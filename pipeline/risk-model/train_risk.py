"""Train the rollout-risk model from the Penumbra warehouse and export it to ONNX.

    python3 pipeline/risk-model/train_risk.py --data-dir DIR --out OUT [--window-days 90] [--now MS]
        [--min-rows 30] [--min-class 5] [--trained-by NAME] [--version N]

Reads the warehouse's Parquet snapshots (``<DIR>/warehouse/parquet``; never the live DuckDB file,
which has one writer) with the named query ``TRAINING_QUERY`` below over a recent window, fits a
scikit-learn pipeline (StandardScaler + LogisticRegression), measures it out of fold (ROC AUC,
Brier score, log loss, calibration bins), refits on every row and exports to ONNX with skl2onnx.

The exported graph has two outputs the TypeScript scorer reads (pipeline/risk-model/scorer.ts):
``probabilities`` [N, 2] (from skl2onnx) and ``contributions`` [N, F] = (x - mean) / scale * coef,
the per-input log-odds the model itself adds to its intercept — so every score is explained by
the model's own terms, with ``intercept + sum(contributions) == logit(p)`` (checked here on the
training rows before anything is written).

Writes ``OUT/model.onnx`` and ``OUT/metadata.json`` and prints one JSON line: ``{"status":
"trained", ...metadata}``, or ``{"status": "insufficient", ...}`` when the window holds fewer than
``--min-rows`` labelled rollouts or fewer than ``--min-class`` of either outcome (then nothing is
written and the scorer keeps using the prior or the previous model). Exit 0 in both cases,
non-zero on errors.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import duckdb
import numpy as np

# The warehouse reader's file listing (notebooks/penumbra_warehouse.py): one rule for which
# Parquet parts are live, shared with the notebooks and connectors/duckdb-sink/query.ts.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "notebooks"))
from penumbra_warehouse import table_files  # noqa: E402

MODEL_NAME = "rollout-risk"
KIND = "logistic_regression"

#: The named training query: one row per (item, version) that has a rollout outcome decided in the
#: window — its newest change-features record, labelled 1 when ANY outcome of that version is a
#: regression (a guardrail may roll a version back after its schedule finished: it regressed all
#: the same), 0 when all are successes. $window_start / $window_end are epoch ms.
TRAINING_QUERY = """
WITH f AS (
  SELECT id, item_id, version, inputs_json, computed_at,
         row_number() OVER (PARTITION BY item_id, version ORDER BY computed_at DESC, id) AS rn
  FROM change_features),
o AS (
  SELECT item_id, version, bool_or(outcome = 'regression') AS regressed, min(epoch_ms(decided_at)) AS decided_at,
         string_agg(DISTINCT cause, ',' ORDER BY cause) AS causes
  FROM rollout_outcomes GROUP BY item_id, version)
SELECT f.id AS features_id, f.item_id, f.version, f.inputs_json,
       CAST(o.regressed AS INTEGER) AS label, o.causes, o.decided_at
FROM f JOIN o ON o.item_id = f.item_id AND o.version = f.version
WHERE f.rn = 1 AND o.decided_at >= $window_start AND o.decided_at <= $window_end
ORDER BY o.decided_at, f.item_id, f.version
"""


def parquet_dir(data_dir: str) -> Path:
    return Path(data_dir).resolve() / "warehouse" / "parquet"


def _view(con, folder: Path, table: str, layout: dict) -> bool:
    """A view of one exported table, laid out as ``_meta.json`` says (Hive-partitioned parts or one
    file, docs/warehouse.md); a folder without ``_meta.json`` holds ``<table>.parquet``.

    Partitioned tables are read through the notebook helper's ``table_files``: a plain glob would
    also read a compaction's inputs for the moment they sit next to their merged part (rename,
    then delete), and count those rows twice."""
    spec = layout.get(table)
    if spec:
        files = table_files(folder, table, bool(spec.get("hive")))
    else:
        single = folder / f"{table}.parquet"
        files = [str(single)] if single.is_file() else []
    if not files:
        return False
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    hive = ", hive_partitioning = true" if spec and spec.get("hive") else ""
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}], union_by_name = true{hive})")
    return True


def load_training_set(data_dir: str, window_start: int, window_end: int):
    """Rows of TRAINING_QUERY as (feature names, X, y, meta rows)."""
    folder = parquet_dir(data_dir)
    meta = folder / "_meta.json"
    layout = json.loads(meta.read_text()).get("layout", {}) if meta.is_file() else {}
    con = duckdb.connect(":memory:")
    for table in ("change_features", "rollout_outcomes"):
        if not _view(con, folder, table, layout):
            return [], np.zeros((0, 0)), np.zeros(0), []
    rows = con.execute(TRAINING_QUERY, {"window_start": window_start, "window_end": window_end}).fetchall()
    cols = [d[0] for d in con.description]
    recs = [dict(zip(cols, r)) for r in rows]
    if not recs:
        return [], np.zeros((0, 0)), np.zeros(0), []
    inputs = [json.loads(r["inputs_json"]) for r in recs]
    # The first record's key order is the feature order (modelInputs() in TypeScript fixes it);
    # a name missing from an older record is 0 (inputs are only ever added, with 0 = "absent").
    names = list(inputs[0].keys())
    for i in inputs[1:]:
        for k in i:
            if k not in names:
                names.append(k)
    X = np.array([[float(i.get(n, 0.0)) for n in names] for i in inputs], dtype=np.float64)
    y = np.array([int(r["label"]) for r in recs], dtype=np.int64)
    return names, X, y, recs


def make_estimator():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    # L2 with C=1 on standardised inputs: small labelled sets and correlated inputs (bytes and
    # files move together) need the shrinkage; the coefficients stay comparable as importances.
    return Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=1.0, max_iter=2000))])


def calibration_bins(p: np.ndarray, y: np.ndarray, bins: int = 5) -> list[dict]:
    """Equal-width bins of the predicted probability: mean prediction vs observed rate."""
    out = []
    edges = np.linspace(0, 1, bins + 1)
    for i in range(bins):
        lo, hi = edges[i], edges[i + 1]
        m = (p >= lo) & ((p < hi) if i < bins - 1 else (p <= hi))
        n = int(m.sum())
        out.append({"low": float(lo), "high": float(hi), "n": n,
                    "meanPredicted": float(p[m].mean()) if n else None,
                    "observedRate": float(y[m].mean()) if n else None})
    return out


def evaluate(X: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """Out-of-fold predictions (stratified k-fold) and their metrics."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    k = int(max(2, min(5, np.bincount(y).min())))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    p = cross_val_predict(make_estimator(), X, y, cv=cv, method="predict_proba")[:, 1]
    bins = calibration_bins(p, y)
    ece = sum(b["n"] * abs(b["meanPredicted"] - b["observedRate"]) for b in bins if b["n"]) / len(y)
    return {
        "folds": k,
        "auc": float(roc_auc_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "logLoss": float(log_loss(y, p, labels=[0, 1])),
        "baseRate": float(y.mean()),
        "brierOfBaseRate": float(((y - y.mean()) ** 2).mean()),
        "expectedCalibrationError": float(ece),
        "calibration": bins,
    }


def export_onnx(est, n_features: int) -> bytes:
    """skl2onnx export plus the `contributions` output, checked by onnx.checker."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    lr = est.named_steps["lr"]
    scaler = est.named_steps["scale"]
    model = convert_sklearn(
        est, initial_types=[("input", FloatTensorType([None, n_features]))],
        options={id(lr): {"zipmap": False}}, target_opset={"": 15, "ai.onnx.ml": 3},
    )
    g = model.graph
    mean = numpy_helper.from_array(scaler.mean_.astype(np.float32), "pnb_mean")
    scale = numpy_helper.from_array(scaler.scale_.astype(np.float32), "pnb_scale")
    coef = numpy_helper.from_array(lr.coef_[0].astype(np.float32), "pnb_coef")
    g.initializer.extend([mean, scale, coef])
    g.node.extend([
        helper.make_node("Sub", ["input", "pnb_mean"], ["pnb_centered"], name="pnb_sub"),
        helper.make_node("Div", ["pnb_centered", "pnb_scale"], ["pnb_standardised"], name="pnb_div"),
        helper.make_node("Mul", ["pnb_standardised", "pnb_coef"], ["contributions"], name="pnb_mul"),
    ])
    g.output.append(helper.make_tensor_value_info("contributions", TensorProto.FLOAT, [None, n_features]))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def check_onnx(onnx_bytes: bytes, est, X: np.ndarray, intercept: float) -> float:
    """Largest |p_onnx - p_sklearn| on X, after asserting the contributions add up to the logit."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    label, probs, contrib = sess.run(["label", "probabilities", "contributions"], {"input": X.astype(np.float32)})
    p = probs[:, 1].astype(np.float64)
    logit = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))
    gap = np.abs(logit - (intercept + contrib.sum(axis=1)))
    if float(gap.max()) > 1e-3:
        raise SystemExit(f"contributions do not add up to the logit (max gap {gap.max()})")
    return float(np.abs(p - est.predict_proba(X)[:, 1]).max())


def train(data_dir: str, out: str, window_days: float, now_ms: int, min_rows: int, min_class: int,
          trained_by: str, version: int | None, seed: int = 0) -> dict:
    window_start = int(now_ms - window_days * 86_400_000)
    names, X, y, recs = load_training_set(data_dir, window_start, now_ms)
    positives = int(y.sum()) if len(y) else 0
    negatives = int(len(y) - positives)
    base = {"name": MODEL_NAME, "kind": KIND, "windowStart": window_start, "windowEnd": now_ms,
            "windowDays": window_days, "trainingRows": int(len(y)), "positives": positives, "negatives": negatives,
            "query": "TRAINING_QUERY (pipeline/risk-model/train_risk.py)"}
    if len(y) < min_rows or positives < min_class or negatives < min_class:
        return {"status": "insufficient", **base, "minRows": min_rows, "minClass": min_class,
                "reason": f"{len(y)} labelled rollouts in the last {window_days:g} days ({positives} regressions, {negatives} successes); "
                          f"training needs at least {min_rows} with {min_class} of each outcome"}
    metrics = evaluate(X, y, seed)
    est = make_estimator().fit(X, y)
    lr = est.named_steps["lr"]
    scaler = est.named_steps["scale"]
    intercept = float(lr.intercept_[0])
    onnx_bytes = export_onnx(est, len(names))
    max_diff = check_onnx(onnx_bytes, est, X, intercept)
    coef = lr.coef_[0]
    importance = sorted(
        ({"feature": n, "coef": float(c), "mean": float(m), "scale": float(s), "absCoef": float(abs(c))}
         for n, c, m, s in zip(names, coef, scaler.mean_, scaler.scale_)),
        key=lambda r: -r["absCoef"])
    meta = {
        **base,
        "version": version,
        "features": names,
        "intercept": intercept,
        "importance": importance,
        "metrics": metrics,
        "onnx": {"inputName": "input", "probabilityOutput": "probabilities", "contributionsOutput": "contributions",
                 "maxAbsDiffVsSklearn": max_diff},
        "libraries": {"scikit-learn": __import__("sklearn").__version__, "skl2onnx": __import__("skl2onnx").__version__,
                      "onnx": __import__("onnx").__version__, "numpy": np.__version__},
        "trainedBy": trained_by,
        "trainedAt": int(time.time() * 1000),
        "itemsInWindow": len({r["item_id"] for r in recs}),
    }
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "model.onnx").write_bytes(onnx_bytes)
    (outdir / "metadata.json").write_text(json.dumps(meta, indent=1, allow_nan=False))
    return {"status": "trained", **meta}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("PENUMBRA_DATA_DIR") or ".penumbra")
    ap.add_argument("--out", required=True)
    ap.add_argument("--window-days", type=float, default=90.0)
    ap.add_argument("--now", type=int, default=None, help="epoch ms the window ends (default: now)")
    ap.add_argument("--min-rows", type=int, default=30)
    ap.add_argument("--min-class", type=int, default=5)
    ap.add_argument("--trained-by", default="cli")
    ap.add_argument("--version", type=int, default=None)
    args = ap.parse_args(argv)
    now = args.now if args.now is not None else int(time.time() * 1000)
    result = train(args.data_dir, args.out, args.window_days, now, args.min_rows, args.min_class, args.trained_by, args.version)
    print(json.dumps(result, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
