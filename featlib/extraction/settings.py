"""The settings an ``Extractor`` runs a backbone with, and their memory: ``tuning.json`` in the
cache folder (``featlib.extraction.store.default_cache_dir``) and this process.

Until a backbone has been timed (``featlib.extraction.tuning``), "auto" means the hardware
defaults (``default_settings``); what "auto" resolved to is kept either way, keyed without
TensorFlow (``machine_id``), so a run whose vectors are all stored finds their precision without
starting it (``known_settings``).
"""

from __future__ import annotations

import functools
import glob
import importlib.metadata
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from featlib.extraction._device import cpu_model, default_batch_size, resolve_precision
from featlib.extraction.store import read_json, update_json

if TYPE_CHECKING:
    from featlib.models.backbones import Backbone

__all__ = [
    "LONG_BATCH_S",
    "MARGIN",
    "MAX_BATCH_FACTOR",
    "MAX_GAIN",
    "Settings",
    "architecture",
    "auto_settings",
    "default_settings",
    "known_settings",
    "machine_id",
    "remembered",
    "tuning_cost",
    "worth_tuning",
]

MARGIN = 1.1
MAX_BATCH_FACTOR = 4
LONG_BATCH_S = 1.0
MAX_GAIN = 0.5  # the most a tuned run saved per image without AMX (VGG16 bf16: 1.95x)
_FILE = "tuning.json"
PRECISION_BATCH = 8  # small: the precision is compared before the batch size is known
TIMED_RUNS = 3  # each setting runs its batch once untimed, then twice timed
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


def tuning_cost(input_size: tuple[int, int]) -> int:
    """The most images the timing runs through the network (each precision at a small batch,
    then the batch sizes up to ``MAX_BATCH_FACTOR`` times the default, each run three times)."""
    default = default_batch_size(input_size)
    sizes = [PRECISION_BATCH] * 2 + [default * 2**i for i in range(MAX_BATCH_FACTOR.bit_length())]
    return TIMED_RUNS * sum(sizes)


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
    batch = default_batch_size(backbone.input_size)
    return Settings(resolve_precision("auto"), batch, measured=False)


def auto_settings(backbone: Backbone) -> Settings:
    """What ``precision="auto"`` runs ``backbone`` with here, without timing anything.

    The measured settings where ``tuned_settings`` has run, else the hardware defaults; either
    is remembered, so later runs (and ``known_settings``) resolve "auto" the same way.
    """
    return remembered(backbone)


def remembered(backbone: Backbone, measure: Callable[[], Settings] | None = None) -> Settings:
    """The settings kept for ``backbone`` at its input size, remembered again; without any, the
    hardware defaults. With ``measure``, settings that were not measured are replaced by what it
    returns (one measurement at a time: two at once would time each other)."""
    with _LOCK:
        key = _entry(_arch(backbone), backbone.input_size)
        known = _recall(key)
        if measure is not None and (known is None or not known.measured):
            known = measure()
        return _keep(key, known or default_settings(backbone))
