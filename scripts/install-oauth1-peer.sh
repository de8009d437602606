#!/usr/bin/env bash
# Installs what the OAuth 1.0a test provider (tests/peers/oauth1_provider.py) imports:
# oauthlib, and PyJWT with cryptography, which oauthlib verifies RSA-SHA1 with. They go
# under <tools>/python, not into the machine's Python, so a run leaves nothing behind.
set -euo pipefail
tools="${1:?usage: install-oauth1-peer.sh TOOLS_DIR}"
target="$tools/python"
# Pinned: the provider is written against oauthlib 3.2's RequestValidator.
if [ ! -d "$target/oauthlib" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$target" \
    oauthlib==3.2.2 pyjwt==2.15.1 cryptography==50.0.2
fi
PYTHONPATH="$target" python3 -c 'import oauthlib, jwt, cryptography; print("oauthlib", oauthlib.__version__)'
