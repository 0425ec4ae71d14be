"""``precision="auto"``: what the tuner chooses from given timings, that it remembers, and that
every setting it can choose gives the plain path's results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from featlib.extraction import settings, tuning
from featlib.extraction.extractor import Extractor
from featlib.extraction.settings import Settings
from featlib.extraction.tuning import tuned_settings
from featlib.models.backbones import load_model_file


@pytest.fixture
def tuner(monkeypatch, tmp_path):
    """Fake timings: ``tuner(times, low=..., device=...)`` makes the tuner read seconds per image
    from ``times`` (keyed by ``Settings``; anything missing is slow) and records what it timed."""
    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(tmp_path))
    measured = []

    def setup(times, low="bfloat16", device="CPU"):
        for module in (tuning, settings):
            monkeypatch.setattr(module, "resolve_precision", lambda p: low if p == "auto" else p)
        monkeypatch.setattr(tuning, "device_name", lambda: device)
        settings.machine_id.cache_clear()
        settings._measured.clear()

        def fake(backbone, settings, images, extractors):
            assert len(images) >= settings.batch_size
            measured.append(settings)
            return times.get(settings, 10.0)

        monkeypatch.setattr(tuning, "_seconds_per_image", fake)
        return measured

    yield setup
    settings.machine_id.cache_clear()
    settings._measured.clear()


@pytest.mark.parametrize(
    ("bf16", "expected"), [(0.3, "bfloat16"), (0.95, "float32"), (2.0, "float32")]
)
def test_low_precision_only_where_it_is_faster(model_file, tuner, bf16, expected):
    times = {Settings("float32", 8): 1.0, Settings("bfloat16", 8): bf16}
    measured = tuner(times)
    assert tuned_settings(load_model_file(model_file)) == Settings(expected, 32)
    assert measured[:2] == [Settings("float32", 8), Settings("bfloat16", 8)]


def test_no_low_precision_on_this_machine_means_no_precision_timing(model_file, tuner):
    measured = tuner({}, low="float32")
    assert tuned_settings(load_model_file(model_file)).precision == "float32"
    assert all(s.precision == "float32" and s.batch_size != 8 for s in measured)


def test_batch_size_doubles_while_it_pays(model_file, tuner):
    times = {Settings("float32", 32): 1e-3, Settings("float32", 64): 0.8e-3,
             Settings("float32", 128): 0.75e-3}  # fmt: skip
    measured = tuner(times, low="float32")
    assert tuned_settings(load_model_file(model_file)) == Settings("float32", 64)
    assert [s.batch_size for s in measured] == [32, 64, 128]


def test_batch_size_is_not_searched_when_a_batch_is_already_long(model_file, tuner):
    measured = tuner({Settings("float32", 32): 0.05, Settings("float32", 64): 0.001}, low="float32")
    assert tuned_settings(load_model_file(model_file)) == Settings("float32", 32)
    assert measured == [Settings("float32", 32)]


def test_batch_size_stops_at_four_times_the_default(model_file, tuner):
    times = {Settings("float32", b): 1e-3 / b for b in (32, 64, 128, 256)}
    tuner(times, low="float32")
    assert tuned_settings(load_model_file(model_file)).batch_size == 128


@pytest.mark.parametrize(
    ("device", "xla", "expected"),
    [("GPU:0", 0.5e-3, True), ("GPU:0", 0.95e-3, False), ("CPU", 0.5e-3, False)],
)
def test_xla_is_tried_on_gpus_only(model_file, tuner, device, xla, expected):
    times = {Settings("float32", 32): 1e-3, Settings("float32", 32, jit_compile=True): xla}
    measured = tuner(times, low="float32", device=device)
    assert tuned_settings(load_model_file(model_file)).jit_compile is expected
    assert any(s.jit_compile for s in measured) is (device != "CPU")


def test_settings_are_remembered_and_bad_entries_replaced(model_file, tuner, tmp_path):
    measured = tuner({Settings("float32", 8): 1.0, Settings("bfloat16", 8): 0.3})
    bb = load_model_file(model_file)
    chosen = tuned_settings(bb)
    count = len(measured)
    assert tuned_settings(bb) == chosen
    assert len(measured) == count
    path = tmp_path / "tuning.json"
    (key,) = json.loads(path.read_text())
    assert json.loads(path.read_text())[key] == {
        "precision": "bfloat16", "batch_size": 32, "jit_compile": False, "measured": True,
    }  # fmt: skip
    for bad in ({"precision": "float64", "batch_size": 32, "jit_compile": False},
                {"precision": "float32", "batch_size": 0, "jit_compile": False},
                {"precision": "float32", "batch_size": 32}, "float32"):  # fmt: skip
        path.write_text(json.dumps({key: bad}))
        assert tuned_settings(bb) == chosen
        assert json.loads(path.read_text())[key]["precision"] == "bfloat16"
    path.write_text("{not json")
    assert tuned_settings(bb) == chosen
    path.unlink()  # another cache folder, say: this process remembers
    assert tuned_settings(bb) == chosen
    assert len(measured) == count
    assert json.loads(path.read_text())[key]["precision"] == "bfloat16"


@pytest.mark.parametrize("content", ["[1, 2]", '"float32"', "null", "3"])
def test_a_tuning_file_that_is_not_an_object_is_replaced(model_file, tuner, tmp_path, content):
    tuner({}, low="float32")
    path = tmp_path / "tuning.json"
    path.write_text(content)
    bb = load_model_file(model_file)
    assert settings.auto_settings(bb) == Settings("float32", 32, measured=False)
    (saved,) = json.loads(path.read_text()).values()
    assert saved == {"precision": "float32", "batch_size": 32, "jit_compile": False,
                     "measured": False}  # fmt: skip


def test_auto_extractor_uses_the_tuned_settings_unless_the_batch_is_given(model_file, tuner):
    times = {Settings("float32", 32): 1e-3, Settings("float32", 64): 0.5e-3}
    measured = tuner(times, low="float32")
    bb = load_model_file(model_file)
    untimed = Extractor(bb, "gap", precision="auto")  # an extractor never times by itself
    assert (untimed.precision, untimed.batch_size, measured) == ("float32", 32, [])
    tuned_settings(bb)
    ex = Extractor(bb, "gap", precision="auto")
    assert (ex.precision, ex.batch_size, ex.jit_compile) == ("float32", 64, False)
    assert Extractor(bb, "gap", precision="auto", batch_size=5).batch_size == 5
    assert Extractor(bb, "gap", precision="bfloat16").batch_size == 32  # asked for: not tuned


def test_auto_measures_for_real(model_file, monkeypatch, tmp_path):
    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(tmp_path))
    bb = load_model_file(model_file)
    tuned_settings(bb)
    ex = Extractor(bb, "gap", precision="auto")
    saved = json.loads((tmp_path / "tuning.json").read_text())
    assert list(saved.values()) == [
        {"precision": ex.precision, "batch_size": ex.batch_size, "jit_compile": ex.jit_compile,
         "measured": True}
    ]  # fmt: skip
    x = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    plain = Extractor(bb, "gap")(x)["gap"]
    np.testing.assert_allclose(ex(x)["gap"], plain, rtol=2e-2, atol=2e-2 * np.abs(plain).max())


def test_xla_gives_the_plain_results(model_file):
    bb = load_model_file(model_file)
    x = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    plain = Extractor(bb, ["conv1", "gap"])(x)
    xla = Extractor(bb, ["conv1", "gap"], jit_compile=True)
    assert xla.jit_compile
    for name, got in xla(x).items():
        np.testing.assert_allclose(got, plain[name], rtol=1e-5, atol=1e-5)


def test_timing_pays_only_for_jobs_that_can_repay_it():
    size = (224, 224)
    break_even = settings.tuning_cost(size) / settings.MAX_GAIN
    assert not settings.worth_tuning(256, size)  # benchmarks/cli.py's job
    assert not settings.worth_tuning(int(break_even) - 1, size)
    assert settings.worth_tuning(int(np.ceil(break_even)), size)
    assert settings.tuning_cost((600, 600)) < settings.tuning_cost(size)  # smaller batches there


def test_auto_settings_are_the_untimed_defaults_and_are_remembered(model_file, tuner):
    measured = tuner({}, low="bfloat16")
    bb = load_model_file(model_file)
    defaults = Settings("bfloat16", 32, measured=False)
    assert settings.auto_settings(bb) == defaults
    assert measured == []
    arch = settings.architecture(bb.name, bb.include_top, bb.key)
    settings._measured.clear()  # a later process: it reads tuning.json
    assert settings.known_settings(arch, bb.input_size) == defaults
    assert settings.known_settings(arch, (64, 64)) is None
    tuned = tuned_settings(bb)  # timing replaces the defaults
    assert tuned.measured and measured
    assert settings.auto_settings(bb) == settings.known_settings(arch, bb.input_size) == tuned


def test_known_settings_need_no_tensorflow(tmp_path):
    code = (
        "import sys; from featlib.extraction import settings; "
        "print(settings.known_settings(settings.architecture('vgg16', False), (224, 224)), "
        "'tensorflow' in sys.modules)"
    )
    env = {**os.environ, "FEATLIB_CACHE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["None", "False"]
