"""Engines for sets larger than one machine.

- ``featlib.engine.ray``: ``featlib extract --engine ray`` on Ray Data (the optional extra
  ``featlib[ray]``): ``Extract``, a callable class for ``ray.data.Dataset.map_batches``, and
  ``extract_to``, the whole run, writing Parquet shards from the workers.
- ``featlib.engine.shards``: the files both engines write, read back (``read_features``), and
  what a rerun skips. Needs neither Ray nor TensorFlow.

Importing this package imports neither; ``featlib.engine.ray`` imports Ray.
"""
