"""The ``featlib`` command: extract features, check a dataset, list backbones and layers, the
cache, the weights. ``python -m featlib`` is the same.

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
import contextlib
import csv
import functools
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

import featlib
from featlib._files import replaced_atomically
from featlib.errors import FeatlibError
from featlib.features import POOLINGS, PRECISIONS
from featlib.images import RESIZE_MODES
from featlib.registry import PREPROCESSING_MODES

__all__ = ["format_table", "main", "write_features"]

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


def format_table(rows: list[list[str]], header: list[str]) -> str:
    """A plain-text table: columns padded to their widest cell, a rule under the header."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_features(out: Path, features) -> None:
    """Write ``Features`` to ``.npz`` or ``.parquet``, atomically (temporary file, rename).

    Args:
        out: the output path; its suffix picks the format.
        features: a ``featlib.Features``.

    ``.npz`` holds ``features`` (one layer) or ``features/<layer>`` (several), float32 of
    shape (n, d), plus ``paths``, ``sha256`` and ``labels`` (empty string when unlabelled).
    ``.parquet`` has columns ``path``, ``sha256``, ``label`` and one fixed-size list column per
    layer.
    """
    names = list(features.features)
    labels = ["" if lab is None else str(lab) for lab in features.labels]
    with replaced_atomically(out) as tmp:
        if out.suffix == ".npz":
            arrays = (
                {"features": features.features[names[0]]}
                if len(names) == 1
                else {f"features/{n}": features.features[n] for n in names}
            )
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    paths=np.array(features.names, dtype=str),
                    sha256=np.array(features.sha256, dtype=str),
                    labels=np.array(labels, dtype=str),
                    **arrays,
                )
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = {
                "path": pa.array(features.names, pa.string()),
                "sha256": pa.array(features.sha256, pa.string()),
                "label": pa.array([lab or None for lab in labels], pa.string()),
            }
            for n in names:
                matrix = features.features[n]
                columns[n] = pa.FixedSizeListArray.from_arrays(
                    pa.array(matrix.reshape(-1), pa.float32()), matrix.shape[1]
                )
            pq.write_table(pa.table(columns), tmp)


def _write_errors(path: Path, errors) -> None:
    with replaced_atomically(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "reason"])
        writer.writerows([r.name, r.error] for r in errors)


@contextlib.contextmanager
def _progress_bar(desc: str):
    """``update(done, total)`` for a bar on stderr, drawn from its first update (an error
    before any progress stays the only line)."""
    from tqdm import tqdm

    bars = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(
                tqdm(desc=desc, total=total, unit="img", dynamic_ncols=True, file=sys.stderr)
            )
        bar = bars[0]
        if bar.total != total:
            bar.reset(total=total)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def _is_model_file(backbone: str) -> bool:
    return backbone.endswith((".keras", ".h5")) and not backbone.endswith(".weights.h5")


def _load(args):
    from featlib.backbones import load_backbone, load_model_file

    if _is_model_file(args.backbone):
        return load_model_file(args.backbone, preprocessing=args.preprocessing)
    return load_backbone(args.backbone, weights=args.weights, seed=args.seed)


def _open_store(args):
    from featlib.store import FeatureStore

    return None if args.no_store else FeatureStore(args.cache_dir)


_LAYERS_FILE = "layers.json"


def _layer_note(backbone: str, kind: str) -> str:
    """Where the default layer of a registry backbone is remembered (it is fixed by the
    architecture, but only a built model can tell it)."""
    from featlib.registry import get_spec
    from featlib.tuning import architecture

    return f"{architecture(get_spec(backbone).name, False)}|{kind}|featlib {featlib.__version__}"


def _from_store(args, image_set, layers: list[str] | None, kind: str, store):
    """``(backbone name, layers, features)`` when the store holds every vector, found without
    TensorFlow; ``None`` when anything would need the model (weights a download would decide,
    a default layer or an "auto" precision never resolved here, a missing vector)."""
    from featlib.features import stored_features
    from featlib.registry import get_spec
    from featlib.store import read_json
    from featlib.tuning import architecture, known_settings
    from featlib.weights import weights_key

    if store is None or _is_model_file(args.backbone):
        return None
    key = weights_key(args.backbone, args.weights, seed=args.seed)
    spec = get_spec(args.backbone)
    remembered = read_json(_LAYERS_FILE).get(_layer_note(args.backbone, kind))
    layers = layers or ([remembered] if isinstance(remembered, str) else None)
    precision = args.precision
    if precision == "auto":
        known = known_settings(architecture(spec.name, False), spec.input_size)
        precision = known and known.precision
    if key is None or not layers or not precision:
        return None
    feats = stored_features(
        image_set, key, layers, spec.input_size, pooling=args.pooling, resize_mode=args.resize,
        precision=precision, store=store,
    )  # fmt: skip
    return None if feats is None else (spec.name, layers, feats)


