#!/usr/bin/env bash
# Regenerate requirements.txt and requirements-test.txt (every package pinned, with hashes) from
# requirements.in and requirements-test.in. Existing pins are kept unless a .in file asks for another
# version; pass --upgrade to move everything to the newest allowed releases.
# pip-tools runs from a throwaway virtualenv so that it never lands in the project's own.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${PIP_TOOLS_VENV:-${TMPDIR:-/tmp}/opg-incident-pip-tools}"
[ -x "$tools/bin/pip-compile" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q pip-tools==7.7.0; }
export CUSTOM_COMPILE_COMMAND="deploy/lock-requirements.sh"
for name in requirements requirements-test; do
  "$tools/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
    --no-emit-find-links "$@" -o "$name.txt" "$name.in"
done
