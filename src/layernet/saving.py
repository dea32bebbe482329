"""Model files: architecture as JSON plus weights, in one ``.npz``, read without running code.

A file is an uncompressed NumPy ``.npz`` archive holding

* ``header``: UTF-8 JSON (as a ``uint8`` array) with the format name and version,
  the layer classes with their constructor arguments, the input shape, the
  compile settings when they can be rebuilt, and the name and shape of every
  weight;
* ``layers.<i>.<param>``: one float array per parameter of layer ``i``;
* ``optimizer.<j>`` (model files): the optimizer's state arrays (momentum
  buffers, moment estimates), declared with the weights and named in the
  header's ``"optimizer_state"`` together with the step count; with the header's
  ``"epochs_completed"`` they make the file a resumable training state. Files
  written before the optimizer state was stored still load, with a fresh
  optimizer state.

Classes are named so that no user class can collide with layernet's own
(``"layernet>Dense"``; see :mod:`layernet.registry`). Loading never unpickles
(``allow_pickle=False``), instantiates only layernet's own classes, classes
registered with :func:`~layernet.register_serializable` and ones passed
explicitly in ``custom_objects`` (through their ``from_config``), and checks
every size before it costs memory: the zip directory (member count, duplicate
names, compression, declared sizes and ratios), the JSON header (size, nesting,
integer digits), each member's ``.npy`` header against the shapes the header
declares, and what building the layers allocates (no more than the declared
weights). Every malformed file ends in :class:`ModelFileError`; all mismatched
weights are reported in one error. Writes go to an anonymous file (a named
temporary one where the system has none), flushed to disk, then linked and
renamed over the target: a failed or killed save leaves the previous file intact
and no temporary file behind (leftovers of killed saves are removed by the next
save of the same path). The documentation's "Security and file format" page
lists the bounds.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import json
import math
import os
import secrets
import shutil
import socket
import struct
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from . import __version__, initializers
from ._validation import is_int
from .layers.base import Layer, flatten_layers
from .losses import Loss
from .registry import get_registered_name, register_serializable, resolve

if TYPE_CHECKING:
    pass

FORMAT = "layernet"
FORMAT_VERSION = 1

# Bounds on what a file may ask the loader to do (all checked before anything is read,
# inflated, allocated or built; see docs/file_format.md).
MAX_HEADER_BYTES = 1 << 20  # the JSON header
MAX_JSON_DEPTH = 64  # nesting of lists and objects in the header
MAX_INT_DIGITS = 18  # integers in the header
MAX_MEMBER_BYTES = 1 << 31  # one stored array
MAX_MEMBERS = 20_000
MAX_DIRECTORY_BYTES = 2 << 20  # the zip's central directory (parsed whole by zipfile)
MAX_LAYERS = 5_000
MAX_UNDECLARED = 100  # members the header does not declare, described one by one
MAX_DIM = 1 << 31  # one axis of an input or weight shape
MAX_NDIM = 32
MAX_DEFLATE_RATIO = 200  # uncompressed / compressed size of a deflated member...
DEFLATE_RATIO_FROM = 1 << 20  # ...once it is larger than this
BUILD_SLACK_BYTES = 1 << 20  # building may allocate the declared weights plus this
_CHUNK = 1 << 20
_NPY_HEADER_MAX = 10_000
_NPY_OVERHEAD = 256  # at least what the .npy header of the JSON member takes
_TMP_TAG = ".layernet-"  # temporary files: .<name>.layernet-<host>-<pid>-<token>.tmp
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


class ModelFileError(ValueError):
    """A model or weights file that cannot be loaded: what is wrong, and where.

    Raised by :func:`load_model`, :func:`~layernet.saving.load_weights` and
    ``Sequential.load_weights`` for any malformed file (truncated, tampered,
    pickled, unknown classes, weights of the wrong names or shapes, sizes beyond
    the bounds); the message names the file and the problem. A subclass of
    :class:`ValueError`, so ``except ValueError`` catches it too.

    Parameters
    ----------
    message : str
        What is wrong, and in which file.

    Examples
    --------
    >>> import layernet as ln
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "broken.npz")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"not a model")
    >>> try:
    ...     ln.load_model(path)
    ... except ln.ModelFileError as err:
    ...     print(type(err).__name__, isinstance(err, ValueError))
    ModelFileError True
    """


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -------------------------------------------------------------------- writing
def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # os.kill would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_leftovers(path: Path) -> None:
    """Remove temporary files that interrupted saves of ``path`` left behind.

    Only names of the pattern saves use (``.<name>.layernet-<host>-<pid>-<random>.tmp``),
    and only those of processes of this machine that no longer run: a save in
    progress elsewhere keeps its file. Files from other machines (a shared folder)
    are removed once they are ten minutes old, files of the pattern earlier versions
    used (``.<name>.<8 random characters>.tmp``) at once.
    """
    folder = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        middle = name[len(prefix) : -len(".tmp")]
        try:
            old = time.time() - os.lstat(folder / name).st_mtime > 600
        except OSError:
            continue
        stale = False
        if middle.startswith(_TMP_TAG[1:]):
            host, _, rest = middle[len(_TMP_TAG) - 1 :].partition("-")
            pid = rest.partition("-")[0]
            here = host == _HOST and pid.isdigit()
            stale = old or (here and not _pid_alive(int(pid)))
        elif len(middle) == 8 and middle.replace("_", "").isalnum():
            stale = True  # the pattern of layernet versions before anonymous files
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(folder / name)


def _temp_name(path: Path, folder: Path) -> Path:
    token = f"{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    return folder / f".{path.name}{_TMP_TAG}{token}.tmp"


def _fsync_folder(folder: Path) -> None:
    if os.name == "posix":
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Write a file through ``write(fileobj)`` so that it appears whole or not at all.

    Where Linux allows it the data go to an anonymous file (``O_TMPFILE``) that
    has no name until it is complete and on disk; it is then linked under a
    temporary name and renamed over ``path`` at once, so a process killed at any
    instant leaves the old file or the new one and, but for the instant between
    those two calls, nothing else. Elsewhere a named temporary file is used. Either
    way leftovers of earlier interrupted saves of the same path are removed.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace; its folder must exist. A replaced file
        keeps its permissions; a new one gets the usual mode (``0o666`` less
        the umask).
    write : callable
        Called once with a binary file object open for writing.

    Raises
    ------
    FileNotFoundError
        ``save: folder '...' does not exist (saving to '...').``
    OSError
        When the folder is not writable or the disk is full; ``path`` is then
        left as it was.

    Examples
    --------
    >>> import layernet as ln
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> ln.saving.atomic_write(path, lambda f: f.write(b"whole or nothing"))
    >>> open(path, "rb").read()
    b'whole or nothing'
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"save: folder {str(folder)!r} does not exist (saving to {str(path)!r})."
        )
    _remove_leftovers(path)
    # the usual mode of a new file, or the replaced file's
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    fd = _anonymous_file(folder)
    tmp: Path | None = None
    try:
        if fd is None:
            tmp = _temp_name(path, folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "wb", closefd=False) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        elif tmp is not None:  # pragma: no cover - not POSIX
            os.chmod(tmp, mode)
        if tmp is None:
            tmp = _link_anonymous(fd, path, folder)
        os.replace(tmp, path)
        tmp = None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_folder(folder)


def _link_anonymous(fd: int, path: Path, folder: Path) -> Path:
    """Give the finished anonymous file a temporary name (a copy where linking is refused)."""
    tmp = _temp_name(path, folder)
    try:
        # with a folder descriptor os.link calls linkat(..., AT_SYMLINK_FOLLOW), which links
        # the file /proc/self/fd/N stands for (plain link() would try the symlink itself)
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.link(f"/proc/self/fd/{fd}", tmp.name, dst_dir_fd=dir_fd, follow_symlinks=True)
        finally:
            os.close(dir_fd)
    except OSError:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            with os.fdopen(os.dup(fd), "rb") as src, os.fdopen(out, "wb", closefd=False) as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
                dst.flush()
                os.fsync(out)
            os.fchmod(out, os.fstat(fd).st_mode & 0o7777)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            os.close(out)
    return tmp


def _anonymous_file(folder: Path) -> int | None:
    """An unnamed file in ``folder`` that can be linked in later, or None where unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        fd = os.open(folder, flag | os.O_RDWR, 0o600)
    except OSError:  # the file system or kernel does not support it
        return None
    try:  # linking through /proc needs a mounted /proc and the right to link
        probe = os.stat(f"/proc/self/fd/{fd}")
    except OSError:
        os.close(fd)
        return None
    if probe.st_nlink != 0:  # not the anonymous file we asked for
        os.close(fd)
        return None
    return fd


