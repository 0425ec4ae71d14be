"""The Ray engine against the local engine: ``featlib extract`` on the same JPEGs, whole commands.

On one folder of JPEGs cut from the bundled photos (256x256, MobileNetV2 random weights at
224x224, float32, no store), each contender is the installed command in a fresh process, as a
user runs it, timed in turn (the order rotated every repeat):

- local: ``featlib extract DIR ... --out OUT.npz``;
- ray: ``featlib extract DIR ... --engine ray --out OUT.parquet``: a local Ray with one actor
  (start-up included), shards written by the workers.

While each command runs, the resident memory of its process tree (the driver, and for Ray its
GCS, raylet and workers) is sampled from /proc every 0.2 s. Then the Ray command once more on a
larger folder: a driver that held the vectors would grow with it; streaming keeps it flat.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/ray_engine.py                 # 1,000; 10,000
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/ray_engine.py --quick         # 200; 1,000

(Named ``ray_engine.py``, not ``ray.py``: a script's folder comes first on ``sys.path``, so a
``ray.py`` there would be imported as Ray itself.)
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import ROOT, format_table, machine
from PIL import Image

import featlib

FEATLIB = str(ROOT / ".venv" / "bin" / "featlib")
ARGS = ["--backbone", "mobilenetv2", "--weights", "random", "--layer", "out_relu",
        "--precision", "float32", "--no-store"]  # fmt: skip


def photo_jpegs(folder: Path, n: int, side: int = 256, seed: int = 0) -> None:
    """``n`` distinct JPEGs: random ``side`` x ``side`` crops of the bundled photos."""
    rng = np.random.default_rng(seed)
    photos = featlib.load_samples("photos")
    pictures = [(r.label, photos.load(r)) for r in photos.ok]
    for i in range(n):
        label, pixels = pictures[i % len(pictures)]
        h, w = pixels.shape[:2]
        crop = (min(side, h), min(side, w))
        y, x = rng.integers(0, h - crop[0] + 1), rng.integers(0, w - crop[1] + 1)
        buf = io.BytesIO()
        Image.fromarray(pixels[y : y + crop[0], x : x + crop[1]]).save(buf, "JPEG", quality=90)
        path = folder / label / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())


def _tree_rss_mb(root: int) -> tuple[float, float]:
    """Resident MB of ``root`` and of ``root`` with all its descendants, from /proc."""
    parent, rss = {}, {}
    for stat in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in stat.read_text().splitlines())
        except (OSError, ValueError):
            continue
        pid = int(stat.parent.name)
        parent[pid] = int(fields["PPid"])
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0.0)
        pending += [c for c, p in parent.items() if p == pid]
    return rss.get(root, 0.0), total


def run(argv: list[str]) -> dict:
    """Seconds, peak driver MB and peak process-tree MB of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = [0.0, 0.0]

    def sample():
        while proc.poll() is None:
            driver, tree = _tree_rss_mb(proc.pid)
            peaks[0], peaks[1] = max(peaks[0], driver), max(peaks[1], tree)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{err[-3000:]}")
    return {"seconds": seconds, "driver": peaks[0], "tree": peaks[1], "said": out.strip()}


def commands(folder: Path, work: Path, tag: str) -> dict[str, list[str]]:
    return {
        "local": [FEATLIB, "extract", str(folder), *ARGS, "--out", str(work / f"{tag}.npz")],
        "ray": [FEATLIB, "extract", str(folder), *ARGS, "--engine", "ray",
                "--out", str(work / f"{tag}.parquet")],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images, memory at 1,000")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--memory-images", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    n = args.images or (200 if args.quick else 1000)
    big = args.memory_images or (1000 if args.quick else 10_000)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photo_jpegs(work / "small", n)
        rows, results = [], {"local": [], "ray": []}
        for r in range(args.repeats):
            cmds = commands(work / "small", work, f"run{r}")
            for name in list(cmds)[r % 2 :] + list(cmds)[: r % 2]:
                results[name].append(run(cmds[name]))
                shutil.rmtree(work / f"run{r}.parquet", ignore_errors=True)
        for name, runs in results.items():
            rows.append([
                f"{name}, {n:,} images", f"{np.median([x['seconds'] for x in runs]):.1f}",
                f"{n / np.median([x['seconds'] for x in runs]):.1f}",
                f"{max(x['driver'] for x in runs):,.0f}", f"{max(x['tree'] for x in runs):,.0f}",
            ])  # fmt: skip
        ratio = np.median([x["seconds"] for x in results["ray"]]) / np.median(
            [x["seconds"] for x in results["local"]]
        )
        shutil.rmtree(work / "small")
        photo_jpegs(work / "big", big, seed=1)
        large = run(commands(work / "big", work, "big")["ray"])
        rows.append([
            f"ray, {big:,} images", f"{large['seconds']:.1f}", f"{big / large['seconds']:.1f}",
            f"{large['driver']:,.0f}", f"{large['tree']:,.0f}",
        ])  # fmt: skip
        written = featlib.read_features(work / "big.parquet")
        print(format_table(rows, ["command", "seconds", "images/s", "driver MB", "all MB"]))
        print(f"\nray / local, whole command on {n:,} images: {ratio:.2f}x (target <= 1.3x)")
        print(f"{len(written.records):,} rows read back from the {big:,}-image shards")
        print(f"last ray run said: {large['said']}")


if __name__ == "__main__":
    main()
