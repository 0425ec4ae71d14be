"""Import TensorFlow and Keras quietly, once, for the modules that need them.

TensorFlow prints a screen of start-up notices (oneDNN, CUDA stubs) that mean nothing to a
user of featlib; ``TF_CPP_MIN_LOG_LEVEL`` silences them unless the user set it already.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

__all__ = ["keras", "tf"]