def _is_subclassed(model: Any) -> bool:
    """A model written as a subclass with ``call()``: stored by its class and config."""
    return bool(getattr(model, "is_subclassed", False))


def _model_arrays(model: Any) -> dict[str, np.ndarray]:
    """Every array a file stores for ``model``, by member name (the arrays themselves).

    ``"layers.<i>.<name>"`` for models that list their layers; ``"weights.<i>"``
    (Keras's order of ``model.weights``) for subclassed models, whose layers'
    names are not part of their config.
    """
    if _is_subclassed(model):
        return {f"weights.{i}": w for i, w in enumerate(model.weights)}
    out = {}
    for i, layer in enumerate(model.layers):
        if _is_subclassed(layer):  # a subclassed model inside: its weights by position
            out.update({f"layers.{i}.weights.{j}": w for j, w in enumerate(layer.weights)})
        else:
            out.update({f"layers.{i}.{k}": p for k, p in layer.variables().items()})
    return out


def _weights(model: Any) -> dict[str, np.ndarray]:
    if _is_subclassed(model):
        out = _model_arrays(model)
        bad = [k for k, a in out.items() if not np.isfinite(a).all()]
        if bad:
            raise ValueError(
                f"save: model {model.name!r}: weight(s) {bad} hold NaN or inf; refusing to "
                f"save them (any previous file is kept)."
            )
        return out
    for layer in model.layers:
        for k, p in layer.variables().items():
            if not np.isfinite(p).all():
                raise ValueError(
                    f"save: {layer.owner} parameter {k!r} holds NaN or inf; "
                    f"refusing to save it (any previous file is kept)."
                )
    return _model_arrays(model)


def _header(model: Any, kind: str, weights: dict[str, np.ndarray]) -> dict[str, Any]:
    head: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "layernet_version": __version__,
        "model": {
            "class_name": type(model).__name__,
            "name": model.name,
            "input_shape": list(model.input_shape) if model.input_shape else None,
        },
        "layers": [
            {"class_name": get_registered_name(type(layer)), "config": layer.get_config()}
            for layer in model.layers
        ],
        "weights": {k: list(v.shape) for k, v in weights.items()},
    }
    if _is_subclassed(model):
        # the class (by its registered name) and the arguments that rebuild it (no code)
        head["model"] = {
            "class_name": get_registered_name(type(model)),
            "name": model.name,
            "subclassed": True,
            "config": _subclass_config(model),
            "input_shape": _shape_json(model.input_shape),
        }
        head["layers"] = []
    if getattr(model, "is_functional", False):
        # the graph: each layer once, and what each of its calls took (no code)
        head["model"]["input_shape"] = None
        head["model"]["config"] = model.get_config()
        head["layers"] = []
    if model.loss is not None:
        head["compile"] = {
            "loss": {
                "class_name": get_registered_name(type(model.loss)),
                "config": model.loss.get_config(),
            },
            "metrics": [
                m.name
                for m, w in zip(
                    model.output_metrics[0], model.output_metric_weighting[0], strict=True
                )
                if not w
            ],
            "weighted_metrics": [
                m.name
                for m, w in zip(
                    model.output_metrics[0], model.output_metric_weighting[0], strict=True
                )
                if w
            ],
            "optimizer": _optimizer_config(model.optimizer),
        }
    elif getattr(model, "compiled", False):  # several outputs: a loss (or none) for each
        head["compile"] = {
            "losses": [
                None
                if loss is None
                else {"class_name": get_registered_name(type(loss)), "config": loss.get_config()}
                for loss in model.output_losses
            ],
            "loss_weights": list(model.loss_weights),
            "output_metrics": [
                [m.name for m, w in zip(ms, ws, strict=True) if not w]
                for ms, ws in zip(model.output_metrics, model.output_metric_weighting, strict=True)
            ],
            "output_weighted_metrics": [
                [m.name for m, w in zip(ms, ws, strict=True) if w]
                for ms, ws in zip(model.output_metrics, model.output_metric_weighting, strict=True)
            ],
            "optimizer": _optimizer_config(model.optimizer),
        }
    head["epochs_completed"] = int(getattr(model, "epochs_completed", 0))
    return head


def _shape_json(shape: Any) -> Any:
    if isinstance(shape, list):  # several inputs
        return [_shape_json(s) for s in shape]
    return None if shape is None else list(shape)


def _spec_of(value: Any) -> Any:
    """A config value as JSON: layers inside it become ``{"class_name", "config"}`` specs
    (rebuilt as layers when the file is loaded, as Keras serialises them)."""
    if isinstance(value, Layer):
        return {"class_name": get_registered_name(type(value)), "config": value.get_config()}
    if isinstance(value, list | tuple):
        return [_spec_of(v) for v in value]
    if isinstance(value, dict):
        return {k: _spec_of(v) for k, v in value.items()}
    return value


def _subclass_config(model: Any) -> dict[str, Any]:
    """A subclassed model's ``get_config()``, checked to be JSON that loading accepts."""
    cls = type(model)
    config = model.get_config()
    if not isinstance(config, dict):
        raise TypeError(
            f"save: model {model.name!r}: {cls.__name__}.get_config() must return a dict, "
            f"received {type(config).__name__}."
        )
    config = {k: _spec_of(v) for k, v in config.items()}
    bad = sorted(
        str(k)
        for k, v in config.items()
        if not (isinstance(k, str) and k.isidentifier() and _is_json_value(v))
    )
    if bad:
        raise TypeError(
            f"save: model {model.name!r}: {cls.__name__}.get_config() returned entries "
            f"that a model file cannot hold: {bad} (expected keyword names with str, int, "
            f"float, bool or None values, lists and dicts of them, or layers)."
        )
    return config


def _optimizer_config(opt: Any) -> dict[str, Any] | None:
    if opt is None or not opt.serializable:
        return None  # a learning rate given as arbitrary Python code is not stored
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def _optimizer_state(model: Any) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """The header entry and the arrays of the optimizer's state (None if not stored)."""
    opt = model.optimizer
    compiled = model.loss is not None or getattr(model, "compiled", False)
    if opt is None or not compiled or _optimizer_config(opt) is None:
        return None, {}
    slots: list[dict[str, str]] = []
    arrays: dict[str, np.ndarray] = {}
    in_file = {state_key: key for key, (state_key, _) in _optimizer_params(model).items()}
    for key, named in opt.state.items():
        for slot, value in named.items():
            member = f"optimizer.{len(slots)}"
            slots.append({"param": in_file.get(key, key), "slot": slot, "array": member})
            arrays[member] = value
    return {"iterations": int(opt.iterations), "slots": slots}, arrays


def _optimizer_params(model: Any) -> dict[str, tuple[str, np.ndarray]]:
    """Trainable parameters by the name files give them: ``(optimizer's key, array)``.

    ``"<i>.<layer name>.<name>"`` (the optimizer's own key) for models listing their
    layers; ``"weights.<i>"`` (the position in ``model.weights``) for subclassed
    models, whose optimizer keys hold auto-generated layer names.
    """
    if _is_subclassed(model):
        position = {id(w): i for i, w in enumerate(model.weights)}
        return {
            f"weights.{position[id(p)]}": (key, p)
            for key, (p, _) in model._step_params().items()
            if id(p) in position
        }
    out = {}
    for i, layer in enumerate(model.layers):
        if not layer.trainable:
            continue
        position = {id(w): j for j, w in enumerate(layer.weights)} if _is_subclassed(layer) else {}
        for k, p in layer.params.items():
            key = f"{i}.{layer.name}.{k}"
            # a subclassed model inside: its parameters by position (not by layer names)
            name = f"{i}.{layer.name}.weights.{position[id(p)]}" if id(p) in position else key
            out[name] = (key, p)
    return out


