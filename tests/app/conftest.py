"""Every page test runs offline, with empty caches and a fresh store (``offline``, autouse)."""

from tests.app.helpers import fake_imagenet, feature_file, offline  # noqa: F401  (fixtures for tests/app/)
