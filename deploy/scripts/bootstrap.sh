#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for conceptfreq: apt packages, a venv, pinned Python packages.
# Idempotent: each step checks before it acts, so `make` can call it whenever the pins change.
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "bootstrap: '$*' needs root; run it as root or install the package yourself" >&2; return 1; fi; }

# apt packages the tests start for real: the ClickHouse server (Debian ships 18.16, docs/platform.md),
# Prometheus with promtool (dashboard queries and alert rules are checked against a real server),
# ZooKeeper (with its JRE) for the replicated-ClickHouse tests, and the WordNet database files the
# phrase+pos matcher reads (core/lexicon.py).
missing=()
command -v clickhouse-server >/dev/null || missing+=(clickhouse-server clickhouse-client)
command -v promtool >/dev/null || missing+=(prometheus)
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
[ -f /usr/share/wordnet/index.noun ] || missing+=(wordnet-base)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]} with apt"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(not (3,10) <= sys.version_info[:2] < (3,13))'; then
      PYTHON=$candidate; break
    fi
  done
fi
[ -n "$PYTHON" ] || { echo "bootstrap: need Python 3.10-3.12 (python3 -m venv)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV" || { as_root apt-get install -y -qq python3-venv >/dev/null && "$PYTHON" -m venv "$VENV"; }
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
"$VENV/bin/python" -m pip install -q -r requirements.lock 2> >(grep -v '^WARNING: Location' >&2)
"$VENV/bin/python" -m pip install -q --no-deps -e services 2> >(grep -v '^WARNING: Location' >&2)
echo "bootstrap: ready ($VENV)"
