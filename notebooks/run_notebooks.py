"""Execute the analysts' notebooks headlessly (CI and test/notebooks.int.test.ts).

    python3 notebooks/run_notebooks.py [--out-dir DIR] [--timeout S] [NAME ...]
    cd notebooks && python3 -m run_notebooks …          (the same)

Each notebook (default: every ``*.ipynb`` here) runs with nbclient in a fresh ``python3`` kernel
whose working directory is this folder (so ``import penumbra_warehouse`` works). The sources are
never modified: the executed copy (with outputs) is written to ``DIR/<name>.ipynb``, and the
notebook's numbers to ``DIR/<name>.json`` through ``$PENUMBRA_NOTEBOOK_OUT``. The environment is
passed on, so set ``PENUMBRA_DATA_DIR`` and ``PENUMBRA_ITEM`` as for interactive use.

Prints one JSON line per notebook ({"notebook", "ok", "seconds", "executed", "numbers", "error"})
and exits 1 when any notebook failed (a cell raised, or it timed out).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

HERE = Path(__file__).resolve().parent


def run(name: str, out_dir: Path, timeout: int) -> dict:
    src = HERE / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    stem = src.stem
    executed = out_dir / f"{stem}.ipynb"
    numbers = out_dir / f"{stem}.json"
    if numbers.exists():
        numbers.unlink()
    nb = nbformat.read(src, as_version=4)
    os.environ["PENUMBRA_NOTEBOOK_OUT"] = str(numbers)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
    started = time.time()
    error = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        error = str(err)[-4000:]
    finally:
        nbformat.write(nb, executed)
    return {
        "notebook": stem, "ok": error is None, "seconds": round(time.time() - started, 2),
        "executed": str(executed), "numbers": str(numbers) if numbers.exists() else None, "error": error,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="notebooks to run (default: all in notebooks/)")
    ap.add_argument("--out-dir", help="where executed copies and numbers go (default: a new temp folder)")
    ap.add_argument("--timeout", type=int, default=180, help="seconds per cell (default 180)")
    args = ap.parse_args(argv)
    out_dir = Path(args.out_dir) if args.out_dir else Path(tempfile.mkdtemp(prefix="penumbra-notebooks-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    names = args.names or sorted(p.name for p in HERE.glob("*.ipynb"))
    failed = 0
    for name in names:
        result = run(name, out_dir, args.timeout)
        failed += not result["ok"]
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
