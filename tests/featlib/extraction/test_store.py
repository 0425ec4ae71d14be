"""The feature store: hits and misses, keys, corruption, concurrent writers, eviction, failure."""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import sqlite3
import subprocess
import sys
import textwrap

import diskcache
import numpy as np
import pytest
from PIL import Image

import featlib
from featlib.extraction.store import FeatureStore

KEY_ARGS = {
    "sha256": "ab" * 32,
    "backbone_key": "vgg16|random:0|top=0",
    "layer": "block5_pool",
    "input_size": (224, 224),
    "resize_mode": "stretch",
    "pooling": "avg",
    "precision": "float32",
}
CHANGED = {
    "sha256": "cd" * 32,
    "backbone_key": "vgg16|offline:hed|top=0",
    "layer": "block4_pool",
    "input_size": (160, 160),
    "resize_mode": "pad",
    "pooling": "max",
    "precision": "bfloat16",
}
SMALL = np.arange(512, dtype=np.float32)  # kept inside SQLite by diskcache
LARGE = np.arange(25_088, dtype=np.float32)  # kept in a file of its own (over 32 KiB)


@pytest.fixture
def store(tmp_path):
    s = FeatureStore(tmp_path / "store")
    yield s
    s.close()


def key(**changes) -> str:
    return FeatureStore.key(**{**KEY_ARGS, **changes})


def test_miss_then_hit(store):
    assert store.get(key()) is None
    store.put(key(), SMALL)
    got = store.get(key())
    np.testing.assert_array_equal(got, SMALL)
    assert got.dtype == np.float32


@pytest.mark.parametrize("field", sorted(KEY_ARGS))
def test_every_parameter_changes_the_key(store, field):
    store.put(key(), SMALL)
    assert key(**{field: CHANGED[field]}) != key()
    assert store.get(key(**{field: CHANGED[field]})) is None


def test_persists_across_instances(tmp_path):
    FeatureStore(tmp_path).put(key(), LARGE)
    np.testing.assert_array_equal(FeatureStore(tmp_path).get(key()), LARGE)


def _raw_value(store: FeatureStore, k: str):
    """(inline value, file name) of an entry in diskcache's SQLite index."""
    with sqlite3.connect(store.directory / "cache.db") as db:
        return db.execute("SELECT value, filename FROM Cache WHERE key = ?", (k,)).fetchone()


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],  # truncated
        lambda blob: blob[:40] + bytes(255 - b for b in blob[40:]),  # garbage payload
        lambda blob: b"not a featlib entry at all",
        lambda blob: b"",
    ],
    ids=["truncated", "flipped", "foreign", "empty"],
)
@pytest.mark.parametrize("array", [SMALL, LARGE], ids=["in-sqlite", "in-a-file"])
def test_a_damaged_entry_is_dropped_never_returned(store, damage, array):
    store.put(key(), array)
    value, filename = _raw_value(store, key())
    if filename:
        path = store.directory / filename
        path.write_bytes(damage(path.read_bytes()))
    else:
        with sqlite3.connect(store.directory / "cache.db") as db:
            db.execute("UPDATE Cache SET value = ? WHERE key = ?", (damage(value), key()))
    assert store.get(key()) is None
    assert store.info()["entries"] == 0  # dropped, so the caller computes it again
    store.put(key(), array)
    np.testing.assert_array_equal(store.get(key()), array)


class _Trap:
    """Unpickling this would create a file: proof of code execution."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_entry_is_never_unpickled(store, tmp_path):
    trap = tmp_path / "executed"
    raw = diskcache.Cache(str(store.directory))
    raw.set(key(), _Trap(trap))
    raw.close()
    assert store.get(key()) is None
    assert not trap.exists()
    pickle.dumps(_Trap(trap))  # the trap itself is a valid pickle
    assert store.info()["entries"] == 0


def test_least_recently_used_entries_are_evicted(tmp_path):
    one = LARGE.nbytes  # ~100 KB, each in a file
    store = FeatureStore(tmp_path, size_limit=40 * one)
    store.put(key(layer="keep"), LARGE)
    for i in range(100):
        store.get(key(layer="keep"))  # recently used: survives
        store.put(key(layer=f"l{i}"), LARGE + i)
    info = store.info()
    assert info["bytes"] <= 41 * one
    assert 20 < info["entries"] <= 41
    np.testing.assert_array_equal(store.get(key(layer="keep")), LARGE)
    assert store.get(key(layer="l0")) is None
    np.testing.assert_array_equal(store.get(key(layer="l99")), LARGE + 99)


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from featlib.extraction.store import FeatureStore

    store = FeatureStore(sys.argv[1])
    me = int(sys.argv[2])
    for i in range(400):
        shared = FeatureStore.key("shared", "b", f"l{i % 10}", (8, 8), "stretch", "avg", "f")
        mine = FeatureStore.key(f"p{me}", "b", f"l{i}", (8, 8), "stretch", "avg", "f")
        value = np.full(25_088 if i % 2 else 512, i % 10, np.float32)
        store.put(shared, value)
        store.put(mine, np.full(512, i, np.float32))
        got = store.get(shared)
        if got is not None and not (got == got[0]).all():
            sys.exit(f"mixed entry read back: {np.unique(got)}")
    print("done", store.disabled)
    """
)


