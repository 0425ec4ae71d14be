"""How to run a backbone fastest on this machine, measured once and remembered.

``precision="auto"`` (the app's and the command line's default) asks featlib to pick the
settings. What is fastest depends on the model and the machine: on a 2-core CPU with AMX,
bfloat16 ran VGG16 six times faster than float32 but MobileNetV2 slower, and XLA made depthwise
models 20x slower while compiling for 12-15 s. So the first time a backbone, at an input size,
runs in "auto" on a machine, a few settings are timed on random images and the choice is kept
in ``tuning.json`` in the cache folder (``featlib.store.default_cache_dir``).

What is tuned, in this order, each step keeping the best so far:

1. precision: float32 against the machine's low precision (``resolve_precision("auto")``:
   bfloat16 on CPUs with AMX / AVX512-BF16, mixed float16 on GPUs with tensor cores); low
   precision is kept only where it is at least ``MARGIN`` times faster.
2. batch size: the default (``default_batch_size``), then doubled while each doubling is at
   least ``MARGIN`` times faster per image, up to ``MAX_BATCH_FACTOR`` times the default. A
   larger batch only saves per-call overhead, so the search stops once one batch takes longer
   than ``LONG_BATCH_S``.
3. XLA (``jit_compile=True``): tried on GPUs only, kept where at least ``MARGIN`` times faster.

Threads are not tuned: TensorFlow's own pools stay at their default (one intra-op thread cost
30-45% here) and ``extract_set`` decodes on low-priority threads that use what they leave.

Example::

    >>> tuned_settings(featlib.load_backbone("mobilenetv2", weights="random"))  # AVX512-BF16
    Settings(precision='bfloat16', batch_size=32, jit_compile=False)
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

from featlib.backbones import Backbone
from featlib.store import default_cache_dir

__all__ = ["LONG_BATCH_S", "MARGIN", "MAX_BATCH_FACTOR", "Settings", "tuned_settings"]

MARGIN = 1.1
MAX_BATCH_FACTOR = 4
LONG_BATCH_S = 1.0
_FILE = "tuning.json"
_PRECISION_BATCH = 8  # small: the precision is compared before the batch size is known
_measured: dict[str, Settings] = {}  # this process's measurements, for when the file is not kept
_LOCK = threading.Lock()  # one measurement at a time: two at once would time each other


@dataclass(frozen=True)
class Settings:
    """How an ``Extractor`` runs a backbone.

    Attributes:
        precision: ``"float32"``, ``"bfloat16"`` or ``"mixed_float16"``.
        batch_size: images per forward pass.
        jit_compile: whether the forward pass is compiled by XLA.
    """

    precision: str
    batch_size: int
    jit_compile: bool = False


@functools.cache
def _machine_id() -> str:
    """The CPU model, its thread count and the device, so a measurement is reused only where it
    was made."""
    from featlib.extraction import cpu_model, device_name

    return f"{cpu_model()}|{os.cpu_count()}|{device_name()}"


def _seconds_per_image(
    backbone: Backbone, settings: Settings, images: np.ndarray, extractors: dict
) -> float:
    """The best of two timed forward passes of one batch, per image; tracing is not timed.

    ``extractors`` keeps one ``Extractor`` per (precision, XLA) across calls: its traced
    function takes any batch size, so trying another batch size costs no new tracing.
    """
    from featlib.extraction import Extractor
    from featlib.layers import list_layers

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
    for _ in range(2):
        start = time.perf_counter()
        ex.run_batch(batch)
        times.append(time.perf_counter() - start)
    return min(times) / len(batch)


def _measure(backbone: Backbone) -> Settings:
    from featlib.extraction import default_batch_size, device_name, resolve_precision

    default = default_batch_size(backbone.input_size)
    h, w = backbone.input_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (default * MAX_BATCH_FACTOR, h, w, 3), dtype=np.uint8)
    extractors: dict = {}

    def seconds(settings: Settings) -> float:
        return _seconds_per_image(backbone, settings, images, extractors)

    best = Settings("float32", _PRECISION_BATCH)
    low = resolve_precision("auto")
    if low != "float32":
        fp32 = seconds(best)
        candidate = Settings(low, _PRECISION_BATCH)
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


def _valid(entry) -> Settings | None:
    """The settings a ``tuning.json`` entry holds, or None for anything else (the file is not
    featlib's to trust: a bad entry is replaced)."""
    if not isinstance(entry, dict) or set(entry) != {"precision", "batch_size", "jit_compile"}:
        return None
    settings = Settings(**entry)
    good = (
        settings.precision in ("float32", "bfloat16", "mixed_float16")
        and type(settings.batch_size) is int
        and settings.batch_size >= 1
        and isinstance(settings.jit_compile, bool)
    )
    return settings if good else None


def tuned_settings(backbone: Backbone) -> Settings:
    """The fastest settings for ``backbone`` at its input size on this machine.

    Measured the first time (a few seconds: see the module's docstring for what is tried) and
    read from ``tuning.json`` in the cache folder afterwards; where that file cannot be kept
    (or the cache folder changes), this process still remembers its measurement.

    Args:
        backbone: a ``featlib.Backbone``.

    Returns:
        ``Settings``.
    """
    with _LOCK:
        return _tuned(backbone)


def _tuned(backbone: Backbone) -> Settings:
    h, w = backbone.input_size
    # Weights do not change the speed: one measurement serves every weights of a registry
    # architecture; a user's model is its own.
    custom = backbone.family == "custom"
    arch = backbone.key if custom else f"{backbone.name}|top={int(backbone.include_top)}"
    key = f"{arch}|{h}x{w}|{_machine_id()}"
    path = default_cache_dir() / _FILE
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    cached = _valid(known.get(key))
    if cached is not None:
        return cached
    settings = _measured.get(key) or _measure(backbone)
    _measured[key] = settings
    known[key] = asdict(settings)
    try:  # written whole or not at all
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tuning.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(known, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass
    return settings
