"""What this machine offers: the device TensorFlow runs on, the CPU's bfloat16 support, the
precision "auto" means here, the default batch size."""

from __future__ import annotations

import functools

import numpy as np

from featlib.extraction.features import PRECISIONS, check_choice

__all__ = ["cpu_has_bf16", "cpu_model", "default_batch_size", "device_name", "resolve_precision"]


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


def device_name() -> str:
    """The device TensorFlow runs on: ``"GPU:0"`` when it sees a GPU, else ``"CPU"``."""
    from featlib._tf import tf  # here, not at the top: settings.py imports this module without TF

    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU"


def resolve_precision(precision: str) -> str:
    """Turn ``"auto"`` into the fastest precision this machine runs accurately.

    bfloat16 on CPUs with AMX / AVX512-BF16, mixed float16 on GPUs with tensor cores
    (compute capability 7.0 or newer), float32 elsewhere.
    """
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    from featlib._tf import tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "mixed_float16" if details.get("compute_capability", (0, 0)) >= (7, 0) else "float32"
    return "bfloat16" if cpu_has_bf16() else "float32"
