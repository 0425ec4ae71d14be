"""The ``featlib`` command: extract features, check a dataset, open the app on a feature file,
list backbones and layers, the cache, the weights. ``python -m featlib`` is the same.

Exit codes: 0 when the command did its work (for ``extract`` and ``check``: enough images were
usable), 1 when too few images could be used, 2 for bad arguments, options, names and files (an
unknown backbone or layer, a missing source, an unwritable output), said in one line on stderr.
TensorFlow's start-up notices are hidden unless ``--verbose`` is given.

A run whose every vector is already in the feature store does not import TensorFlow: the store
keys come from ``featlib.weights_key``, the tuning file and the default layers remembered in
``layers.json`` beside it.

Example::

    featlib extract photos/ --backbone vgg16 --weights offline \\
        --layer block4_pool --layer block5_pool --out features.parquet
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys

from featlib.cli.commands import (
    cmd_app,
    cmd_backbones,
    cmd_cache,
    cmd_check,
    cmd_extract,
    cmd_layers,
    cmd_weights,
)
from featlib.errors import FeatlibError
from featlib.extraction.features import POOLINGS, PRECISIONS
from featlib.images.decode import RESIZE_MODES
from featlib.models.registry import DEFAULT_BACKBONE, PREPROCESSING_MODES, WEIGHTS_CHOICES

__all__ = [
    "main",
]


EXTRACT_EXAMPLE = """example:
  featlib extract photos/ --backbone vgg16 --weights offline \\
      --layer block4_pool --layer block5_pool --pooling avg --out features.npz

SOURCE is a folder (labels from sub-folder names), a .zip, a .csv of path,label, or
sample:photos / sample:faces / sample:digits. Run it again after an interruption: finished
images come from the feature store. Failed files are listed and written to OUT.errors.csv."""


CHECK_EXAMPLE = """example:
  featlib check photos/ --backbone vgg16 --weights offline --out report.html
  featlib check data.zip --threshold near_duplicates=0.98 --out report.csv

Labels come from sub-folder names; top-level train/ test/ val/ folders become splits, and
duplicates across them are marked as leakage. Features come from the feature store when it
has them. The HTML report embeds thumbnails; the CSV has one row per image."""


WEIGHTS_EXAMPLE = """example:
  featlib weights fetch vgg16 resnet50 mobilenetv2
  featlib weights import ~/Downloads/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5

fetch fills the Keras cache ($KERAS_HOME/models, KERAS_HOME defaults to ~/.keras) ahead of going
offline; FEATLIB_WEIGHTS_URL points downloads at a mirror of Keras' storage. import recognises a
file by its Keras name (or --backbone NAME) and checks it against Keras' checksum where Keras has
one, else by loading it."""


APP_EXAMPLE = """example:
  featlib extract big_folder/ --out big.parquet
  featlib app big.parquet --images big_folder/

