"""How to run a backbone fastest on this machine, measured once and remembered.

``precision="auto"`` (the app's and the command line's default) asks featlib to pick the
settings. What is fastest depends on the model and the machine: on a 2-core CPU with AMX,
bfloat16 ran VGG16 six times faster than float32 but MobileNetV2 slower, and XLA made depthwise
models 20x slower while compiling for 12-15 s. So the first time a job large enough to repay it
runs a backbone, at an input size, in "auto" on a machine, a few settings are timed on random
images and the choice is kept in ``tuning.json`` in the cache folder
(``featlib.store.default_cache_dir``).

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

Threads are not tuned: TensorFlow's own pools stay at their default (one intra-op thread cost
30-45% here) and ``extract_set`` decodes on low-priority threads that use what they leave.

Example::

    >>> tuned_settings(featlib.load_backbone("mobilenetv2", weights="random"))  # AVX512-BF16
    Settings(precision='bfloat16', batch_size=32, jit_compile=False, measured=True)
"""

from __future__ import annotations

import functools
import glob
import importlib.metadata
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from featlib.store import read_json, update_json

if TYPE_CHECKING:
    from featlib.backbones import Backbone

__all__ = [
    "LONG_BATCH_S",
    "MARGIN",
    "MAX_BATCH_FACTOR",
    "MAX_GAIN",
    "Settings",
    "architecture",
    "auto_settings",
    "cpu_has_bf16",
    "cpu_model",
    "default_batch_size",
    "default_settings",
    "known_settings",
    "machine_id",
    "tuned_settings",
    "tuning_cost",
    "worth_tuning",
]

MARGIN = 1.1
MAX_BATCH_FACTOR = 4
LONG_BATCH_S = 1.0
MAX_GAIN = 0.5  # the most a tuned run saved per image without AMX (VGG16 bf16: 1.95x)
_FILE = "tuning.json"
_PRECISION_BATCH = 8  # small: the precision is compared before the batch size is known
_TIMED_RUNS = 3  # each setting runs its batch once untimed, then twice timed
_measured: dict[str, Settings] = {}  # this process's measurements, for when the file is not kept
_LOCK = threading.Lock()  # one measurement at a time: two at once would time each other


@dataclass(frozen=True)
class Settings:
    """How an ``Extractor`` runs a backbone.

    Attributes:
        precision: ``"float32"``, ``"bfloat16"`` or ``"mixed_float16"``.
        batch_size: images per forward pass.
        jit_compile: whether the forward pass is compiled by XLA.
        measured: whether timing chose them (else they are the hardware defaults).
    """

    precision: str
    batch_size: int
    jit_compile: bool = False
    measured: bool = True


@functools.cache
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16), per /proc/cpuinfo."""
    flags = _cpuinfo()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or ``"cpu"`` where it does not say."""
    models = [
        ln.split(":", 1)[1].strip() for ln in _cpuinfo().splitlines() if ln.startswith("model name")
    ]
    return models[0] if models else "cpu"