def _compute(args, image_set, layers: list[str] | None, kind: str, store):
    """Load the backbone and extract what the store lacks, with a progress bar."""
    from featlib.extraction import extract_set
    from featlib.store import update_json

    backbone = _load(args)
    if not layers:
        layers = [DEFAULT_LAYERS[kind](backbone)]
        if not _is_model_file(args.backbone):
            update_json(_LAYERS_FILE, _layer_note(args.backbone, kind), layers[0])
    with _progress_bar(f"{backbone.name} {','.join(layers)}") as update:
        feats = extract_set(
            backbone,
            image_set,
            layers,
            pooling=args.pooling,
            resize_mode=args.resize,
            precision=args.precision,
            batch_size=args.batch_size,
            store=store,
            progress=update,
        )
    return backbone.name, layers, feats


def _extract(args, layers: list[str] | None, out: Path, kind: str):
    """Open the source, take what the store has or compute it, list failed files.

    ``kind`` names the default layer when ``layers`` is empty (see ``DEFAULT_LAYERS``).
    Returns ``(image_set, layers, features, seconds)``.
    """
    from featlib.images import open_source

    image_set = open_source(args.source)
    store = _open_store(args)
    start = time.perf_counter()
    found = _from_store(args, image_set, layers, kind, store)
    _, layers, feats = found or _compute(args, image_set, layers, kind, store)
    seconds = time.perf_counter() - start
    _report_errors(out, feats.errors)
    return image_set, layers, feats, seconds


def _report_errors(out: Path, errors: list) -> None:
    """List the files that could not be used on stderr and in ``OUT.errors.csv``."""
    errors_path = out.with_name(out.name + ".errors.csv")
    if errors:
        print(f"\n{len(errors)} file(s) could not be used:", file=sys.stderr)
        for rec in errors:
            print(f"  {rec.name}: {rec.error}", file=sys.stderr)
        _write_errors(errors_path, errors)
        print(f"(listed in {errors_path})", file=sys.stderr)
    else:
        errors_path.unlink(missing_ok=True)


def _check_out(out: Path, suffixes: tuple[str, ...]) -> None:
    """Refuse an output path before any work: a wrong suffix, a folder that is not there."""
    if out.suffix not in suffixes:
        raise FeatlibError(f"--out must end in {' or '.join(suffixes)}. Received: --out {out}")
    if not out.parent.is_dir():
        raise FeatlibError(f"--out must be in an existing folder. Received: --out {out}")


_RAY_OPTIONS = ("ray_address", "actors", "gpus_per_actor")


