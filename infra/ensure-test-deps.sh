#!/usr/bin/env bash
# Installs what the test suite needs beyond node_modules, only when missing, so `npm test`
# works on a fresh machine: Debian's chromium (browser tests, playwright-core drives it) and
# kcat (topic listing check), and the Python packages in test/requirements.txt. Java 17 and
# Maven are prerequisites of the local stack (infra/README.md); the stack itself is fetched by
# the jest global setup. Set PENUMBRA_SKIP_DEPS=1 to skip this step.
set -euo pipefail
[ "${PENUMBRA_SKIP_DEPS:-}" = "1" ] && exit 0
cd "$(dirname "$0")/.."

missing_apt=()
command -v chromium >/dev/null 2>&1 || missing_apt+=(chromium)
command -v kcat >/dev/null 2>&1 || missing_apt+=(kcat)
if [ ${#missing_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[deps] installing ${missing_apt[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}" >/dev/null
  else
    echo "[deps] missing ${missing_apt[*]}: install them (Debian: apt-get install ${missing_apt[*]}); browser and kcat tests will fail" >&2
  fi
fi

# duckdb must be the pinned version (notebooks/requirements.txt: the one PyPI has httpfs for), not
# just any: a newer one installed earlier is replaced.
if ! python3 -c "import confluent_kafka, duckdb, duckdb_extension_httpfs, nbclient, nbformat, ipykernel, pandas, matplotlib, scipy, sklearn, skl2onnx, onnx, onnxruntime, sys; sys.exit(duckdb.__version__ != '1.5.5')" >/dev/null 2>&1; then
  echo "[deps] installing Python test packages (test/requirements.txt)" >&2
  (cd test && python3 -m pip install -q --disable-pip-version-check -r requirements.txt) >&2
fi