def _write(model: Any, path: str | os.PathLike, kind: str) -> None:
    from .distributed import is_root

    if not model.built:
        raise RuntimeError(
            f"save: model {model.name!r} is not built yet; call build() or fit() first."
        )
    if not is_root(model):
        return  # data-parallel training: rank 0 writes, the other ranks hold the same model
    weights = _weights(model)
    head = _header(model, kind, weights)
    if kind == "model":
        head["random_state"] = _generator_states(model)
        head["optimizer_state"], state = _optimizer_state(model)
        weights = {**weights, **state}  # declared like the weights, so loading bounds them
        head["weights"].update({k: list(v.shape) for k, v in state.items()})
    header = json.dumps(head).encode("utf-8")
    _check_loadable(model, header)
    arrays: dict[str, Any] = {"header": np.frombuffer(header, dtype=np.uint8), **weights}
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _check_loadable(model: Any, header: bytes) -> None:
    """Refuse to write a file that loading would refuse for its size or nesting."""
    problem = None
    if len(header) + _NPY_OVERHEAD > MAX_HEADER_BYTES:  # the limit counts the .npy header
        problem = f"its header would be {len(header):,} bytes, above {MAX_HEADER_BYTES:,}"
    elif (depth := _json_depth(header)) > MAX_JSON_DEPTH:
        problem = f"its header would nest {depth} levels deep, above {MAX_JSON_DEPTH}"
    elif len(model.layers) > MAX_LAYERS:
        problem = f"it has {len(model.layers)} layers, above {MAX_LAYERS}"
    elif (count := len(model.weights) + 1) > MAX_MEMBERS:
        problem = f"it would hold {count} arrays, above {MAX_MEMBERS}"
    if problem:
        raise ValueError(
            f"save: model {model.name!r} cannot be saved in a file that loads: {problem} "
            f"(the bounds of layernet.saving; any previous file is kept)."
        )


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Write architecture, compile settings and weights to one file (atomically).

    The same as ``model.save(path)``; :func:`~layernet.load_model` reads it back.
    The file is an ``.npz`` archive with a JSON header and one array per
    weight, and holds no pickled object (see :doc:`/file_format`).

    Parameters
    ----------
    model : Sequential
        A built model (compiled or not: the loss, metrics and optimizer
        settings are stored when there are some).
    path : str or os.PathLike
        The file to create or replace (atomically: see :func:`atomic_write`).

    Raises
    ------
    RuntimeError
        ``save: model '...' is not built yet; call build() or fit() first.``
    ValueError
        ``save: model '...' cannot be saved in a file that loads: ...`` when the
        model is beyond the bounds loading enforces (the previous file is kept).
    FileNotFoundError
        When the folder of ``path`` does not exist.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> import os, tempfile
    >>> model = ln.Sequential([ln.Dense(3, seed=0), ln.ReLU(), ln.Dense(2, seed=1)])
    >>> model.build((None, 4))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> ln.saving.save_model(model, path)
    >>> same = ln.load_model(path)
    >>> x = np.ones((1, 4), dtype="float32")
    >>> bool(np.array_equal(same.predict(x, verbose=0), model.predict(x, verbose=0)))
    True
    """
    _write(model, path, "model")


def save_weights(model: Any, path: str | os.PathLike) -> None:
    """Write only the weights (and their names and shapes) to one file (atomically).

    The same as ``model.save_weights(path)``; :func:`load_weights` reads it into
    a model with the same layers.

    Parameters
    ----------
    model : Sequential
        A built model.
    path : str or os.PathLike
        The file to create or replace (atomically).

    Raises
    ------
    RuntimeError
        ``save: model '...' is not built yet; call build() or fit() first.``
    ValueError
        When the model is beyond the bounds loading enforces.
    FileNotFoundError
        When the folder of ``path`` does not exist.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> import os, tempfile
    >>> model = ln.Sequential([ln.Dense(3, seed=0), ln.ReLU(), ln.Dense(2, seed=1)])
    >>> model.build((None, 4))
    >>> path = os.path.join(tempfile.mkdtemp(), "weights.npz")
    >>> ln.saving.save_weights(model, path)
    >>> other = ln.Sequential([ln.Dense(3, seed=5), ln.ReLU(), ln.Dense(2, seed=6)])
    >>> other.build((None, 4))
    >>> ln.saving.load_weights(other, path)
    >>> bool(np.array_equal(other.layers[0].params["kernel"], model.layers[0].params["kernel"]))
    True
    """
    _write(model, path, "weights")


def register_keras_serializable(
    package: str = "Custom", name: str | None = None
) -> Callable[[Any], Any]:
    """Decorator: save and load a class under ``"<package>><name>"`` (Keras's name for it).

    ``keras.saving.register_keras_serializable``: the same as
    :func:`layernet.register_serializable`. A registered layer, loss or
    subclassed model loads from model files without ``custom_objects`` (the
    module that defines it must be imported first, so that the decorator has run).

    Parameters
    ----------
    package : str, default "Custom"
        A namespace of your own (not ``"layernet"``).
    name : str, optional
        Defaults to the class name.

    Returns
    -------
    callable
        The decorator; it returns the class unchanged.

    Raises
    ------
    ValueError
        For an empty package or name, one holding ``">"``, the reserved package
        ``"layernet"``, or a name already registered for another class.
    TypeError
        When the decorated object is not a Layer, Loss or Model subclass or a
        function.

    Examples
    --------
    >>> import layernet as ln
    >>> @ln.saving.register_keras_serializable(package="docs")
    ... class Twice(ln.Model):
    ...     def __init__(self, units=2, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.units = units
    ...         self.dense = ln.layers.Dense(units)
    ...
    ...     def call(self, x):
    ...         return self.dense(x) * 2
    >>> ln.get_registered_name(Twice)
    'docs>Twice'
    """
    return register_serializable(package, name)


# -------------------------------------------------------------------- reading
class _Refused(Exception):
    """A header value the JSON parser must not turn into a Python object."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} (too large for a float)")
    return value


def _parse_constant(text: str) -> Any:
    raise _Refused(f"{text} (layernet headers hold finite numbers only)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = None
        for k, _ in pairs:
            if k in seen:
                dup = k
                break
            seen.add(k)
        raise _Refused(f"the key {dup!r} twice in one object")
    return out


def _json_depth(raw: bytes) -> int:
    """Deepest nesting of lists and objects, counted without parsing, in linear time.

    A quote preceded by an odd number of backslashes is escaped; the others open and
    close strings, and brackets inside strings do not count.
    """
    b = np.frombuffer(raw, dtype=np.uint8)
    if b.size == 0:
        return 0
    idx = np.arange(b.size)
    last_plain = np.maximum.accumulate(np.where(b != ord("\\"), idx, -1))
    backslashes_before = np.zeros(b.size, dtype=np.int64)
    backslashes_before[1:] = idx[:-1] - last_plain[:-1]
    quote = (b == ord('"')) & (backslashes_before % 2 == 0)
    outside = np.cumsum(quote) % 2 == 0
    step = ((b == ord("[")) | (b == ord("{"))).astype(np.int64)
    step -= (b == ord("]")) | (b == ord("}"))
    step *= outside
    return int(np.cumsum(step).max(initial=0))


def _parse_header(raw: bytes, where: str) -> dict[str, Any]:
    depth = _json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(
            f"load: {where} has a header nested {depth} levels deep, above the limit of "
            f"{MAX_JSON_DEPTH}."
        )
    try:
        header = json.loads(
            raw.decode("utf-8"),
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
            object_pairs_hook=_unique_keys,
        )
    except _Refused as exc:
        raise ModelFileError(f"load: {where} has a header that holds {exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ModelFileError(
            f"load: {where} has a header that is not valid JSON ({exc})."
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(
            f"load: {where} is not a layernet file (format "
            f"{header.get('format') if isinstance(header, dict) else None!r:.80})."
        )
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"load: {where} has format version "
            f"{header.get('format_version')!r:.80}; this layernet reads version "
            f"{FORMAT_VERSION}."
        )
    if header.get("kind") not in ("model", "weights"):
        raise ModelFileError(f"load: {where}: malformed header (kind {header.get('kind')!r:.80}).")
    return header


def _check_shape(shape: Any) -> bool:
    return (
        isinstance(shape, list)
        and len(shape) <= MAX_NDIM
        and all(is_int(d) and 0 <= d <= MAX_DIM for d in shape)
    )


def _declared_members(header: dict[str, Any], where: str) -> dict[str, tuple[int, ...]]:
    """The arrays the header says the file holds: member name -> shape (sizes bounded)."""
    weights = header.get("weights")
    if not isinstance(weights, dict) or len(weights) > MAX_MEMBERS:
        raise ModelFileError(f"load: {where}: malformed header (weights).")
    out = {}
    for name, shape in weights.items():
        if not (isinstance(name, str) and 0 < len(name) <= 200) or not _check_shape(shape):
            raise ModelFileError(
                f"load: {where}: malformed header entry for weight {name!r:.200}: {shape!r:.200}."
            )
        if math.prod(shape) * 8 > MAX_MEMBER_BYTES:
            raise ModelFileError(
                f"load: {where}: weight {name!r} declares shape {tuple(shape)}, above the "
                f"limit of {MAX_MEMBER_BYTES} bytes per array."
            )
        out[name] = tuple(shape)
    return out


def _directory_size(f: Any) -> tuple[int, int] | None:
    """Entry count and byte size of a zip's central directory, read from its end record.

    ``zipfile`` parses the whole directory into objects about ten times the size of
    its bytes when it opens a file, so the size is checked first. ``None`` when there
    is no end record (``zipfile`` then refuses the file itself).
    """
    f.seek(0, os.SEEK_END)
    size = f.tell()
    tail_len = min(size, 22 + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return None
    count, cd_size = struct.unpack("<HI", tail[pos + 10 : pos + 16])
    start = size - tail_len + pos  # where the end record begins in the file
    if start >= 76:  # a zip64 end record (56 bytes) and locator (20) may precede it
        f.seek(start - 76)
        before = f.read(76)
        if before[56:60] == b"PK\x06\x07" and before[:4] == b"PK\x06\x06":
            count, cd_size = struct.unpack("<QQ", before[32:48])
    return count, cd_size


def _check_directory(zf: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    """Vet the zip's table of contents: count, names, compression and declared sizes."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(
            f"load: {where} has {len(infos)} members, above the limit of {MAX_MEMBERS}."
        )
    by_name: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if name in by_name:
            raise ModelFileError(
                f"load: {where} holds two members named {name!r:.200}; refusing to guess "
                f"which one is meant."
            )
        by_name[name] = info
        if info.flag_bits & 0x1:
            raise ModelFileError(f"load: {where}: member {name!r:.200} is encrypted.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"load: {where}: member {name!r:.200} uses compression method "
                f"{info.compress_type}; layernet files are stored or deflated."
            )
        limit = MAX_HEADER_BYTES if name == "header.npy" else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise ModelFileError(
                f"load: member {name!r:.200} of {where} is "
                f"{info.file_size} bytes, above the limit of {limit}."
            )
        if (
            info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size > DEFLATE_RATIO_FROM
            and info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1)
        ):
            raise ModelFileError(
                f"load: member {name!r:.200} of {where} inflates {info.compress_size} bytes "
                f"to {info.file_size}, a ratio above the limit of {MAX_DEFLATE_RATIO}."
            )
    if "header.npy" not in by_name:
        raise ModelFileError(f"load: {where} is not a layernet file (no header).")
    return by_name


def _npy_header(f: Any, info: zipfile.ZipInfo, where: str) -> tuple[tuple[int, ...], bool, Any]:
    """Shape, order and dtype of a stored ``.npy`` member, its sizes checked."""
    name = info.filename
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, _NPY_HEADER_MAX)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, _NPY_HEADER_MAX)
    else:
        raise ModelFileError(
            f"load: {where}: member {name!r} has .npy format version {version}; expected 1.0 "
            f"or 2.0."
        )
    if dtype.hasobject:
        raise ModelFileError(
            f"load: {where} holds a pickled object array; refusing to load "
            f"it (layernet files never contain pickles)."
        )
    if len(shape) > MAX_NDIM or any(d > MAX_DIM for d in shape):
        raise ModelFileError(f"load: {where}: member {name!r} has an absurd shape {shape}.")
    nbytes = math.prod(shape) * dtype.itemsize
    if f.tell() + nbytes != info.file_size:
        raise ModelFileError(
            f"load: {where}: member {name!r} declares shape {shape} of {dtype} "
            f"({nbytes} bytes of data) but holds {info.file_size - f.tell()} bytes."
        )
    return tuple(shape), fortran, dtype


def _read_npy(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    where: str,
    accept: Callable[[tuple[int, ...], np.dtype], bool] = lambda shape, dtype: True,
) -> np.ndarray | tuple[tuple[int, ...], np.dtype]:
    """Read one member in bounded chunks into an array of its checked size.

    The ``.npy`` header comes first; unless ``accept(shape, dtype)`` approves it, the
    data are not read and ``(shape, dtype)`` is returned instead.
    """
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_header(f, info, where)
        if not accept(shape, dtype):
            return shape, dtype
        out = np.empty(math.prod(shape), dtype=dtype)
        buf = out.view(np.uint8)
        pos = 0
        while pos < buf.size:
            chunk = f.read(min(_CHUNK, buf.size - pos))
            if not chunk:
                raise ModelFileError(f"load: {where}: member {info.filename!r} is truncated.")
            buf[pos : pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            pos += len(chunk)
        if f.read(1):
            raise ModelFileError(
                f"load: {where}: member {info.filename!r} holds more data than its shape."
            )
    return out.reshape(shape, order="F" if fortran else "C")


def _read_members(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    declared: dict[str, tuple[int, ...]],
    where: str,
) -> dict[str, np.ndarray]:
    """The declared arrays; any member whose name, shape or dtype differs from the header's
    is reported (all of them in one error) and never read beyond its ``.npy`` header."""
    problems = [
        f"missing {k} {shape}" for k, shape in declared.items() if f"{k}.npy" not in members
    ]
    undeclared = [n for n in members if n != "header.npy" and n[: -len(".npy")] not in declared]
    if len(undeclared) > MAX_UNDECLARED:  # not worth opening each one to describe it
        raise ModelFileError(
            f"load: {where} holds {len(undeclared)} members its header does not declare "
            f"(the first: {undeclared[:3]!r:.200})."
        )
    arrays = {}
    for name, info in members.items():
        if name == "header.npy":
            continue
        key = name[: -len(".npy")] if name.endswith(".npy") else name
        want = declared.get(key) if name.endswith(".npy") else None

        def accept(shape, dtype, want=want):
            return shape == want and dtype.kind == "f" and dtype.itemsize in (4, 8)

        got = _read_npy(zf, info, where, accept)
        if isinstance(got, np.ndarray):
            arrays[key] = got
            continue
        shape, dtype = got
        if want is None:
            problems.append(f"unexpected {key} {shape}")
        elif shape != want:
            problems.append(f"{key}: expected shape {want}, found {shape}")
        else:
            problems.append(f"{key}: expected a float32 or float64 array, found dtype {dtype}")
    if problems:
        raise ModelFileError(
            f"load: {where} does not match the model's parameters its header declares:\n  "
            + "\n  ".join(problems)
        )
    return arrays


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OverflowError,
    struct.error,
    KeyError,
    IndexError,
    TypeError,
)


def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Header and arrays of a model file, every size checked before it is read."""
    path = os.fspath(path)
    where = f"{path!r}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no file at {where}.")
    try:
        with open(path, "rb") as f:
            found = _directory_size(f)
        if found is not None and (found[0] > MAX_MEMBERS or found[1] > MAX_DIRECTORY_BYTES):
            raise ModelFileError(
                f"load: {where} has a zip directory of {found[0]} members and {found[1]} bytes, "
                f"above the limits of {MAX_MEMBERS} members and {MAX_DIRECTORY_BYTES} bytes."
            )
        with zipfile.ZipFile(path) as zf:
            members = _check_directory(zf, where)
            raw = _read_npy(zf, members["header.npy"], where)
            if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
                raise ModelFileError(f"load: {where} has a malformed header.")
            header = _parse_header(raw.tobytes(), where)
            declared = _declared_members(header, where)
            arrays = _read_members(zf, members, declared, where)
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(f"load: {where}: reading it ran out of memory.") from None
    except _ZIP_ERRORS as exc:
        raise ModelFileError(
            f"load: {where} is not a readable layernet file (truncated or corrupted: "
            f"{type(exc).__name__}: {exc})."
        ) from None
    return header, arrays


def _is_json_value(v: Any) -> bool:
    if v is None or isinstance(v, bool | int | float | str):
        return True
    if isinstance(v, list):
        return all(_is_json_value(x) for x in v)
    if isinstance(v, dict):  # nested layer specs, serialised objects (initializers)
        return all(isinstance(k, str) and _is_json_value(x) for k, x in v.items())
    return False


def _is_spec(v: Any) -> bool:
    return isinstance(v, dict) and set(v) == {"class_name", "config"}


def _nested(v: Any, where: str, custom: dict[str, type]) -> Any:
    """Instantiate the inner layers a container's config names (as specs), checked alike."""
    if _is_spec(v):
        return _instantiate(v, where, custom, Layer)
    if isinstance(v, list) and v and all(_is_spec(x) for x in v):
        return [_instantiate(x, where, custom, Layer) for x in v]
    return v


def _instantiate(spec: Any, where: str, custom: dict[str, type], base: type) -> Any:
    if not (
        isinstance(spec, dict)
        and isinstance(spec.get("class_name"), str)
        and isinstance(spec.get("config"), dict)
    ):
        raise ModelFileError(f"load: {where}: malformed layer entry {spec!r:.200}.")
    name = spec["class_name"]
    cls = resolve(name, custom)
    if (
        cls is None
        or not isinstance(cls, type)
        or not issubclass(cls, base)
        or (base is Layer and issubclass(cls, Loss))  # a loss is given to compile
        or cls in (Layer, Loss)
    ):
        short = name.rsplit(">", 1)[-1].rsplit(".", 1)[-1]
        raise ModelFileError(
            f"load: {where} names layer class {name!r}, which is not one of "
            f"layernet's layers nor a registered class (pass custom_objects={{{short!r}: cls}} "
            f"for your own, or decorate it with register_serializable)."
        )
    name = cls.__name__
    # arguments renamed since the file was written (e.g. Conv's `dilation`)
    renamed = getattr(cls, "renamed_arguments", {})
    config = {renamed.get(k, k): v for k, v in spec["config"].items()}
    params = inspect.signature(cls.__init__).parameters
    allowed = set(params) - {"self"}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed |= {k for k in config if isinstance(k, str) and k.isidentifier()}
    extra = set(config) - allowed
    if extra or not all(isinstance(k, str) and _is_json_value(v) for k, v in config.items()):
        raise ModelFileError(
            f"load: {where}: invalid arguments for {name}: {sorted(extra) or config!r:.300}."
        )
    config = {k: _nested(v, where, custom) for k, v in config.items()}
    try:
        return cast(Any, cls).from_config(config)
    except (TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise ModelFileError(f"load: {where}: cannot rebuild {name}: {exc}") from None


def check_custom_objects(custom_objects: Any, fn: str) -> dict[str, type]:
    """``custom_objects`` as a dict, refusing entries that would replace layernet's own classes.

    Keys are the names files store (``"my_pkg>Smooth"``, ``"my_module.Smooth"``)
    or class names; values are classes. A key in layernet's package
    (``"layernet>Dense"``) or equal to the name of one of layernet's classes
    (``"Dense"``, which files of the first format store) is refused unless it
    maps to that very class: what a file says is layernet's ``Dense`` is always
    layernet's ``Dense``.

    Raises
    ------
    ValueError
        ``load_model: invalid value for `custom_objects`: 'Dense' names
        layernet's own class Dense, which custom_objects cannot replace ...``
    TypeError
        For a non-dict, a key that is not a str or a value that is not a class.

    Examples
    --------
    >>> import layernet as ln
    >>> from layernet.saving import check_custom_objects
    >>> class Mine(ln.Dense):
    ...     pass
    >>> list(check_custom_objects({"Mine": Mine}, "load_model"))
    ['Mine']
    >>> try:
    ...     check_custom_objects({"Dense": Mine}, "load_model")
    ... except ValueError as err:
    ...     print(str(err)[:76])
    load_model: invalid value for `custom_objects`: 'Dense' names layernet's own
    """
    from .registry import BUILTIN_PACKAGE, builtin_classes

    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, dict):
        raise TypeError(
            f"{fn}: invalid value for `custom_objects`: expected a dict of name to class, "
            f"received {type(custom_objects).__name__}."
        )
    own = builtin_classes(object)
    for key, cls in custom_objects.items():
        if not isinstance(key, str) or not isinstance(cls, type):
            raise TypeError(
                f"{fn}: invalid value for `custom_objects`: expected str keys and classes as "
                f"values, received {key!r:.80}: {cls!r:.80}."
            )
        short = key.removeprefix(f"{BUILTIN_PACKAGE}>")
        if (key.startswith(f"{BUILTIN_PACKAGE}>") or key in own) and own.get(short) is not cls:
            what = (
                f"layernet's own class {short}"
                if short in own
                else f"the package {BUILTIN_PACKAGE!r}, which is layernet's own"
            )
            raise ValueError(
                f"{fn}: invalid value for `custom_objects`: {key!r} names {what}, which "
                f"custom_objects cannot replace (received {cls.__module__}.{cls.__name__}). "
                f"Files that name layernet's classes always load layernet's; pass your class "
                f"under the name the file stores for it (e.g. "
                f"{cls.__module__ + '.' + cls.__qualname__!r}) or register it with "
                f"register_serializable."
            )
    return dict(custom_objects)


def layer_from_spec(spec: Any, custom_objects: dict[str, type] | None = None) -> Layer:
    """A layer from ``{"class_name": ..., "config": ...}`` with the checks of :func:`load_model`.

    Only layernet's own layer classes, or those in ``custom_objects``, are built;
    nested specs (the inner layers of containers) are built the same way.
    ``custom_objects`` cannot replace layernet's own classes
    (see :func:`~layernet.saving.check_custom_objects`).
    """
    return _instantiate(spec, "layer config", check_custom_objects(custom_objects, "load"), Layer)


def _renamed_weights(model: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map weight names of earlier versions (Conv's and Dense's ``W``/``b``) to today's."""
    out = {}
    for key, a in arrays.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "layers" and parts[1].isdigit():
            i = int(parts[1])
            if i < len(model.layers):
                new = getattr(model.layers[i], "renamed_weights", {}).get(parts[2])
                if new is not None and f"layers.{i}.{new}" not in arrays:
                    key = f"layers.{i}.{new}"
        out[key] = a
    return out


def _pop_optimizer_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: arrays.pop(k) for k in [k for k in arrays if k.startswith("optimizer.")]}


def _restore_optimizer(model: Any, entry: Any, arrays: dict[str, np.ndarray], where: str) -> None:
    """Put the saved step count and state arrays into the model's (fresh) optimizer.

    The state is read against what the optimizer declares: every entry names a
    trainable parameter of the model and one of the optimizer's
    :attr:`~layernet.optimizers.Optimizer.slot_names`, once; every parameter with
    state has all the slots; every array has its parameter's shape and dtype and
    is named by exactly one entry. Nothing is assigned unless all of it holds.
    """
    fn = f"load_model: {where}: optimizer state"
    if entry is None:
        if arrays:
            raise ModelFileError(
                f"{fn}: the file holds optimizer arrays {sorted(arrays)!r:.200} but no "
                f"'optimizer_state' entry describing them."
            )
        return
    if not isinstance(entry, dict) or not isinstance(entry.get("slots"), list):
        raise ModelFileError(f"{fn}: malformed entry (expected 'iterations' and 'slots').")
    iterations = entry.get("iterations")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise ModelFileError(f"{fn}: malformed step count 'iterations' {iterations!r:.50}.")
    opt = model.optimizer
    assert opt is not None  # compiled just before
    declared = opt.slot_names
    keyed = _optimizer_params(model)
    params = {key: p for key, (_, p) in keyed.items()}
    state: dict[str, dict[str, np.ndarray]] = {}
    used: set[str] = set()
    for j, spec in enumerate(entry["slots"]):
        if not (
            isinstance(spec, dict)
            and set(spec) == {"param", "slot", "array"}
            and all(isinstance(spec[k], str) for k in spec)
        ):
            raise ModelFileError(
                f"{fn}: entry {j} is malformed (expected 'param', 'slot' and 'array' names): "
                f"{spec!r:.200}."
            )
        key, slot, member = spec["param"], spec["slot"], spec["array"]
        what = f"{fn}: entry {j} (slot {slot!r:.80} of parameter {key!r:.120})"
        p = params.get(key)
        if p is None:
            raise ModelFileError(
                f"{what}: the model has no trainable parameter of that name (it has "
                f"{sorted(params)!r:.200})."
            )
        if slot not in declared:
            raise ModelFileError(
                f"{what}: {type(opt).__name__} keeps no slot of that name (its slots: "
                f"{list(declared)!r})."
            )
        if slot in state.get(key, {}):
            raise ModelFileError(f"{what}: the same parameter and slot appear twice.")
        if member in used:
            raise ModelFileError(f"{what}: array {member!r:.80} is named by two entries.")
        a = arrays.get(member)
        if a is None:
            raise ModelFileError(f"{what}: array {member!r:.80} is not in the file.")
        used.add(member)
        if a.shape != p.shape:
            raise ModelFileError(
                f"{what}: array {member!r} has shape {a.shape}, the parameter {p.shape}."
            )
        if a.dtype != p.dtype:
            raise ModelFileError(
                f"{what}: array {member!r} has dtype {a.dtype}, the parameter {p.dtype}."
            )
        if not np.isfinite(a).all():
            raise ModelFileError(f"{what}: array {member!r} holds NaN or inf.")
        state.setdefault(key, {})[slot] = a
    for key, slots in state.items():
        missing = [name for name in declared if name not in slots]
        if missing:
            raise ModelFileError(
                f"{fn}: parameter {key!r:.120} lacks the slot(s) {missing!r} that "
                f"{type(opt).__name__} keeps with {sorted(slots)!r}."
            )
    unused = sorted(set(arrays) - used)
    if unused:
        raise ModelFileError(
            f"{fn}: arrays {unused!r:.200} are not named by any entry of 'optimizer_state'."
        )
    opt.iterations = int(iterations)
    opt.state = {
        keyed[key][0]: {k: a.copy() for k, a in slots.items()} for key, slots in state.items()
    }


# ------------------------------------------------------------ generator states
def _generators(model: Any) -> dict[str, np.random.Generator]:
    """Every NumPy generator a layer keeps (Dropout's masks), by a stable name.

    ``"layers.<i>.<j>.<attribute>"``: layer ``i`` of the model, ``j`` its position
    among itself (0) and its inner layers (depth first), then the attribute.
    """
    out = {}
    for i, top in enumerate(model.layers):
        for j, layer in enumerate(flatten_layers([top])):
            for attr, value in vars(layer).items():
                if isinstance(value, np.random.Generator):
                    out[f"layers.{i}.{j}.{attr}"] = value
    return out


def _generator_states(model: Any) -> dict[str, Any]:
    """The states of the layers' generators as JSON (128-bit numbers as decimal strings)."""
    out = {}
    for key, gen in _generators(model).items():
        state = gen.bit_generator.state
        if state.get("bit_generator") != "PCG64":  # not what layernet's layers use
            continue
        out[key] = {
            "bit_generator": "PCG64",
            "state": str(int(state["state"]["state"])),
            "inc": str(int(state["state"]["inc"])),
            "has_uint32": int(state["has_uint32"]),
            "uinteger": int(state["uinteger"]),
        }
    return out


def _u128(value: Any) -> int | None:
    if isinstance(value, str) and 0 < len(value) <= 39 and value.isascii() and value.isdigit():
        n = int(value)
        return n if n < 1 << 128 else None
    return None


def _restore_generators(model: Any, entry: Any, where: str) -> None:
    """Set the layers' generators to the saved states (files without any keep fresh ones)."""
    if entry is None:
        return
    fn = f"load_model: {where}: random_state"
    if not isinstance(entry, dict):
        raise ModelFileError(f"{fn}: malformed entry {entry!r:.100}.")
    gens = _generators(model)
    unknown = sorted(set(entry) - set(gens))
    if unknown:
        raise ModelFileError(
            f"{fn}: generator(s) {unknown!r:.200} that the model's layers do not have "
            f"(they have {sorted(gens)!r:.200})."
        )
    states: dict[str, dict[str, Any]] = {}
    for key, saved in entry.items():
        state = inc = None
        if isinstance(saved, dict) and set(saved) == {
            "bit_generator",
            "state",
            "inc",
            "has_uint32",
            "uinteger",
        }:
            state, inc = _u128(saved["state"]), _u128(saved["inc"])
        if (
            state is None
            or inc is None
            or saved["bit_generator"] != "PCG64"
            or saved["has_uint32"] not in (0, 1)
            or not is_int(saved["uinteger"])
            or not 0 <= saved["uinteger"] < 1 << 32
            or inc % 2 == 0  # PCG64's increment is odd
        ):
            raise ModelFileError(f"{fn}: malformed state of generator {key!r}: {saved!r:.200}.")
        states[key] = {
            "bit_generator": "PCG64",
            "state": {"state": state, "inc": inc},
            "has_uint32": int(saved["has_uint32"]),
            "uinteger": int(saved["uinteger"]),
        }
    for key, new in states.items():
        gen = gens[key]
        if not isinstance(gen.bit_generator, np.random.PCG64):
            gen = np.random.Generator(np.random.PCG64())
            i, j, attr = key.split(".")[1:]
            setattr(flatten_layers([model.layers[int(i)]])[int(j)], attr, gen)
        gen.bit_generator.state = new


def _assign(model: Any, arrays: dict[str, np.ndarray], where: str) -> None:
    arrays = _renamed_weights(model, arrays)
    expected = _model_arrays(model)
    problems = [f"missing {k} {tuple(expected[k].shape)}" for k in expected if k not in arrays]
    problems += [f"unexpected {k} {tuple(arrays[k].shape)}" for k in arrays if k not in expected]
    for k, p in expected.items():
        a = arrays.get(k)
        if a is None:
            continue
        if a.shape != p.shape:
            problems.append(f"{k}: expected shape {tuple(p.shape)}, found {tuple(a.shape)}")
        elif a.dtype.kind != "f":
            problems.append(f"{k}: expected a float array, found dtype {a.dtype}")
        elif not np.isfinite(a).all():
            problems.append(f"{k}: holds NaN or inf")
    if problems:
        raise ModelFileError(
            f"load: {where} does not match the model's parameters:\n  " + "\n  ".join(problems)
        )
    for k, p in expected.items():
        p[...] = arrays[k]


def load_model(path: str | os.PathLike, custom_objects: dict[str, type] | None = None) -> Any:
    """Rebuild a model saved by :meth:`Sequential.save`, weights and compile settings included.

    Parameters
    ----------
    path : str or os.PathLike
    custom_objects : dict of str to type, optional
        Your own Layer and Loss subclasses, by class name (or by the name the file
        stores). layernet's own classes and those registered with
        :func:`~layernet.register_serializable` load without it; nothing else is
        ever instantiated. It cannot replace one of layernet's own classes: a key
        such as ``"layernet>Dense"`` or ``"Dense"`` (the name of a layernet class)
        mapped to another class is refused with a ``ValueError`` before the file
        is read, since ``"layernet>Dense"`` always means :class:`~layernet.Dense`.

    Returns
    -------
    Sequential
        Built, with the saved weights; compiled again when the file records a
        loss. The optimizer comes back with its settings, schedule, step count and
        state (momentum buffers, moment estimates), and ``epochs_completed`` with
        the epochs trained, so ``fit(..., initial_epoch=model.epochs_completed)``
        continues the run; files written before optimizer states were stored give
        a fresh optimizer state. A learning rate that was an arbitrary Python
        callable is not stored (``SGD()`` is used, with a warning).

    Raises
    ------
    ModelFileError
        For any malformed file (truncated, tampered, pickled, unknown or non-layer
        classes, mismatched or oversized weights, optimizer state that does not
        match the optimizer's declared slots, malformed generator states, sizes
        beyond the bounds), naming the file and the problem; nothing the file
        asks for is allocated before its size has been checked.
    ValueError
        ``load_model: invalid value for `custom_objects`: 'Dense' names
        layernet's own class Dense, which custom_objects cannot replace ...``
        (see :func:`~layernet.saving.check_custom_objects`).
    TypeError
        For ``custom_objects`` that is not a dict of str to classes.
    FileNotFoundError
        When there is no file at ``path``.

    Examples
    --------
    >>> import layernet as ln
    >>> import os, tempfile
    >>> model = ln.Sequential([ln.Dense(2, seed=0)], name="tiny")
    >>> model.compile("sgd", "mse")
    >>> model.build((None, 3))
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.npz")
    >>> model.save(path)
    >>> loaded = ln.load_model(path)
    >>> loaded.name, loaded.built, type(loaded.optimizer).__name__
    ('tiny', True, 'SGD')
    """
    custom = check_custom_objects(custom_objects, "load_model")
    with _malformed_file(path, "load_model"):
        return _load_model(path, custom)


@contextlib.contextmanager
def _malformed_file(path: str | os.PathLike, fn: str) -> Iterator[None]:
    """Turn whatever a malformed file provokes while it is interpreted into a ModelFileError."""
    try:
        yield
    except (ModelFileError, FileNotFoundError, PermissionError, IsADirectoryError, RuntimeError):
        raise
    except initializers.AllocationRefused as exc:
        raise ModelFileError(
            f"{fn}: {os.fspath(path)!r}: its layers would allocate more than the weights the file "
            f"declares ({exc})"
        ) from None
    except Exception as exc:
        raise ModelFileError(
            f"{fn}: {os.fspath(path)!r} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc


def _build_budget(arrays: dict[str, np.ndarray]) -> int:
    """What building the declared model may allocate: its weights (as float64) plus a little."""
    return sum(a.size for a in arrays.values()) * 8 + BUILD_SLACK_BYTES


def _build_bounded(
    model: Any,
    shape: tuple[int | None, ...],
    arrays: dict[str, np.ndarray],
    where: str,
    fn: str,
) -> None:
    """Build ``model`` allocating no more than the file's arrays (plus a little)."""
    try:
        with initializers.allocation_budget(_build_budget(arrays)):
            model.build(shape)
    except initializers.AllocationRefused as exc:
        layer = next((layer for layer in model.layers if not layer.built), None)
        raise ModelFileError(
            f"{fn}: {where}: {layer.owner if layer else 'a layer'} would allocate more than "
            f"the weights the file declares ({exc})"
        ) from None


def _input_shape(info: Any, where: str, fn: str) -> tuple[int | None, ...]:
    shape = info.get("input_shape") if isinstance(info, dict) else None
    if not (
        isinstance(shape, list)
        and 2 <= len(shape) <= MAX_NDIM
        and (shape[0] is None or (is_int(shape[0]) and 0 <= shape[0] <= MAX_DIM))
        and all(is_int(s) and 0 <= s <= MAX_DIM for s in shape[1:])
    ):
        raise ModelFileError(f"{fn}: {where}: malformed input shape {shape!r:.100}.")
    return tuple(shape)


def _load_model(path: str | os.PathLike, custom_objects: dict[str, type] | None) -> Any:
    from .models.sequential import Sequential

    where = repr(os.fspath(path))
    header, arrays = _read(path)
    if header.get("kind") != "model":
        raise ModelFileError(
            f"load_model: {where} holds only weights; build the model and call "
            f"load_weights instead."
        )
    custom = dict(custom_objects or {})
    specs = header.get("layers")
    info = header.get("model")
    saved_optimizer = _pop_optimizer_arrays(arrays)
    if isinstance(info, dict) and info.get("subclassed") is True:
        model = _load_subclassed(info, arrays, where, custom)
        return _finish_load(model, header, arrays, saved_optimizer, where, custom)
    if isinstance(info, dict) and info.get("class_name") == "Model" and "config" in info:
        model = _load_functional(info, arrays, where, custom)
        return _finish_load(model, header, arrays, saved_optimizer, where, custom)
    if not isinstance(specs, list) or not isinstance(info, dict) or len(specs) > MAX_LAYERS:
        raise ModelFileError(f"load_model: {where}: malformed header (layers).")
    shape = _input_shape(info, where, "load_model")
    layers = [_instantiate(s, where, custom, Layer) for s in specs]
    name = info.get("name")
    try:
        model = Sequential(layers, name=name if isinstance(name, str) and name else None)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"load_model: {where}: cannot assemble the layers: {exc}") from None
    try:
        _build_bounded(model, shape, arrays, where, "load_model")
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            f"load_model: {where}: the layers do not fit together: {exc}"
        ) from None
    return _finish_load(model, header, arrays, saved_optimizer, where, custom)


def _model_input_shape(info: Any, where: str, fn: str) -> Any:
    """The recorded input shape: one shape, or a list of shapes for several inputs."""
    shape = info.get("input_shape") if isinstance(info, dict) else None
    if isinstance(shape, list) and shape and all(isinstance(s, list) for s in shape):
        if len(shape) > MAX_NDIM:
            raise ModelFileError(f"{fn}: {where}: malformed input shapes {shape!r:.100}.")
        return [_input_shape({"input_shape": s}, where, fn) for s in shape]
    return _input_shape(info, where, fn)


def _load_subclassed(
    info: dict[str, Any], arrays: dict[str, np.ndarray], where: str, custom: dict[str, type]
) -> Any:
    """Rebuild a subclassed model: its class (registered or in ``custom_objects``) called
    with its stored config, built on the recorded input shape; nothing else runs."""
    from .models.model import Model

    name = info.get("class_name")
    config = info.get("config")
    if not isinstance(name, str) or not name or not isinstance(config, dict):
        raise ModelFileError(f"load_model: {where}: malformed header (subclassed model).")
    cls = resolve(name, custom)
    short = name.rsplit(">", 1)[-1].rsplit(".", 1)[-1]
    if cls is None:
        raise ModelFileError(
            f"load_model: {where} holds a model of class {name!r}, which is not known here. "
            f"Make it known before loading: decorate the class with "
            f"@layernet.saving.register_keras_serializable() and import the module that "
            f"defines it, or pass custom_objects={{{short!r}: {short}}}."
        )
    if not (isinstance(cls, type) and issubclass(cls, Model) and cls._call_layer):
        raise ModelFileError(
            f"load_model: {where} names model class {name!r}, which here is {cls!r:.100}: "
            f"not a subclass of Model with a call() method."
        )
    if not all(isinstance(k, str) and k.isidentifier() for k in config) or not _is_json_value(
        config
    ):
        raise ModelFileError(f"load_model: {where}: malformed config for {name!r}.")
    config = {k: _nested(v, where, custom) for k, v in config.items()}
    try:
        with initializers.allocation_budget(_build_budget(arrays)):
            model = cls.from_config(config)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"load_model: {where}: cannot rebuild {cls.__name__}: {exc}") from None
    if not isinstance(model, cls) or not model.is_subclassed:
        raise ModelFileError(
            f"load_model: {where}: {cls.__name__}.from_config() returned "
            f"{type(model).__name__}, not a {cls.__name__} model."
        )
    shape = _model_input_shape(info, where, "load_model")
    try:
        _build_bounded(model, shape, arrays, where, "load_model")
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            f"load_model: {where}: {cls.__name__} does not build on the recorded input shape: {exc}"
        ) from None
    return model