Opens the app (http://localhost:8501) with the file's vectors as the data set: every layer in
the file can be projected, searched and checked, at 100,000 images and more. The paths are
chosen here, on the server, never typed in the browser."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form of every other error."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _count(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be an integer of at least {minimum}. Received: {text!r}"
            )
        return value

    return parse


def _amount(text: str) -> float:
    """An argparse type: a number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of at least 0. Received: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    verbose = _Parser(add_help=False)
    verbose.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="show TensorFlow's own log lines and featlib's log messages",
    )  # fmt: skip
    parser = _Parser(
        prog="featlib",
        description="See what pretrained image networks see: features from the command line.",
        epilog="example: featlib layers vgg16",
        parents=[verbose],
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=functools.partial(_Parser, parents=[verbose])
    )

    def model_args(p):
        p.add_argument(
            "--backbone", default=DEFAULT_BACKBONE, help="registry name or a .keras/.h5 model"
        )
        p.add_argument(
            "--weights",
            default="auto",
            help=f"{' | '.join(WEIGHTS_CHOICES)} | path to .weights.h5",
        )
        p.add_argument("--seed", type=_count(0), default=0, help="seed for --weights random")
        p.add_argument(
            "--preprocessing",
            default="scale",
            choices=PREPROCESSING_MODES,
            help="for your own model",
        )

    def extraction_args(p):
        p.add_argument("--pooling", default="avg", choices=[p for p in POOLINGS if p is not None])
        p.add_argument("--resize", default="stretch", choices=RESIZE_MODES)
        p.add_argument(
            "--precision",
            default="auto",
            choices=PRECISIONS,
            help="auto: the machine's fast precision; a job large enough to repay it first "
            "times a few settings, and the answer is kept in tuning.json in the cache folder",
        )
        p.add_argument("--batch-size", type=_count(1), default=None)
        p.add_argument("--cache-dir", default=None, help="feature store folder")
        p.add_argument("--no-store", action="store_true", help="do not read or write the store")

    ex = sub.add_parser(
        "extract",
        help="pooled features of an image set to .npz/.parquet",
        epilog=EXTRACT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("source", help="folder, .zip, .csv, or sample:NAME")
    model_args(ex)
    ex.add_argument("--layer", action="append", help="layer name; repeat for several")
    extraction_args(ex)
    ex.add_argument(
        "--out",
        required=True,
        help="output file, .npz or .parquet (with --engine ray: a folder of Parquet shards)",
    )
    ex.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="ray: Ray Data, on this machine or a cluster (pip install 'featlib[ray]')",
    )
    ex.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join (default: $RAY_ADDRESS, else local)",
    )
    ex.add_argument("--actors", type=_count(1), default=None, help="model replicas (default 1)")
    ex.add_argument(
        "--gpus-per-actor", type=_amount, default=None, help="GPUs each replica reserves"
    )
    ex.set_defaults(func=cmd_extract)

    ck = sub.add_parser(
        "check",
        help="dataset checks: duplicates, outliers, label issues, quality, separability",
        epilog=CHECK_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ck.add_argument("source", help="folder, .zip, .csv, or sample:NAME")
    model_args(ck)
    ck.add_argument(
        "--layer",
        help="layer whose pooled features are compared (default: the last block but one, "
        "as in the app)",
    )
    extraction_args(ck)
    ck.add_argument(
        "--threshold",
        action="append",
        metavar="ISSUE=VALUE",
        help="change one issue's threshold, e.g. near_duplicates=0.98; repeatable",
    )
    ck.add_argument("--out", required=True, help="report file, .html (with thumbnails) or .csv")
    ck.set_defaults(func=cmd_check)

    ap = sub.add_parser(
        "app",
        help="the web app on a feature file from featlib extract",
        epilog=APP_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("features", help="a .npz or .parquet file, or a folder of Parquet shards")
    ap.add_argument(
        "--images",
        default=None,
        help="the folder (or a ZIP of it) the features were extracted from: its pictures are "
        "shown by the file's path column; without it, points and labels only",
    )
    ap.add_argument("--port", type=_count(1), default=8501)
    ap.set_defaults(func=cmd_app)

    bb = sub.add_parser(
        "backbones",
        help="the registry: names, input sizes, offline weights",
        epilog="example: featlib backbones",
    )
    bb.set_defaults(func=cmd_backbones)

    la = sub.add_parser(
        "layers",
        help="the layer table of a backbone",
        epilog="example: featlib layers resnet50 --weights random",
    )
    la.add_argument("backbone", help="registry name or a .keras/.h5 model")
    la.add_argument("--weights", default="random", help="weights to build it with")
    la.add_argument("--seed", type=_count(0), default=0)
    la.add_argument("--preprocessing", default="scale", choices=PREPROCESSING_MODES)
    la.set_defaults(func=cmd_layers)

    ca = sub.add_parser(
        "cache", help="feature store: info | clear", epilog="example: featlib cache info"
    )
    ca.add_argument("action", choices=["info", "clear"])
    ca.add_argument("--cache-dir", default=None)
    ca.set_defaults(func=cmd_cache)

    we = sub.add_parser(
        "weights",
        help="ImageNet weights in the Keras cache: fetch NAME... | import FILE",
        epilog=WEIGHTS_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = we.add_subparsers(dest="action", required=True)
    fe = actions.add_parser("fetch", help="download ImageNet weights into the Keras cache")
    fe.add_argument("names", nargs="+", metavar="NAME", help="registry names")
    im = actions.add_parser("import", help="place a weights file obtained elsewhere, checked")
    im.add_argument("file", help="the .h5 file, as Keras names it (or give --backbone)")
    im.add_argument("--backbone", help="registry name, when the file has another name")
    for p in (fe, im):
        p.add_argument(
            "--include-top", action="store_true", help="the files with the classification head"
        )
    we.set_defaults(func=cmd_weights)
    return parser


def _say_error(exc: Exception) -> int:
    print("error: " + " ".join(str(exc).split()), file=sys.stderr)
    return 2


def _run(args) -> int:
    try:
        return args.func(args)
    except (FeatlibError, OSError) as exc:  # bad arguments, names and files
        return _say_error(exc)
    except KeyboardInterrupt:
        print("interrupted; finished images are in the feature store", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code.

    With ``argv=None`` this is the process's own command (the ``featlib`` script, ``python -m
    featlib``): once TensorFlow has been imported, the process then ends here, skipping
    TensorFlow's teardown at interpreter exit (1-5 s, as long as a small job; see
    ``benchmarks/cli.py``). Every file has been written, closed and renamed into place by then.
    """
    args = _parser().parse_args(argv)
    if getattr(args, "verbose", False):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # read when TensorFlow is first imported
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    code = _run(args)
    if argv is None and "tensorflow" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code
