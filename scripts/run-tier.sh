#!/usr/bin/env bash
# Run one pytest tier. pytest exits 5 when it collected no test: a tier that tests nothing is broken,
# so under CI=true that fails the run; on a developer machine it is a loud notice.
# The venv is $VENV (the Makefile's: .venv, or .venv-X.Y for another Python version).
set -uo pipefail
tier=$1; shift
venv=${VENV:-.venv}
echo "=== tier: $tier ($("$venv/bin/python" -c 'import platform; print("Python", platform.python_version())'), $venv) ==="
"$venv/bin/python" -m pytest -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "!!! tier $tier collected no tests" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi
exit "$rc"
