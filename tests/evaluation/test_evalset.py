"""The evaluation set: fetched from the registries at set-up, pinned, covering what the card says."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import cv2
import pytest

from evaluation import evalset
from evaluation.motion import read_clip
from models.face_choice import choose_face


@pytest.fixture(scope="module")
def paths() -> list:
    return evalset.ensure(log=lambda line: None)  # set-up fetched it; a fresh cache is fetched here, not skipped


def test_every_item_is_there_and_pinned_files_match(paths: list) -> None:
    assert len(evalset.photos()) >= 16 and len(evalset.clips()) >= 8
    assert len({item.name for item in evalset.ITEMS}) == len(evalset.ITEMS)
    for item, path in zip(evalset.ITEMS, paths, strict=True):
        assert path.is_file() and path.stat().st_size > 1000, item.name
        if item.sha256:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == item.sha256, item.name
        else:
            assert item.package is None, f"{item.name}: a fetched file must be pinned by sha256"


def test_a_changed_file_is_refused() -> None:
    item = dataclasses.replace(evalset.item("surprise.jpg"), sha256="0" * 64)
    with pytest.raises(RuntimeError, match="does not match the pinned"):
        evalset._checked(item, b"not the photo")


def test_every_case_is_covered_or_said_to_be_missing() -> None:
    covered = {case for item in evalset.ITEMS for case in item.covers}
    cases = set(evalset.PHOTO_CASES) | set(evalset.CLIP_CASES)
    assert covered <= cases, f"covers names no case: {covered - cases}"
    assert cases - covered == set(evalset.UNCOVERED)


def test_a_third_of_the_photos_and_two_clips_are_held_out(paths: list) -> None:
    assert 3 * len(evalset.photos(held_out=True)) >= len(evalset.photos())
    assert len(evalset.clips(held_out=True)) >= 2
    manifest = json.loads(evalset.MANIFEST.read_text())
    assert set(manifest["held_out"]) == {item.name for item in evalset.ITEMS if item.held_out}
    assert len(manifest["photos"]) == len(evalset.photos())


def test_each_photo_has_a_face_unless_the_card_says_none_is_found(paths: list) -> None:
    for item in evalset.photos():
        rgb = cv2.cvtColor(cv2.imread(str(item.path)), cv2.COLOR_BGR2RGB)
        found = choose_face(rgb) is not None
        assert found == ("no face found" not in item.covers), item.name


def test_every_clip_decodes_and_the_made_ones_have_their_length(paths: list) -> None:
    for item in evalset.clips():
        frames = read_clip(item.path, 10)
        assert len(frames) == 10 and frames[0].ndim == 3, item.name
    made = [item for item in evalset.clips() if item.package is None]
    assert made and all(len(read_clip(item.path, None)) == 200 for item in made)


def test_the_pairs_cover_every_photo_with_a_face_and_drive_with_every_clip() -> None:
    pairs = evalset.covering_pairs()
    photos = [photo for _, photo in pairs]
    with_face = {item.name for item in evalset.photos() if "no face found" not in item.covers}
    assert sorted(photos) == sorted(with_face)  # each photo with a face exactly once
    clips = [clip for clip, _ in pairs]
    assert {item.name for item in evalset.clips()} == set(clips)
    assert min(clips.count(name) for name in set(clips)) >= 2
