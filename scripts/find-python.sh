#!/usr/bin/env bash
# Print the path of a Python X.Y interpreter: pyenv's newest X.Y.* (through `pyenv`, or straight from its
# versions directory when pyenv is not on PATH), else pythonX.Y on PATH. Exits 1 with one line saying how
# to get it when there is none (`pyenv install` needs the internet).
set -euo pipefail
version=${1:?usage: $0 X.Y}
if command -v pyenv >/dev/null && prefix=$(pyenv prefix "$version" 2>/dev/null) \
    && [[ -x "$prefix/bin/python$version" ]]; then
    echo "$prefix/bin/python$version"
    exit 0
fi
newest=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".[0-9]* 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -n "$newest" && -x "$newest/bin/python$version" ]]; then
    echo "$newest/bin/python$version"
    exit 0
fi
if found=$(command -v "python$version") && "$found" -c '' 2>/dev/null; then
    echo "$found"
    exit 0
fi
echo "no Python $version on this machine: \`pyenv install $version\` or put python$version on PATH" >&2
exit 1