def test_two_processes_writing_at_once_leave_every_entry_whole(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(me)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        assert out.strip() == "done None"
    store = FeatureStore(tmp_path)
    for i in range(10):
        got = store.get(FeatureStore.key("shared", "b", f"l{i}", (8, 8), "stretch", "avg", "f"))
        assert got is not None and (got == i).all()
    for me in range(2):
        for i in range(400):
            k = FeatureStore.key(f"p{me}", "b", f"l{i}", (8, 8), "stretch", "avg", "f")
            np.testing.assert_array_equal(store.get(k), np.full(512, i, np.float32))


def test_an_unusable_folder_turns_the_store_off_with_one_warning(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="featlib.extraction.store"):
        store = FeatureStore(blocker / "store")
        store.put(key(), SMALL)
        store.put(key(layer="other"), SMALL)
        assert store.get(key()) is None
    assert store.disabled and str(blocker) in store.disabled
    assert len(caplog.records) == 1
    assert store.info()["entries"] == 0 and store.clear() == 0


def test_a_full_disk_turns_the_store_off_once(store, monkeypatch, caplog):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store._cache, "set", full)
    with caplog.at_level(logging.WARNING, logger="featlib.extraction.store"):
        for layer in ("a", "b", "c"):
            store.put(key(layer=layer), SMALL)
    assert "No space left" in store.disabled
    assert len(caplog.records) == 1


def test_a_batch_is_one_transaction_kept_whole_or_not_at_all(store):
    with store.batch():
        store.put(key(layer="a"), SMALL)
        store.put(key(layer="b"), LARGE)
        assert store.get(key(layer="a")) is not None  # visible inside the transaction
    np.testing.assert_array_equal(store.get(key(layer="b")), LARGE)
    with pytest.raises(KeyboardInterrupt), store.batch():
        store.put(key(layer="c"), SMALL)
        raise KeyboardInterrupt  # what the body raises goes on, and its writes are undone
    assert store.get(key(layer="c")) is None
    assert store.disabled is None


def test_a_batch_that_cannot_commit_turns_the_store_off_once(store, monkeypatch, caplog):
    @contextlib.contextmanager
    def locked(retry=False):
        raise sqlite3.OperationalError("database is locked")
        yield

    monkeypatch.setattr(store._cache, "transact", locked)
    with caplog.at_level(logging.WARNING, logger="featlib.extraction.store"), store.batch():
        pass
    assert "database is locked" in store.disabled
    with store.batch():
        store.put(key(), SMALL)  # off: nothing is written, nothing fails
    assert len(caplog.records) == 1


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64, np.uint8, bool])
def test_numeric_arrays_come_back_as_they_went_in(store, dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    store.put(key(), array)
    got = store.get(key())
    np.testing.assert_array_equal(got, array)
    assert got.dtype == array.dtype and got.flags.writeable


def test_other_arrays_are_refused_before_anything_is_written(store):
    with pytest.raises(featlib.StoreError, match=r"numeric arrays.*object"):
        store.put(key(), np.array([{"a": 1}], dtype=object))
    assert store.disabled is None and store.info()["entries"] == 0


def _photo_set(n: int) -> featlib.ImageSet:
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(buf, "PNG")
        files.append((f"{i}.png", buf.getvalue()))
    return featlib.from_uploads(files)


def test_extraction_goes_on_without_a_usable_store(tmp_path, model_file):
    bb = featlib.load_model_file(model_file)
    images = _photo_set(4)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    broken = featlib.extract_set(bb, images, "gap", store=FeatureStore(blocker / "store"))
    plain = featlib.extract_set(bb, images, "gap")
    np.testing.assert_array_equal(broken.features["gap"], plain.features["gap"])


def test_extraction_recomputes_only_damaged_entries(tmp_path, model_file):
    bb = featlib.load_model_file(model_file)
    images = _photo_set(5)
    store = FeatureStore(tmp_path)
    first = featlib.extract_set(bb, images, "gap", store=store)
    assert first.computed == 5
    k = store.key(images.ok[2].sha256, bb.key, "gap", bb.input_size, "stretch", "avg", "float32")
    with sqlite3.connect(store.directory / "cache.db") as db:
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (b"garbage", k))
    again = featlib.extract_set(bb, images, "gap", store=store)
    assert again.computed == 1
    np.testing.assert_array_equal(again.features["gap"], first.features["gap"])
    changed = featlib.extract_set(bb, images, "gap", store=store, pooling="max")
    assert changed.computed == 5  # pooling is part of the key


def test_get_set_returns_the_items_whose_every_array_is_stored(store):
    store.put("a1", np.ones(2, np.float32))
    store.put("a2", np.zeros(3, np.float32))
    store.put("b1", np.ones(2, np.float32))
    found = store.get_set({"a": {"x": "a1", "y": "a2"}, "b": {"x": "b1", "y": "b2"}})
    assert list(found) == ["a"]
    np.testing.assert_array_equal(found["a"]["y"], np.zeros(3, np.float32))


def test_json_notes_are_kept_whole_and_a_bad_file_reads_as_empty(tmp_path, monkeypatch):
    from featlib.extraction.store import read_json, update_json

    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(tmp_path / "cache"))
    assert read_json("notes.json") == {}
    update_json("notes.json", "a", 1)
    update_json("notes.json", "b", {"c": [2]})
    assert read_json("notes.json") == {"a": 1, "b": {"c": [2]}}
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["notes.json"]
    (tmp_path / "cache" / "notes.json").write_text("[1, 2]")
    assert read_json("notes.json") == {}
    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(tmp_path / "cache" / "notes.json" / "below"))
    update_json("notes.json", "a", 1)  # cannot be written: nothing kept, nothing raised
    assert read_json("notes.json") == {}
