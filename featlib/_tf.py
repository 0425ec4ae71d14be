"""Import TensorFlow and Keras quietly, once, for the modules that need them.

TensorFlow prints a screen of start-up notices (oneDNN, "Could not find cuda drivers", a failed
``cuInit`` on machines without a GPU) that mean nothing to a user of featlib.
``TF_CPP_MIN_LOG_LEVEL`` does not reach them: they are written by absl from C++ while the
libraries load, before TensorFlow's own logging is set up. So the import and the device
discovery run with the process's stderr (file descriptor 2) caught in a temporary file; afterwards
every line is passed on except absl's I/W/E lines and their "before absl::InitializeLog()"
preamble. ``TF_CPP_MIN_LOG_LEVEL=0`` (the command line's ``--verbose``) passes everything on.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_NOISE = re.compile(
    rb"^(?:[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl::InitializeLog)"
)


@contextlib.contextmanager
def _start_up_lines_dropped():
    """Catch what is written to file descriptor 2 inside, then pass on all but absl's notices."""
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [ln for ln in caught.read().splitlines(keepends=True) if not _NOISE.match(ln)]
            if kept:
                os.write(2, b"".join(kept))


with _start_up_lines_dropped():
    import keras
    import tensorflow as tf

    tf.config.list_physical_devices()  # CUDA is probed (and complains) here, not later

__all__ = ["keras", "tf"]
