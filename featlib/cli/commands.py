"""What each ``featlib`` sub-command does, and the files it writes."""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

import featlib
from featlib._files import replaced_atomically
from featlib.errors import FeatlibError

__all__ = [
    "APP_FEATURES_ENV",
    "APP_IMAGES_ENV",
    "format_table",
    "write_features",
]


# How ``featlib app`` hands the app its data set: paths chosen by whoever starts the server,
# read by ``ui.data``; never typed in the browser.
APP_FEATURES_ENV = "FEATLIB_APP_FEATURES"
APP_IMAGES_ENV = "FEATLIB_APP_IMAGES"


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

            from featlib.engine.shards import write_table

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
            write_table(pa.table(columns), tmp)


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


def _load(args):
    from featlib.models.backbones import open_backbone

    return open_backbone(
        args.backbone, args.weights, seed=args.seed, preprocessing=args.preprocessing
    )


def _open_store(args):
    from featlib.extraction.store import FeatureStore

    return None if args.no_store else FeatureStore(args.cache_dir)


_LAYERS_FILE = "layers.json"


def _layer_note(backbone: str, kind: str) -> str:
    """Where the default layer of a registry backbone is remembered (it is fixed by the
    architecture, but only a built model can tell it)."""
    from featlib.extraction.settings import architecture
    from featlib.models.registry import get_spec

    return f"{architecture(get_spec(backbone).name, False)}|{kind}|featlib {featlib.__version__}"


def _from_store(args, image_set, layers: list[str] | None, kind: str, store):
    """``(backbone name, layers, features)`` when the store holds every vector, found without
    TensorFlow; ``None`` when anything would need the model (weights a download would decide,
    a default layer or an "auto" precision never resolved here, a missing vector)."""
    from featlib.extraction.features import stored_features
    from featlib.extraction.settings import architecture, known_settings
    from featlib.extraction.store import read_json
    from featlib.models.registry import get_spec
    from featlib.models.weights import is_model_file, weights_key

    if store is None or is_model_file(args.backbone):
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
    from featlib.extraction.pipeline import extract_set
    from featlib.extraction.store import update_json
    from featlib.models.weights import is_model_file

    backbone = _load(args)
    if not layers:
        layers = [DEFAULT_LAYERS[kind](backbone)]
        if not is_model_file(args.backbone):
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
    from featlib.images.sources import open_source

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
    from featlib.images.sources import open_source

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
    from featlib.analysis.checks.issues import ISSUES

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
    from featlib.analysis.checks import percent
    from featlib.analysis.checks.dataset import check_image_set, report_thumbnails

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
            f"Linear probe: {sep.accuracy_text()} right ({percent(sep.balanced_accuracy)} "
            f"balanced, chance {percent(sep.chance_accuracy)}) over {len(sep.classes)} "
            f"classes; imbalance {sep.imbalance_ratio:.1f}x."
        )
    print(f"Wrote {out}.")
    return 0


def _default_layer(backbone) -> str:
    from featlib.models.layers import block_outputs

    return block_outputs(backbone)[-1].name


def _check_layer(backbone) -> str:
    """The app's default layer (``featlib.models.layers.default_layer``)."""
    from featlib.models.layers import block_outputs, default_layer, list_layers

    return default_layer(list_layers(backbone), block_outputs(backbone))


DEFAULT_LAYERS = {"extract": _default_layer, "check": _check_layer}


def cmd_backbones(args) -> int:
    from featlib.models.registry import REGISTRY, available_weights

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
    from featlib.models.layers import list_layers

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
    from featlib.models.weights import fetch_weights, import_weights

    if args.action == "fetch":
        paths = fetch_weights(args.names, include_top=args.include_top, progress=True)
        sources = args.names
    else:
        paths = [import_weights(args.file, backbone=args.backbone, include_top=args.include_top)]
        sources = [args.file]
    for source, path in zip(sources, paths, strict=True):
        print(f"{source} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_app(args) -> int:
    """Start the web app (Streamlit) on a feature file, with the pictures under ``--images``.

    The process becomes Streamlit's server, so Ctrl+C stops it as it stops ``streamlit run``.
    """
    from featlib.engine.shards import feature_file_kind

    features = Path(args.features).resolve()
    feature_file_kind(features)
    env = dict(os.environ, **{APP_FEATURES_ENV: str(features)})
    env.pop(APP_IMAGES_ENV, None)
    if args.images is not None:
        images = Path(args.images).resolve()
        if not (images.is_dir() or (images.is_file() and images.suffix.lower() == ".zip")):
            raise FeatlibError(f"--images must be a folder or a .zip file. Received: {args.images}")
        env[APP_IMAGES_ENV] = str(images)
    app = Path(__file__).resolve().parents[2] / "app.py"
    if not app.is_file():
        raise FeatlibError(
            f"the app's files are not beside this featlib ({app} is missing): install featlib "
            "from its source folder with pip install --editable ."
        )
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    print(f"featlib app: {features} at http://localhost:{args.port}", flush=True)
    os.chdir(app.parent)  # where .streamlit/config.toml keeps the server local and quiet
    os.execve(sys.executable, command, env)
    return 0  # not reached: the process is the server now
