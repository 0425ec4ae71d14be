"""Feature files read back: the vectors written plain, and opened with the vectors read in the
background (the Ray engine's shards are tested in test_ray.py)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from featlib.engine.shards import LazyLayers, open_features, read_features
from tests.system.feature_sets import LAYER, write_feature_set


def test_parquet_vectors_are_plain_and_labels_keep_their_dictionary(tmp_path):
    path, _ = write_feature_set(tmp_path, 40, dim=16, n_classes=3, side=4)
    columns = {c.path_in_schema: c for c in (pq.ParquetFile(path).metadata.row_group(0).column(i)
               for i in range(4))}  # fmt: skip
    vectors = next(c for name, c in columns.items() if name.startswith(LAYER))
    assert vectors.compression == "UNCOMPRESSED"
    assert "RLE_DICTIONARY" not in vectors.encodings
    assert "RLE_DICTIONARY" in columns["label"].encodings


@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_open_features_is_read_features_with_the_vectors_in_the_background(tmp_path, suffix):
    path, _ = write_feature_set(tmp_path, 50, dim=12, n_classes=4, side=4, suffix=suffix)
    opened, read = open_features(path), read_features(path)
    layer = LAYER if suffix == ".parquet" else "features"  # an .npz of one layer says features
    assert opened.records == read.records
    assert opened.widths == read.widths == {layer: 12}
    assert isinstance(opened.features, LazyLayers) == (suffix == ".parquet")
    assert list(opened.features) == [layer] and len(opened.features) == 1
    np.testing.assert_array_equal(opened.features[layer], read.features[layer])
    with pytest.raises(KeyError):
        opened.features["no_such_layer"]


def test_a_table_without_rows_gives_vectors_of_its_width():
    import pyarrow as pa

    from featlib.engine.shards import to_features

    column = pa.FixedSizeListArray.from_arrays(pa.array([], pa.float32()), 7)
    table = pa.table({"path": pa.array([], pa.string()), "sha256": pa.array([], pa.string()),
                      "features/gap": column})  # fmt: skip
    assert to_features(table).features["gap"].shape == (0, 7)
