"""The command line as a user meets it: whole processes, Python start and imports included.

256 JPEGs cut from scikit-image's bundled photos (random crops, resized), MobileNetV2 with random
weights, pooled ``out_relu``; each contender is one whole process, timed in turn:

- classic loop: the tutorial script: import TensorFlow, build the model, then per image open,
  resize, ``preprocess_input`` and ``model.predict(x[None])``, a NumPy mean;
- featlib first run: ``featlib extract`` with a fresh cache folder (no store, no tuning.json);
- featlib stored rerun: the same command again, every vector already in the store.

Targets (issue 12): the first run at least 3.5x faster than the classic loop, the stored rerun at
most 0.25x the first run.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/cli.py          # 3 repeats
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/cli.py --quick  # 1 repeat
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import format_table, timed, write_files
from PIL import Image

from featlib.extraction._device import cpu_has_bf16, cpu_model

N_IMAGES = 256
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "horse", "camera", "brick", "grass",
          "gravel", "colorwheel", "hubble_deep_field", "immunohistochemistry", "retina", "moon",
          "logo"]  # fmt: skip
FEATLIB = Path(sys.executable).with_name("featlib")
ARGS = ["--backbone", "mobilenetv2", "--weights", "random", "--layer", "out_relu"]

CLASSIC = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
import tensorflow as tf
from tensorflow import keras

model = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(224, 224, 3))
rows = []
for path in sorted(Path(sys.argv[1]).rglob("*.jpg")):
    x = np.asarray(Image.open(path).convert("RGB").resize((224, 224)), np.float32)
    x = keras.applications.mobilenet_v2.preprocess_input(x)
    rows.append(model.predict(x[None], verbose=0).mean(axis=(1, 2))[0])
np.save(sys.argv[2], np.stack(rows))
"""


def photo_jpegs(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` JPEGs: random crops of scikit-image's photos, resized to 160-480 px a side."""
    from skimage import data, util

    photos = []
    for name in PHOTOS:
        pixels = util.img_as_ubyte(getattr(data, name)())
        photos.append(np.stack([pixels] * 3, -1) if pixels.ndim == 2 else pixels[..., :3])
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        k = int(rng.integers(len(photos)))
        pixels = photos[k]
        h, w = pixels.shape[:2]
        ch, cw = int(h * rng.uniform(0.4, 1.0)), int(w * rng.uniform(0.4, 1.0))
        top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        side = int(rng.integers(160, 481))
        crop = Image.fromarray(pixels[top : top + ch, left : left + cw]).resize((side, side))
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=90)
        files.append((f"{PHOTOS[k]}/{i:04d}.jpg", buf.getvalue()))
    return files


def run(argv: list[str], env: dict, cwd: Path) -> None:
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat instead of 3")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    print(
        f"# cli: {N_IMAGES} JPEGs, mobilenetv2 random weights, out_relu avg, whole processes, "
        f"{repeats} repeat(s); {cpu_model()}, {os.cpu_count()} CPU threads, "
        f"native bf16: {'yes' if cpu_has_bf16() else 'no'}"
    )
    times: dict[str, list[float]] = {"classic loop": [], "featlib first run": [],
                                     "featlib stored rerun": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_files(photo_jpegs(N_IMAGES), tmp / "images")
        for r in range(repeats):
            cache = tmp / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            env = {**os.environ, "FEATLIB_CACHE_DIR": str(cache)}
            extract = [str(FEATLIB), "extract", "images", *ARGS, "--out"]
            commands = {
                "classic loop": [sys.executable, "-c", CLASSIC, "images", "classic.npy"],
                "featlib first run": [*extract, "first.npz"],
                "featlib stored rerun": [*extract, "again.npz"],
            }
            order = list(commands)
            if r % 2:  # the first run must precede its rerun; the classic loop moves
                order = order[1:] + order[:1]
            for name in order:
                times[name].append(timed(functools.partial(run, commands[name], env, tmp)))
        with np.load(tmp / "first.npz") as first, np.load(tmp / "again.npz") as again:
            same = np.array_equal(first["features"], again["features"])
        classic = np.load(tmp / "classic.npy")
    seconds = {name: statistics.median(t) for name, t in times.items()}
    base, first = seconds["classic loop"], seconds["featlib first run"]
    rows = [
        [
            name,
            f"{s:.1f}",
            f"{base / s:.2f}x",
            f"{s / first:.2f}x",
            " ".join(f"{t:.1f}" for t in times[name]),
        ]
        for name, s in seconds.items()
    ]
    header = ["process", "seconds", "faster than classic", "of first run", "each run"]
    print(format_table(rows, header))
    print(
        f"first run {base / first:.2f}x faster than the classic loop (target >= 3.5x); stored "
        f"rerun {seconds['featlib stored rerun'] / first:.2f}x the first run (target <= 0.25x); "
        f"rerun's file equals the first: {same}; classic vectors {classic.shape}"
    )


if __name__ == "__main__":
    main()