def _extract_on_ray(args, out: Path) -> int:
    """``extract --engine ray``: Ray workers extract and write the shards
    (``featlib.engine.ray``); a rerun skips the images the shards hold."""
    from featlib.engine.ray import extract_to
    from featlib.images import open_source

    image_set = open_source(args.source, read=False)  # the workers read and hash
    start = time.perf_counter()
    run = extract_to(
        out,
        image_set,
        {
            "backbone": args.backbone, "weights": args.weights, "layers": args.layer,
            "seed": args.seed, "preprocessing": args.preprocessing, "pooling": args.pooling,
            "resize_mode": args.resize, "precision": args.precision,
            "store": False if args.no_store else (args.cache_dir or True),
        },
        actors=args.actors or 1,
        gpus_per_actor=args.gpus_per_actor or 0.0,
        address=args.ray_address,
        batch_size=args.batch_size,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    _report_errors(out, run.errors)
    if not run.written + run.skipped:
        print("No image could be used; nothing written.", file=sys.stderr)
        return 1
    if run.features is not None:
        write_features(out, run.features)
    print(
        f"Wrote {out}: {run.written + run.skipped} images ({run.written} extracted on Ray, "
        f"{run.skipped} already in its shards) in {seconds:.1f} s."
    )
    return 0


def cmd_extract(args) -> int:
    out = Path(args.out)
    _check_out(out, (".npz", ".parquet"))
    if args.engine == "ray":
        return _extract_on_ray(args, out)
    for name in _RAY_OPTIONS:
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise FeatlibError(
                f"{flag} needs --engine ray. Received: {flag} {getattr(args, name)} "
                f"with --engine local"
            )
    _, layers, feats, seconds = _extract(args, args.layer, out, "extract")
    if not feats.records:
        print("No image could be used; nothing written.", file=sys.stderr)
        return 1
    write_features(out, feats)
    shapes = ", ".join(f"{n} {feats.features[n].shape}" for n in layers)
    print(f"Wrote {out}: {len(feats.records)} images; {shapes}; {_provenance(feats, seconds)}.")
    return 0


def _provenance(feats, seconds: float) -> str:
    """How many distinct images were computed and how many came from the store."""
    stored = len(set(feats.sha256)) - feats.computed
    return f"{feats.computed} computed, {stored} from the store, in {seconds:.1f} s"


def _thresholds(pairs: list[str] | None) -> dict[str, float]:
    from featlib.checks import ISSUES

    thresholds = {}
    for pair in pairs or []:
        issue, _, value = pair.partition("=")
        if issue not in ISSUES:
            raise FeatlibError(
                f"--threshold: the issue must be one of {', '.join(ISSUES)}. Received: {pair}"
            )
        try:
            thresholds[issue] = float(value)
        except ValueError:
            raise FeatlibError(f"--threshold must be ISSUE=NUMBER. Received: {pair}") from None
    return thresholds


def cmd_check(args) -> int:
    from featlib.checks import check_image_set, format_percent, report_thumbnails

    out = Path(args.out)
    _check_out(out, (".html", ".csv"))
    thresholds = _thresholds(args.threshold)
    image_set, (layer,), feats, seconds = _extract(args, args.layer and [args.layer], out, "check")
    if len(feats.records) < 3:
        print(f"{len(feats.records)} usable image(s): the checks need 3.", file=sys.stderr)
        return 1
    print(
        f"Checking {len(feats.records)} images ({layer} features: "
        f"{_provenance(feats, seconds)})...",
        file=sys.stderr,
    )
    report = check_image_set(image_set, feats.records, feats.features[layer], thresholds=thresholds)
    if out.suffix == ".csv":
        text = report.to_csv()
    else:
        text = report.to_html(report_thumbnails(report, image_set, feats.records))
    with replaced_atomically(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    columns = ["issue", "images", "pairs", "threshold", "note"]
    print(format_table([[row[c] for c in columns] for row in report.summary_rows()], columns))
    for fact in report.facts:
        print(f"About the set: {fact}.")
    for warning in report.warnings:
        print(f"Warning: {warning}.")
    sep = report.separability
    if sep is not None:
        print(
            f"Linear probe: {sep.accuracy_text()} right ({format_percent(sep.balanced_accuracy)} "
            f"balanced, chance {format_percent(sep.chance_accuracy)}) over {len(sep.classes)} "
            f"classes; imbalance {sep.imbalance_ratio:.1f}x."
        )
    print(f"Wrote {out}.")
    return 0


def _default_layer(backbone) -> str:
    from featlib.layers import block_outputs

    return block_outputs(backbone)[-1].name


def _check_layer(backbone) -> str:
    """The app's default layer (``featlib.layers.default_layer``)."""
    from featlib.layers import block_outputs, default_layer, list_layers

    return default_layer(list_layers(backbone), block_outputs(backbone))


DEFAULT_LAYERS = {"extract": _default_layer, "check": _check_layer}


def cmd_backbones(args) -> int:
    from featlib.registry import REGISTRY, available_weights

    rows = [
        [
            s.name,
            f"{s.input_size[0]}x{s.input_size[1]}",
            s.family,
            s.preprocessing,
            ", ".join(available_weights(s.name)),
        ]
        for s in REGISTRY.values()
    ]
    print(
        format_table(sorted(rows), ["name", "input", "family", "preprocessing", "weights offline"])
    )
    return 0


def cmd_layers(args) -> int:
    from featlib.layers import list_layers

    backbone = _load(args)
    rows = [
        [
            i.name,
            i.type,
            "x".join(str(d) for d in i.output_shape),
            f"{i.params:,}",
            i.block or "",
            i.stride or "",
            i.receptive_field or "",
        ]
        for i in list_layers(backbone)
    ]
    header = ["name", "type", "output", "params", "block", "stride", "receptive field"]
    print(format_table(rows, header))
    return 0


def cmd_cache(args) -> int:
    store = _open_store(argparse.Namespace(no_store=False, cache_dir=args.cache_dir))
    if args.action == "clear":
        print(f"Removed {store.clear()} entries from {store.directory}.")
        return 0
    info = store.info()
    print(format_table([[k, str(v)] for k, v in info.items()], ["", ""]))
    return 0


def cmd_weights(args) -> int:
    from featlib.weights import fetch_weights, import_weights

    if args.action == "fetch":
        paths = fetch_weights(args.names, include_top=args.include_top, progress=True)
        sources = args.names
    else:
        paths = [import_weights(args.file, backbone=args.backbone, include_top=args.include_top)]
        sources = [args.file]
    for source, path in zip(sources, paths, strict=True):
        print(f"{source} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


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
        p.add_argument("--backbone", default="vgg16", help="registry name or a .keras/.h5 model")
        p.add_argument(
            "--weights",
            default="auto",
            help="auto | imagenet | random | offline | path to .weights.h5",
        )
        p.add_argument("--seed", type=_count(0), default=0, help="seed for --weights random")
        p.add_argument(
            "--preprocessing",
            default="scale",
            choices=PREPROCESSING_MODES,
            help="for your own model",
        )

    def extraction_args(p):
        p.add_argument("--pooling", default="avg", choices=[p for p in POOLINGS if p])
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
