"""Memory: peak resident memory extracting pooled vectors for N images against 10N images.

Each size runs in a fresh process (``featlib.extract_set`` over a folder of JPEGs, MobileNetV2
random weights at 224x224, no store) that reports its own peak resident memory (VmHWM). Pooled
extraction keeps one batch of pixels and one vector per image, so the peak should hardly grow.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/memory.py          # 500 and 5,000 images
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/memory.py --quick  # 100 and 1,000 images
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import format_table, jpeg_files, machine, write_files

CHILD = """
import sys
import featlib
images = featlib.from_folder(sys.argv[1])
bb = featlib.load_backbone("mobilenetv2", weights="random", seed=0)
feats = featlib.extract_set(bb, images, "out_relu")
status = open("/proc/self/status").read()
peak_kb = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1])
print(len(feats.records), peak_kb)
"""


def peak_mb(folder: Path) -> tuple[int, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout.split()
    return int(out[-2]), int(out[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 images")
    args = parser.parse_args()
    small = 100 if args.quick else 500
    print(f"# memory: mobilenetv2 out_relu avg, JPEGs 256x256 on disk; {machine()}")
    rows, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (small, 10 * small):
            folder = Path(tmp, str(n))
            write_files(jpeg_files(n, side=256), folder)
            done, peak = peak_mb(folder)
            peaks.append(peak)
            rows.append([f"{done:,}", f"{peak:.0f}"])
    print(format_table(rows, ["images", "peak MB"]))
    print(f"peak for {10 * small:,} images / peak for {small:,}: {peaks[1] / peaks[0]:.2f}x")


if __name__ == "__main__":
    main()
