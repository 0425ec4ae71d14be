"""How to run a backbone fastest on this machine, measured once and remembered.

``precision="auto"`` (the app's and the command line's default) asks featlib to pick the
settings. What is fastest depends on the model and the machine: bfloat16 can run one backbone
several times faster than float32 and another slower, and XLA can slow depthwise models down
while taking seconds to compile (``benchmarks/RESULTS.md`` has the figures). So the first time
a job large enough to repay it
runs a backbone, at an input size, in "auto" on a machine, a few settings are timed on random
images and the choice is kept in ``tuning.json`` in the cache folder
(``featlib.extraction.store.default_cache_dir``).

What is tuned, in this order, each step keeping the best so far:

1. precision: float32 against the machine's low precision (``resolve_precision("auto")``:
   bfloat16 on CPUs with AMX / AVX512-BF16, mixed float16 on GPUs with tensor cores); low
   precision is kept only where it is at least ``MARGIN`` times faster.
2. batch size: the default (``default_batch_size``), then doubled while each doubling is at
   least ``MARGIN`` times faster per image, up to ``MAX_BATCH_FACTOR`` times the default. A
   larger batch only saves per-call overhead, so the search stops once one batch takes longer
   than ``LONG_BATCH_S``.
3. XLA (``jit_compile=True``): tried on GPUs only, kept where at least ``MARGIN`` times faster.

Timing costs seconds, so it is done only for a job large enough to repay it
(``worth_tuning``: the images ``extract_set`` will compute, against what the timing runs).
Until a backbone has been timed, "auto" means the hardware defaults (``default_settings``); what
"auto" resolved to is kept in ``tuning.json`` either way, keyed without TensorFlow
(``machine_id``), so a run whose vectors are all stored finds their precision without starting it
(``known_settings``).

Threads are not tuned: TensorFlow's own pools stay at their default (fewer threads were slower)
and ``extract_set`` decodes on low-priority threads that use what they leave.

On a CPU with AVX512-BF16, for example (not run as a doctest: it times for seconds, and its
answer depends on the machine)::

    tuned_settings(featlib.load_backbone("mobilenetv2", weights="random"))
    # Settings(precision='bfloat16', batch_size=32, jit_compile=False, measured=True)
"""

from __future__ import annotations

import time

import numpy as np

from featlib.extraction._device import default_batch_size, device_name, resolve_precision
from featlib.extraction.extractor import Extractor
from featlib.extraction.settings import (
    LONG_BATCH_S,
    MARGIN,
    MAX_BATCH_FACTOR,
    PRECISION_BATCH,
    TIMED_RUNS,
    Settings,
    remembered,
)
from featlib.models.backbones import Backbone
from featlib.models.layers import list_layers

__all__ = ["tuned_settings"]


def _seconds_per_image(
    backbone: Backbone, settings: Settings, images: np.ndarray, extractors: dict
) -> float:
    """The best of two timed forward passes of one batch, per image; tracing is not timed.

    ``extractors`` keeps one ``Extractor`` per (precision, XLA) across calls: its traced
    function takes any batch size, so trying another batch size costs no new tracing.
    """
    kind = (settings.precision, settings.jit_compile)
    if kind not in extractors:
        extractors[kind] = Extractor(
            backbone, list_layers(backbone)[-1].name, "avg", settings.precision,
            jit_compile=settings.jit_compile,
        )  # fmt: skip
    ex = extractors[kind]
    batch = images[: settings.batch_size]
    ex.run_batch(batch)
    times = []
    for _ in range(TIMED_RUNS - 1):
        start = time.perf_counter()
        ex.run_batch(batch)
        times.append(time.perf_counter() - start)
    return min(times) / len(batch)


def _measure(backbone: Backbone) -> Settings:
    default = default_batch_size(backbone.input_size)
    h, w = backbone.input_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (default * MAX_BATCH_FACTOR, h, w, 3), dtype=np.uint8)
    extractors: dict = {}

    def seconds(settings: Settings) -> float:
        return _seconds_per_image(backbone, settings, images, extractors)

    best = Settings("float32", PRECISION_BATCH)
    low = resolve_precision("auto")
    if low != "float32":
        fp32 = seconds(best)
        candidate = Settings(low, PRECISION_BATCH)
        if seconds(candidate) * MARGIN < fp32:
            best = candidate
    best = Settings(best.precision, default)
    per_image = seconds(best)
    while best.batch_size < default * MAX_BATCH_FACTOR and per_image * best.batch_size < (
        LONG_BATCH_S
    ):
        bigger = Settings(best.precision, best.batch_size * 2)
        per_bigger = seconds(bigger)
        if per_bigger * MARGIN >= per_image:
            break
        best, per_image = bigger, per_bigger
    if device_name() != "CPU":
        xla = Settings(best.precision, best.batch_size, jit_compile=True)
        if seconds(xla) * MARGIN < per_image:
            best = xla
    return best


def tuned_settings(backbone: Backbone) -> Settings:
    """The fastest settings for ``backbone`` at its input size on this machine.

    Measured the first time (a few seconds: see the module's docstring for what is tried) and
    read from ``tuning.json`` in the cache folder afterwards; where that file cannot be kept
    (or the cache folder changes), this process still remembers its measurement.

    Args:
        backbone: a ``featlib.Backbone``.

    Returns:
        ``Settings`` with ``measured=True``.
    """
    return remembered(backbone, lambda: _measure(backbone))
