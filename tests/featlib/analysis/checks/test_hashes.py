"""Near duplicates that survive editing, on a set built here from the bundled photos.

Distinct pictures: scikit-image's offline photos, each whole and as four crops of 45 % of each
side, one per quadrant (crops of one photo do not overlap). Each picture gets one copy per kind
of edit. A copy must be found with its original at >= 95 % recall per kind, while at most 1 % of
the pairs of distinct pictures are flagged (``benchmarks/near_duplicates.py`` prints the same
figures). The features are computed here, cheap but about the content: each image's colours
as an 8x8 thumbnail, as a network's pooled features would be, only blunter. A hash match far
from exact needs their support, so a distinct pair whose hashes meet by chance is not flagged.
"""

from __future__ import annotations

import csv
import io

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data

from featlib.analysis.checks.dataset import check_dataset
from featlib.analysis.checks.hashes import MATCH_BITS, image_hashes, judge, match, match_bound

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


def thumbnail_features(pixels) -> np.ndarray:
    """Each image's colours as an 8x8 thumbnail (box filter), flattened: shape (n, 192)."""
    return np.array(
        [
            np.asarray(Image.fromarray(p).convert("RGB").resize((8, 8), Image.Resampling.BOX))
            for p in pixels
        ],
        dtype=np.float32,
    ).reshape(len(pixels), -1)


@pytest.fixture(scope="module")
def edited():
    pixels, family, kind = edited_set()
    report = check_dataset(
        [f"sha-{i}" for i in range(len(pixels))],
        [None] * len(pixels),
        thumbnail_features(pixels),
        pixels=pixels,
    )
    return report, family, kind


def test_edited_copies_are_found_and_distinct_pictures_are_not(edited):
    report, family, kind = edited
    recall, false_pair_rate = pair_rates(report, family, kind)
    assert min(recall.values()) >= MIN_RECALL, recall
    assert false_pair_rate <= MAX_FALSE_PAIR_RATE


def test_each_pair_says_why(edited):
    report, family, kind = edited
    rows = report.flagged("near_duplicates")
    threshold = report.thresholds["near_duplicates"]
    assert all(r["hashes_match"] or r["similarity"] > threshold for r in rows)
    assert all(r["hash_distance"] <= MATCH_BITS for r in rows if r["hashes_match"])
    evidence = {
        (kind[r["index_a"]], kind[r["index_b"]]): r["evidence"]
        for r in rows
        if family[r["index_a"]] == family[r["index_b"]]
    }
    assert evidence[(None, "mirrored")].startswith("mirrored copy")
    assert evidence[(None, "resized")].split(";")[0] in ("same pHash and dHash", "same pHash") or (
        evidence[(None, "resized")].startswith("hashes ")
    )
    assert all(text.split("; ")[-1].startswith("features ") for text in evidence.values())
    per_image = list(csv.DictReader(io.StringIO(report.to_csv())))
    mirrored = next(r for r, k in zip(per_image, kind, strict=True) if k == "mirrored")
    assert mirrored["near_duplicates_flag"] == "1"
    assert mirrored["near_duplicates_evidence"].split(": ")[1].startswith("mirrored copy")


def test_far_hash_matches_count_only_where_the_features_agree(edited):
    """Past half the bound the evidence says whether the features agreed; edited copies found
    that way are there, and every match the features contradict is left unflagged."""
    report, family, kind = edited
    rows = report.table("near_duplicates").as_dicts()
    agreed = [r for r in rows if " confirm it (" in r["evidence"]]
    contradicted = [r for r in rows if " reject it (" in r["evidence"]]
    assert {kind[r["index_b"]] for r in agreed if kind[r["index_a"]] is None} >= {
        "rotated",
        "cropped",
    }
    assert all(r["hashes_match"] and r["flagged"] for r in agreed)
    assert contradicted and not any(r["hashes_match"] or r["flagged"] for r in contradicted)
    assert (
        sum(family[r["index_a"]] != family[r["index_b"]] for r in contradicted)
        > len(contradicted) / 2
    )


