# shellcheck shell=bash
# Shared paths for the project's scripts. Source it; it sets no options of its own.

# Everything the scripts install or build lives under one cache directory outside the clone,
# so a fresh clone reuses it and `rm -rf` of the clone loses nothing expensive.
SUITE_CACHE="${PROXIMITY_SUITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proximity-suite}"
export SUITE_CACHE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SUITE_CACHE/target}"
# Python tools (moto, kubernetes-validate, schemathesis) share one virtualenv.
export SUITE_VENV="$SUITE_CACHE/venv"
export SUITE_DATA="$SUITE_CACHE/data"

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The repository root, whatever directory the caller is in.
repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }
