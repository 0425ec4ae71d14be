"""Near duplicates that survive editing, on a set built here from the bundled photos.

Distinct pictures: scikit-image's offline photos, each whole and as four crops of 45 % of each
side, one per quadrant (crops of one photo do not overlap). Each picture gets one copy per kind
of edit. A copy must be found with its original at >= 95 % recall per kind, while at most 1 % of
the pairs of distinct pictures are flagged. The features are random, so every match here comes
from the perceptual hashes (``benchmarks/near_duplicates.py`` prints the same figures).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data

from featlib.analysis.checks.dataset import check_dataset
from featlib.analysis.checks.hashes import MATCH_BITS, image_hashes, match, match_bound

PHOTOS = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "colorwheel", "grass",
    "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page",
    "retina", "rocket", "text",
)  # fmt: skip
MIN_RECALL = 0.95
MAX_FALSE_PAIR_RATE = 0.01


def _photo(name: str) -> Image.Image:
    pixels = getattr(data, name)()
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.ndim == 3:
        pixels = pixels[..., :3]
    return Image.fromarray(pixels.astype(np.uint8))


def distinct_pictures(rng: np.random.Generator) -> list[Image.Image]:
    """Each photo at 256 px on its long side, then four crops of it (45 % of each side, one
    in each quadrant, at a random place there) at 192 px wide."""
    pictures = []
    photos = [_photo(name) for name in PHOTOS] + [Image.fromarray(data.stereo_motorcycle()[0])]
    for photo in photos:
        w, h = photo.size
        pictures.append(photo.resize((256 * w // max(w, h), 256 * h // max(w, h))))
        cw, ch = int(w * 0.45), int(h * 0.45)
        for qx in (0, 1):
            for qy in (0, 1):
                x = int(qx * w / 2 + rng.uniform(0, w / 2 - cw))
                y = int(qy * h / 2 + rng.uniform(0, h / 2 - ch))
                crop = photo.crop((x, y, x + cw, y + ch))
                pictures.append(crop.resize((192, 192 * ch // cw)))
    return pictures


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).convert(image.mode)


def _crop(image: Image.Image, rng, keep: float) -> Image.Image:
    """A crop keeping ``keep`` of the area, at a random place."""
    w, h = image.size
    cw, ch = round(w * keep**0.5), round(h * keep**0.5)
    x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    return image.crop((x, y, x + cw, y + ch))


def _colour_shift(image: Image.Image, rng) -> Image.Image:
    shifted = np.asarray(image.convert("RGB")).astype(np.int16) + rng.integers(-25, 26, size=3)
    return Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8))


# Kind of edit -> edit(image, rng); each at the limit or within it.
EDITS = {
    "resized": lambda im, rng: im.resize((round(im.width * 0.6), round(im.height * 0.6))),
    "rotated": lambda im, rng: im.rotate(
        rng.choice([-1, 1]) * rng.uniform(1, 5), resample=Image.Resampling.BICUBIC
    ),
    "cropped": lambda im, rng: _crop(im, rng, 0.8),
    "jpeg": lambda im, rng: _jpeg(im, 30),
    "brightened": lambda im, rng: ImageEnhance.Brightness(im).enhance(1.2),
    "darkened": lambda im, rng: ImageEnhance.Brightness(im).enhance(0.8),
    "colour_shifted": _colour_shift,
    "mirrored": lambda im, rng: ImageOps.mirror(im),
}


def edited_set(seed: int = 0):
    """The pictures, then one copy per kind of edit of each.

    Returns:
        (pixels: uint8 arrays, family: index of the picture each image shows, kind: the edit
        of each image or None for a picture).
    """
    rng = np.random.default_rng(seed)
    pictures = distinct_pictures(rng)
    images, family, kind = list(pictures), list(range(len(pictures))), [None] * len(pictures)
    for name, edit in EDITS.items():
        for i, picture in enumerate(pictures):
            images.append(edit(picture, rng))
            family.append(i)
            kind.append(name)
    return [np.asarray(im) for im in images], np.array(family), kind


def pair_rates(report, family, kind) -> tuple[dict[str, float], float]:
    """Recall per kind of edit (copy flagged with its picture) and the rate of flagged pairs
    among pairs of images of distinct pictures."""
    flagged = {(r["index_a"], r["index_b"]) for r in report.flagged("near_duplicates")}
    originals = {f: i for i, (f, k) in enumerate(zip(family, kind, strict=True)) if k is None}
    recall = {}
    for name in EDITS:
        copies = [i for i, k in enumerate(kind) if k == name]
        recall[name] = float(np.mean([(originals[family[i]], i) in flagged for i in copies]))
    n = len(family)
    same = sum(c * (c - 1) // 2 for c in np.bincount(family))
    false = sum(family[a] != family[b] for a, b in flagged)
    return recall, false / (n * (n - 1) // 2 - same)


@pytest.fixture(scope="module")
def edited():
    pixels, family, kind = edited_set()
    # Random features know nothing: every match comes from the hashes.
    features = np.random.default_rng(1).normal(size=(len(pixels), 256)).astype(np.float32)
    report = check_dataset(
        [f"sha-{i}" for i in range(len(pixels))], [None] * len(pixels), features, pixels=pixels
    )
    return report, family, kind


def test_edited_copies_are_found_and_distinct_pictures_are_not(edited):
    report, family, kind = edited
    recall, false_pair_rate = pair_rates(report, family, kind)
    assert min(recall.values()) >= MIN_RECALL, recall
    assert false_pair_rate <= MAX_FALSE_PAIR_RATE


def test_each_pair_says_why(edited):
    report, _, kind = edited
    rows = report.flagged("near_duplicates")
    assert all(r["hashes_match"] and r["hash_distance"] <= MATCH_BITS for r in rows)
    evidence = {(kind[r["index_a"]], kind[r["index_b"]]): r["evidence"] for r in rows}
    assert evidence[(None, "mirrored")].startswith("mirrored copy")
    assert evidence[(None, "resized")].split(";")[0] in ("same pHash and dHash", "same pHash") or (
        evidence[(None, "resized")].startswith("hashes ")
    )
    assert all(text.split("; ")[-1].startswith("features ") for text in evidence.values())
    per_image = list(csv.DictReader(io.StringIO(report.to_csv())))
    mirrored = next(r for r, k in zip(per_image, kind, strict=True) if k == "mirrored")
    assert mirrored["near_duplicates_flag"] == "1"
    assert mirrored["near_duplicates_evidence"].split(": ")[1].startswith("mirrored copy")


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda g: g[:, ::-1], "mirrored copy"),
        (lambda g: g[3:61, 4:76], "b is a crop of a"),  # 90 % of each side
        (lambda g: g, "same pHash and dHash"),
    ],
)
def test_match_names_the_edit(edit, words):
    gray = np.random.default_rng(2).integers(0, 256, size=(64, 80), dtype=np.uint8)
    gray = np.asarray(Image.fromarray(gray).resize((20, 16)).resize((80, 64)))
    distance, evidence = match(image_hashes(gray), image_hashes(np.ascontiguousarray(edit(gray))))
    assert distance <= MATCH_BITS and evidence.startswith(words)


def test_a_set_of_alike_pictures_gets_a_stricter_bound():
    """Aligned faces lie closer to one another than photos do: their bound is lower."""
    faces = (data.lfw_subset()[:100] * 255).astype(np.uint8)
    photos = distinct_pictures(np.random.default_rng(0))
    face_bound = match_bound(np.array([image_hashes(f) for f in faces]))
    photo_bound = match_bound(np.array([image_hashes(np.asarray(p.convert("L"))) for p in photos]))
    assert face_bound < photo_bound <= MATCH_BITS