def test_a_distinct_pair_whose_hashes_meet_by_chance_is_not_flagged():
    """Two distinct pictures whose hashes lie past half the bound, with features that
    contradict them (opposite thumbnails): not near duplicates. Their hashes alone used to
    make them one."""
    pictures = distinct_pictures(np.random.default_rng(0))
    pixels = [np.asarray(p.convert("L")) for p in pictures]  # grey: hashed as given
    hashes = np.array([image_hashes(gray) for gray in pixels])
    bound = match_bound(hashes)
    pairs = [
        (a, b, match(hashes[a], hashes[b])[0])
        for a in range(len(pictures))
        for b in range(a + 1, len(pictures))
    ]
    a, b, distance = min(
        (pair for pair in pairs if pair[2] > bound / 2 and pair[0] // 5 != pair[1] // 5),
        key=lambda pair: pair[2],
    )
    assert distance <= bound  # the hashes match
    features = thumbnail_features(pixels)
    centre = features.mean(axis=0)
    features[b] = 2 * centre - features[a]  # the opposite of a around the set's mean
    report = check_dataset(
        [f"sha-{i}" for i in range(len(pixels))], [None] * len(pixels), features, pixels=pixels
    )
    row = next(
        r
        for r in report.table("near_duplicates").as_dicts()
        if {r["index_a"], r["index_b"]} == {a, b}
    )
    assert row["hash_distance"] == distance and row["similarity"] < 0
    assert not row["hashes_match"] and not row["flagged"]
    assert " reject it (" in row["evidence"]


@pytest.mark.parametrize(
    ("distance", "similarity", "counts", "words"),
    [
        (10, -0.5, True, "; features -0.50"),  # within half the bound: the hashes decide
        (17, 0.7, True, "confirm it (0.61 needed)"),  # just past it: near the lowest reference
        (32, 0.7, False, "reject it (0.75 needed)"),  # at the bound: the median
        (32, 0.75, True, "confirm it (0.75 needed)"),
    ],
)
def test_judge_asks_more_of_the_features_the_farther_the_hashes(
    distance, similarity, counts, words
):
    reference = np.array([0.6, 0.7, 0.8, 0.9])
    counted, evidence = judge(distance, "b is a crop of a", similarity, 32.0, reference)
    assert counted is counts and evidence.startswith("b is a crop of a;")
    assert evidence.endswith(words)


def test_judge_lets_the_hashes_decide_without_distinct_pictures():
    assert judge(30, "same centre", -0.9, 32.0, np.empty(0)) == (
        True,
        "same centre; features -0.90",
    )


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


def imagehash_views(gray: np.ndarray) -> np.ndarray:
    """The reference: ``imagehash.phash`` and ``imagehash.dhash`` of the 11 views, each view cut
    and mirrored with Pillow as the hashes' docstring describes."""
    image = Image.fromarray(gray)
    h, w = gray.shape
    views = [image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    offsets = (0.0, (1 - 0.9) / 2, 1 - 0.9)
    for oy in offsets:
        for ox in offsets:
            x0, y0 = int(ox * w), int(oy * h)
            x1, y1 = max(x0 + 1, round((ox + 0.9) * w)), max(y0 + 1, round((oy + 0.9) * h))
            views.append(image.crop((x0, y0, x1, y1)))
    return np.array(
        [np.concatenate([imagehash.phash(v).hash.ravel(), imagehash.dhash(v).hash.ravel()])
         for v in views]
    )  # fmt: skip


def _grey_photo(name: str, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(_photo(name).convert("L").resize(size))


@pytest.mark.parametrize(
    "gray",
    [
        _grey_photo("camera", (256, 256)),
        _grey_photo("astronaut", (160, 96)),  # wide: Pillow's horizontal pass first
        _grey_photo("coffee", (96, 160)),  # tall: its vertical pass first
        _grey_photo("text", (33, 250)),
        _grey_photo("moon", (25, 25)),  # smaller than pHash's 32x32: enlarged
        _grey_photo("brick", (32, 140)),  # one side already 32: that pass is skipped
        np.random.default_rng(3).integers(0, 256, size=(117, 203), dtype=np.uint8),
        np.random.default_rng(4).integers(0, 256, size=(1, 300), dtype=np.uint8),
        np.full((64, 48), 77, dtype=np.uint8),  # flat: the DCT's zeros decide the median
    ],
    ids=["256", "wide", "tall", "thin", "tiny", "32-wide", "noise", "one-row", "flat"],
)
def test_hashes_are_imagehash_bit_for_bit(gray):
    assert np.array_equal(image_hashes(gray), imagehash_views(gray))


def test_hashes_are_imagehash_bit_for_bit_on_many_sizes():
    """Every size from 1 to 120 on a side in steps of 7, and a few large ones: Pillow's choice
    of which pass runs first, its skipped passes and its enlarging all show somewhere."""
    rng = np.random.default_rng(5)
    sizes = [(h, w) for h in range(1, 121, 7) for w in range(1, 121, 7)]
    sizes += [(300, 151), (151, 300), (257, 256), (480, 33)]
    for h, w in sizes:
        gray = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
        assert np.array_equal(image_hashes(gray), imagehash_views(gray)), (h, w)