def _load_functional(
    info: dict[str, Any], arrays: dict[str, np.ndarray], where: str, custom: dict[str, type]
) -> Any:
    """Rebuild a functional model's graph from its config, allocating no more than the file."""
    from .models.model import functional_from_config

    config = info["config"]
    if not _is_json_value(config) or not isinstance(config, dict):
        raise ModelFileError(f"load_model: {where}: malformed model config.")
    try:
        with initializers.allocation_budget(_build_budget(arrays)):
            return functional_from_config(config, custom)
    except initializers.AllocationRefused as exc:
        raise ModelFileError(
            f"load_model: {where}: a layer would allocate more than the weights the file "
            f"declares ({exc})"
        ) from None
    except (TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"load_model: {where}: cannot rebuild the graph: {exc}") from None


def _finish_load(
    model: Any,
    header: dict[str, Any],
    arrays: dict[str, np.ndarray],
    saved_optimizer: dict[str, np.ndarray],
    where: str,
    custom: dict[str, type],
) -> Any:
    """Weights, epochs and compile settings of a rebuilt model."""
    from . import metrics as metrics_mod
    from . import optimizers

    done = header.get("epochs_completed", 0)
    if not isinstance(done, int) or isinstance(done, bool) or done < 0:
        raise ModelFileError(f"load_model: {where}: malformed epochs_completed {done!r:.50}.")
    _assign(model, arrays, where)
    model.epochs_completed = int(done)
    comp = header.get("compile")
    if comp is not None and not isinstance(comp, dict):
        raise ModelFileError(f"load_model: {where}: malformed compile entry {comp!r:.100}.")
    has_state = bool(saved_optimizer) or header.get("optimizer_state") is not None
    if has_state and not (isinstance(comp, dict) and isinstance(comp.get("optimizer"), dict)):
        raise ModelFileError(
            f"load_model: {where}: optimizer state (arrays {sorted(saved_optimizer)!r:.120}) "
            f"without a compile entry naming the optimizer it belongs to."
        )
    if isinstance(comp, dict) and "losses" in comp:
        losses = comp.get("losses")
        if not isinstance(losses, list):
            raise ModelFileError(f"load_model: {where}: malformed losses entry.")
        loss_objs = [
            None if spec is None else _instantiate(spec, where, custom, Loss) for spec in losses
        ]
        opt_spec = comp.get("optimizer")
        try:
            optimizer = (
                optimizers.from_config(
                    cast(Any, opt_spec.get("class_name")), cast(Any, opt_spec.get("config"))
                )
                if isinstance(opt_spec, dict)
                else "sgd"
            )
            model.compile(
                optimizer,
                loss_objs,
                loss_weights=comp.get("loss_weights"),
                metrics=[[metrics_mod.get(n) for n in ms] for ms in comp.get("output_metrics", [])]
                or None,
                weighted_metrics=[
                    [metrics_mod.get(n) for n in ms]
                    for ms in comp.get("output_weighted_metrics", [])
                ]
                or None,
            )
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"load_model: {where}: {exc}") from None
        if isinstance(opt_spec, dict):
            _restore_optimizer(model, header.get("optimizer_state"), saved_optimizer, where)
        return model
    if isinstance(comp, dict):
        loss = _instantiate(comp.get("loss"), where, custom, Loss)
        opt_spec = comp.get("optimizer")
        optimizer: Any = "sgd"  # type: ignore[no-redef]
        if isinstance(opt_spec, dict):
            try:
                optimizer = optimizers.from_config(
                    cast(Any, opt_spec.get("class_name")), cast(Any, opt_spec.get("config"))
                )
            except (TypeError, ValueError) as exc:
                raise ModelFileError(
                    f"load_model: {where}: cannot rebuild the optimizer: {exc}"
                ) from None
        else:
            warnings.warn(
                f"load_model: {where} was saved with a learning rate given as Python code, "
                f"which model files do not store; the model is compiled with SGD() instead. "
                f"Call compile() again to continue training with your own.",
                UserWarning,
                stacklevel=2,
            )
        names = comp.get("metrics", [])
        weighted = comp.get("weighted_metrics", [])
        for entry in (names, weighted):
            if not isinstance(entry, list) or not all(isinstance(n, str) for n in entry):
                raise ModelFileError(f"load_model: {where}: malformed metrics entry.")
        try:
            model.compile(
                optimizer,
                loss,
                metrics=[metrics_mod.get(n) for n in names],
                weighted_metrics=[metrics_mod.get(n) for n in weighted] or None,
            )
        except ValueError as exc:
            raise ModelFileError(f"load_model: {where}: {exc}") from None
        if isinstance(opt_spec, dict):
            _restore_optimizer(model, header.get("optimizer_state"), saved_optimizer, where)
    _restore_generators(model, header.get("random_state"), where)
    return model


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Load weights saved by ``save_weights`` or ``save`` into a model with the same layers.

    The same as ``model.load_weights(path)``. Every parameter's name and shape
    is checked before anything is assigned, and a refused file leaves the model
    exactly as it was: an unbuilt model that was built for the file's input
    shape is unbuilt again, a built one keeps its weights. An unbuilt model is
    built first for the input shape the file records.

    Parameters
    ----------
    model : Sequential
        A model with the same layers (in order, with the same parameter names
        and shapes) as the one saved.
    path : str or os.PathLike
        A file written by :func:`save_weights` or :func:`save_model`.

    Raises
    ------
    ModelFileError
        For a malformed file, or weights whose names or shapes do not match
        the model's, naming the file and the first mismatch.
    RuntimeError
        ``load_weights: model '...' is not built; call build() first.`` when
        the model is unbuilt and the file records no input shape.
    FileNotFoundError
        When there is no file at ``path``.

    Examples
    --------
    See :func:`save_weights`.
    """
    snapshot = _snapshot(model)
    try:
        with _malformed_file(path, "load_weights"):
            _load_weights(model, path)
    except BaseException:
        _restore(snapshot)
        raise


def _snapshot(model: Any) -> list[tuple[Any, dict[str, Any], list[tuple[Any, Any]]]]:
    """The attributes of a model and of every layer in it, with copies of the dicts and
    lists they hold (building replaces some attributes and fills some dicts in place)."""
    objects = [model, *flatten_layers(list(getattr(model, "layers", [])))]
    out = []
    for obj in objects:
        attrs = dict(vars(obj))
        held = [(v, copy.copy(v)) for v in attrs.values() if type(v) in (dict, list)]
        out.append((obj, attrs, held))
    return out


def _restore(snapshot: list[tuple[Any, dict[str, Any], list[tuple[Any, Any]]]]) -> None:
    for obj, attrs, held in snapshot:
        for container, contents in held:
            container.clear()
            if isinstance(container, dict):
                container.update(contents)
            else:
                container.extend(contents)
        current = vars(obj)
        current.clear()
        current.update(attrs)


def _load_weights(model: Any, path: str | os.PathLike) -> None:
    where = repr(os.fspath(path))
    header, arrays = _read(path)
    _pop_optimizer_arrays(arrays)  # a full model file: only its weights are wanted here
    if not model.built:
        info = header.get("model")
        if not isinstance(info, dict) or info.get("input_shape") is None:
            raise RuntimeError(
                f"load_weights: model {model.name!r} is not built; call build() first."
            )
        shape = _model_input_shape(info, where, "load_weights")
        try:
            _build_bounded(model, shape, arrays, where, "load_weights")
        except ValueError as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(
                f"load_weights: {where}: the model does not fit the input shape the file "
                f"records: {exc}"
            ) from None
    _assign(model, arrays, where)
