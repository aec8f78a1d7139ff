#!/usr/bin/env bash
# Install what the project needs on a fresh Debian/Ubuntu machine:
#  - Debian's dataset-fashion-mnist (the real IDX files) where it is missing and apt-get can run,
#  - the package and its Python dependencies (pip, editable, with the test extras).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DATA_DIR=/usr/share/datasets/fashion-mnist

if [ ! -f "$DATA_DIR/train-images-idx3-ubyte.gz" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
    echo "setup: installing Debian's dataset-fashion-mnist into $DATA_DIR"
    if ! ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist) >/tmp/compress-apt.log 2>&1; then
      echo "setup: could not install dataset-fashion-mnist (see /tmp/compress-apt.log);" \
           "set data.dir or put the IDX files in ~/.keras/datasets/fashion-mnist" >&2
    fi
  else
    echo "setup: no apt-get here; set data.dir or put the IDX files in ~/.keras/datasets/fashion-mnist" >&2
  fi
fi

# (re)install when a dependency is missing or `compress` resolves to another checkout
if ! "$PY" - >/dev/null 2>&1 <<'PYCHECK'
import pathlib
import ai_edge_litert, coremltools, hydra, hypothesis, mlflow, optuna, pytest, tensorflow_model_optimization, tf_keras  # noqa
import compress
assert pathlib.Path(compress.__file__).resolve().parent.parent == pathlib.Path.cwd().resolve()
PYCHECK
then
  echo "setup: installing Python dependencies (a few minutes on a fresh machine)"
  "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[dev]"
fi
echo "setup: ready"
