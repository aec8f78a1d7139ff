#!/usr/bin/env bash
# Install what the project needs on a fresh Debian/Ubuntu machine:
#  - Debian's dataset-fashion-mnist (the real IDX files) where it is missing and apt-get can run,
#  - the package and its Python dependencies (pip, editable, with the test extras and Hydra's launchers).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DATA_DIR=/usr/share/datasets/fashion-mnist

# Debian packages: the dataset; PostgreSQL (the shared-study test and scale-out); Chromium
# (plotly's static export of the report's figures). Each only where it is missing.
APT_PACKAGES=()
[ -f "$DATA_DIR/train-images-idx3-ubyte.gz" ] || APT_PACKAGES+=(dataset-fashion-mnist)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || APT_PACKAGES+=(postgresql)
command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || APT_PACKAGES+=(chromium)
if [ ${#APT_PACKAGES[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
    echo "setup: installing Debian packages: ${APT_PACKAGES[*]}"
    if ! ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}") \
        >/tmp/compress-apt.log 2>&1; then
      echo "setup: could not install ${APT_PACKAGES[*]} (see /tmp/compress-apt.log); without the dataset set" \
           "data.dir or put the IDX files in ~/.keras/datasets/fashion-mnist; the PostgreSQL and figure tests skip" >&2
    fi
  else
    echo "setup: no apt-get here; missing: ${APT_PACKAGES[*]} (set data.dir for the dataset)" >&2
  fi
fi

# (re)install when a dependency is missing or `compress` resolves to another checkout
if ! "$PY" - >/dev/null 2>&1 <<'PYCHECK'
import pathlib
import ai_edge_litert, coremltools, hydra, hypothesis, mlflow, optuna, pytest, tensorflow_model_optimization, tf_keras  # noqa
import ipykernel, kaleido, nbclient, psycopg, PIL, sklearn, xdist  # noqa
import hydra_plugins.hydra_ray_launcher, hydra_plugins.hydra_submitit_launcher, hydra_plugins.hydra_joblib_launcher  # noqa
import compress
assert pathlib.Path(compress.__file__).resolve().parent.parent == pathlib.Path.cwd().resolve()
import hydra_plugins.compress_optuna_sweeper as sweeper
assert pathlib.Path(sweeper.__file__).resolve().parents[2] == (pathlib.Path.cwd() / "plugins" / "compress_optuna_sweeper").resolve()
PYCHECK
then
  echo "setup: installing Python dependencies (a few minutes on a fresh machine)"
  "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ./plugins/compress_optuna_sweeper -e ".[dev,launchers]"
fi
echo "setup: ready"
