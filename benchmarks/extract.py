"""Feature extraction: the classic per-image loop, ``model.predict(batch)`` and featlib.

For VGG16, ResNet50, MobileNetV2 and EfficientNetB0 (random weights at 224x224: weights do not
change speed), on the same decoded images, the pooled output of the last block by:

- classic: the tutorial loop, one ``model.predict(x[None])`` per image, then a NumPy mean;
- predict(batch): ``model.predict`` on the whole preprocessed stack, batch 32;
- featlib fp32 / bf16: ``featlib.Extractor`` (one ``tf.function`` over uint8 input, preprocessing
  and pooling in the graph, BatchNormalization folded into the convolutions), float32 and
  bfloat16, batch 32;
- featlib "auto": the settings ``featlib.extraction.tuning`` measured fastest here (precision,
  batch size, XLA on GPUs), as the app and the command line run;
- featlib from JPEG files: ``featlib.extract_set`` on the same pictures as JPEG files in a folder
  (decode, resize, forward, pool; decoding overlaps the forward pass), against the bare forward
  pass on arrays already in memory (same extractor, batch and precision).

Contenders are warmed up first (tracing stays out of the timings) and timed in turn, the order
rotated every repeat; the table gives medians as images/s and as ratios measured in this run.
Then VGG16's fp32 compute rate against this machine's fp32 matmul rate, and the cosine similarity
of bf16 to fp32 pooled vectors on the bundled photos with VGG16's offline (trained) weights.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/extract.py          # 64 images, 3 repeats
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/extract.py --quick  # 64 images, 2 repeats

Both use 64 images, two batches: the first batch's decoding cannot overlap a forward pass, so
with one batch "from JPEG files" would time decoding and the forward pass end to end.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import format_table, interleaved, jpeg_files, machine, timed, write_files

import featlib
from featlib._tf import keras, tf

MODELS = {
    "vgg16": "block5_pool",
    "resnet50": "conv5_block3_out",
    "mobilenetv2": "out_relu",
    "efficientnetb0": "top_activation",
}
SIZE = (224, 224)
AUTO = 'featlib precision="auto"'


def headless(bb, layer: str, warm_up: np.ndarray):
    """The model up to ``layer``, as a tutorial builds it, already called once on ``warm_up``."""
    model = keras.Model(bb.model.inputs, bb.model.get_layer(layer).output)
    model.predict(bb.preprocess(warm_up), batch_size=32, verbose=0)
    return model


def classic_loop(bb, layer: str, images: np.ndarray):
    model = headless(bb, layer, images[:1])

    def run():
        return [model.predict(bb.preprocess(x[None]), verbose=0).mean(axis=(1, 2)) for x in images]

    return run


def predict_batch(bb, layer: str, images: np.ndarray):
    model = headless(bb, layer, images)
    return lambda: model.predict(bb.preprocess(images), batch_size=32, verbose=0).mean(axis=(1, 2))


def conv_flops(model) -> float:
    """Floating-point operations of one image through the model's convolutions (2 per MAC)."""
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1] // layer.groups
            total += 2.0 * h * w * kh * kw * c_in * c_out
    return total


def matmul_gflops(n: int = 4096, repeats: int = 5) -> float:
    """This machine's fp32 matrix-multiply rate, in GFLOP/s."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    f = tf.function(lambda: tf.linalg.matmul(a, b))
    f().numpy()
    seconds = min(timed(lambda: f().numpy()) for _ in range(repeats))
    return 2.0 * n**3 / seconds / 1e9


def bf16_cosine() -> float:
    """Smallest cosine similarity between bf16 and fp32 VGG16 pooled vectors on real photos."""
    bb = featlib.load_backbone("vgg16", weights="offline")
    photos = featlib.load_samples("photos")
    images = photos.load_batch(photos.ok, bb.input_size)
    fp32 = featlib.extract(bb, images, "block5_pool")["block5_pool"]
    bf16 = featlib.extract(bb, images, "block5_pool", precision="bfloat16")["block5_pool"]
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    return float(cos.min())


def bench_model(name: str, layer: str, folder: Path, repeats: int) -> tuple[list, float]:
    """Rows of the table for one model, and its fp32 convolution rate in GFLOP/s."""
    bb = featlib.load_backbone(name, weights="random", seed=0, input_size=SIZE)
    on_disk = featlib.from_folder(folder)
    images = on_disk.load_batch(on_disk.ok, SIZE)
    fp32 = featlib.Extractor(bb, layer, "avg", "float32", batch_size=32)
    bf16 = featlib.Extractor(bb, layer, "avg", "bfloat16", batch_size=32)
    auto = featlib.Extractor(bb, layer, "avg", "auto")  # tuned on first use, then remembered
    for ex in (fp32, bf16, auto):
        ex(images[:1])  # tracing stays out of the timings
    seconds = interleaved(
        {
            "classic loop": classic_loop(bb, layer, images),
            "predict(batch)": predict_batch(bb, layer, images),
            "featlib fp32": lambda: fp32(images),
            "featlib from JPEG files": lambda: featlib.extract_set(
                bb, on_disk, layer, extractor=fp32
            ),
            "featlib bf16": lambda: bf16(images),
            AUTO: lambda: auto(images),
        },
        repeats,
    )
    n, base = len(images), seconds["classic loop"]
    rows = [[name, what, f"{n / s:.1f}", f"{base / s:.2f}x"] for what, s in seconds.items()]
    files_vs_bare = seconds["featlib fp32"] / seconds["featlib from JPEG files"]
    rows.append([name, "JPEG files / bare forward", "", f"{files_vs_bare:.2f}x"])
    rows.append(
        [name, "bf16 / fp32", "", f"{seconds['featlib fp32'] / seconds['featlib bf16']:.2f}x"]
    )
    rows.append(
        [name, '"auto" / predict(batch)', "", f"{seconds['predict(batch)'] / seconds[AUTO]:.2f}x"]
    )
    picks = f"{auto.precision}, batch {auto.batch_size}, XLA {'on' if auto.jit_compile else 'off'}"
    rows.append([name, '"auto" picks', "", picks])
    return rows, n * conv_flops(bb.model) / seconds["featlib fp32"] / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 images, 2 repeats")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    n, repeats = 64, 2 if args.quick else 3
    print(f"# extract: {n} images at {SIZE[0]}x{SIZE[1]}, {repeats} repeat(s); {machine()}")
    rows, vgg_rate = [], None
    with tempfile.TemporaryDirectory() as tmp:
        write_files(jpeg_files(n, side=256), Path(tmp))
        for name in args.models:
            model_rows, rate = bench_model(name, MODELS[name], Path(tmp), repeats)
            rows += model_rows
            vgg_rate = rate if name == "vgg16" else vgg_rate
    print(format_table(rows, ["model", "how", "images/s", "vs classic"]))
    if vgg_rate is not None:
        peak = matmul_gflops()
        print(
            f"VGG16 fp32 convolutions: {vgg_rate:.0f} GFLOP/s = {vgg_rate / peak:.0%} of this "
            f"machine's fp32 matmul rate ({peak:.0f} GFLOP/s)"
        )
    print(f"bf16 vs fp32, VGG16 offline weights, 10 photos: min cosine {bf16_cosine():.6f}")


if __name__ == "__main__":
    main()