def default_batch_size(input_size: tuple[int, int]) -> int:
    """32 at 224x224, fewer for larger inputs so a batch stays about the same size in memory."""
    return int(np.clip(32 * (224 * 224) // (input_size[0] * input_size[1]), 1, 32))


def _tensorflow_build() -> str:
    for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-macos"):
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "tensorflow"


@functools.cache
def machine_id() -> str:
    """What a measurement depends on besides the model, found without importing TensorFlow.

    The CPU model and thread count, the TensorFlow build, and the GPUs it could see (NVIDIA
    device files and ``CUDA_VISIBLE_DEVICES``): a measurement is reused only where all of them
    are the same.
    """
    gpus = ",".join(sorted(os.path.basename(p) for p in glob.glob("/dev/nvidia[0-9]*")))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "*")
    return f"{cpu_model()}|{os.cpu_count()}|{_tensorflow_build()}|gpus={gpus or '-'}:{visible}"


def architecture(name: str, include_top: bool, key: str | None = None) -> str:
    """What a measurement is kept under besides the machine and input size.

    Weights do not change the speed: one measurement serves every weights of a registry
    architecture (``name`` and ``include_top``); a user's own model passes its ``key``.
    """
    return key if key is not None else f"{name}|top={int(include_top)}"


def _arch(backbone: Backbone) -> str:
    custom = backbone.family == "custom"
    return architecture(backbone.name, backbone.include_top, backbone.key if custom else None)


def _entry(arch: str, input_size: tuple[int, int]) -> str:
    h, w = input_size
    return f"{arch}|{h}x{w}|{machine_id()}"


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
    for _ in range(_TIMED_RUNS - 1):
        start = time.perf_counter()
        ex.run_batch(batch)
        times.append(time.perf_counter() - start)
    return min(times) / len(batch)


def tuning_cost(input_size: tuple[int, int]) -> int:
    """The most images the timing runs through the network (each precision at a small batch,
    then the batch sizes up to ``MAX_BATCH_FACTOR`` times the default, each run three times)."""
    default = default_batch_size(input_size)
    sizes = [_PRECISION_BATCH] * 2 + [default * 2**i for i in range(MAX_BATCH_FACTOR.bit_length())]
    return _TIMED_RUNS * sum(sizes)


def worth_tuning(n_images: int, input_size: tuple[int, int]) -> bool:
    """Whether timing can pay for itself on a job of ``n_images`` to compute.

    Timing costs about ``tuning_cost`` images' worth of forward passes (plus tracing); the best
    it can save is ``MAX_GAIN`` of each image's time. Below that break-even the job runs on the
    hardware defaults.

    Example::

        >>> worth_tuning(256, (224, 224)), worth_tuning(10_000, (224, 224))
        (False, True)
    """
    return n_images * MAX_GAIN >= tuning_cost(input_size)


def _measure(backbone: Backbone) -> Settings:
    from featlib.extraction import device_name, resolve_precision

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
    required = {"precision", "batch_size", "jit_compile"}
    if not isinstance(entry, dict) or not required <= set(entry) <= required | {"measured"}:
        return None
    settings = Settings(**entry)
    good = (
        settings.precision in ("float32", "bfloat16", "mixed_float16")
        and type(settings.batch_size) is int
        and settings.batch_size >= 1
        and isinstance(settings.jit_compile, bool)
        and isinstance(settings.measured, bool)
    )
    return settings if good else None


def _recall(key: str) -> Settings | None:
    """The file's entry or this process's memory of it, a measured one first."""
    found = [x for x in (_valid(read_json(_FILE).get(key)), _measured.get(key)) if x is not None]
    return next((x for x in found if x.measured), found[0] if found else None)


def known_settings(arch: str, input_size: tuple[int, int]) -> Settings | None:
    """What "auto" resolved to for ``arch`` (see ``architecture``) at ``input_size`` on this
    machine, measured or not, or None when it never ran here. Needs no TensorFlow."""
    return _recall(_entry(arch, input_size))


def _keep(key: str, settings: Settings) -> Settings:
    """Remember ``settings`` in this process and in ``tuning.json`` (where it can be written)."""
    _measured[key] = settings
    if _valid(read_json(_FILE).get(key)) != settings:
        update_json(_FILE, key, asdict(settings))
    return settings


def default_settings(backbone: Backbone) -> Settings:
    """The hardware defaults, untimed: the machine's low precision (``resolve_precision``) and
    ``default_batch_size``."""
    from featlib.extraction import resolve_precision

    batch = default_batch_size(backbone.input_size)
    return Settings(resolve_precision("auto"), batch, measured=False)


def auto_settings(backbone: Backbone) -> Settings:
    """What ``precision="auto"`` runs ``backbone`` with here, without timing anything.

    The measured settings where ``tuned_settings`` has run, else the hardware defaults; either
    is remembered, so later runs (and ``known_settings``) resolve "auto" the same way.
    """
    with _LOCK:
        key = _entry(_arch(backbone), backbone.input_size)
        return _keep(key, _recall(key) or default_settings(backbone))


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
    with _LOCK:
        key = _entry(_arch(backbone), backbone.input_size)
        known = _recall(key)
        return _keep(key, known if known is not None and known.measured else _measure(backbone))
