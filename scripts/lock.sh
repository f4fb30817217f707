#!/usr/bin/env bash
# Regenerate requirements.lock: the runtime dependencies of pyproject.toml, plus its build
# backend, pinned with the hashes of every published file (`pip install --require-hashes`).
#
# Resolved for the container (Linux, CPython 3.11). Needs pip-tools: pip install pip-tools.
# Local pip configuration (extra indexes, find-links, constraints) is ignored so the lock
# names only files of the default index.
set -euo pipefail
cd "$(dirname "$0")/.."

env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
  pip-compile --quiet --strip-extras --generate-hashes --allow-unsafe \
  --all-build-deps --no-emit-index-url --no-emit-find-links \
  --output-file requirements.lock pyproject.toml
