"""Shared pieces of the benchmarks: interleaved timing, deterministic test images, printing.

The machine is shared and noisy, so contenders are timed in turn within one run (rotating the
order each repeat) and compared as ratios of medians, never against fixed numbers.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("FEATLIB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from featlib.cli.commands import format_table

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "format_table", "interleaved", "jpeg_files", "machine", "timed", "write_files"]


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each contender, timed in turn, the order rotated every repeat."""
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(timed(contenders[name]))
    return {n: statistics.median(t) for n, t in times.items()}


def jpeg_files(n: int, side: int = 256, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` distinct JPEGs of ``side`` x ``side``: smooth colour fields with noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    files = []
    for i in range(n):
        a, b, c = rng.uniform(0, 255, 3)
        base = np.stack([a * x, b * y, c * (1 - x * y)], -1)
        pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=90)
        files.append((f"c{i % 10}/{i:05d}.jpg", buf.getvalue()))
    return files


def write_files(files: list[tuple[str, bytes]], folder: Path) -> None:
    """Write ``(relative name, bytes)`` pairs under ``folder``."""
    for name, data in files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def machine() -> str:
    """One line about where this ran."""
    from featlib.extraction._device import cpu_has_bf16, device_name

    return (
        f"device {device_name()}, {os.cpu_count()} CPU threads, "
        f"native bf16: {'yes' if cpu_has_bf16() else 'no'}"
    )
