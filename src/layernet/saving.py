"""Model files: architecture as JSON plus weights, in one ``.npz``, read without running code.

A file is an uncompressed NumPy ``.npz`` archive holding

* ``header``: UTF-8 JSON (as a ``uint8`` array) with the format name and version,
  the layer classes with their constructor arguments, the input shape, the
  compile settings when they can be rebuilt, and the name and shape of every
  weight;
* ``layers.<i>.<param>``: one float array per parameter of layer ``i``;
* ``optimizer.<j>`` (model files): the optimizer's state arrays (momentum
  buffers, moment estimates), named in the header's ``"optimizer_state"``
  together with the step count; with the header's ``"epochs_completed"`` they
  make the file a resumable training state.

Files written before the optimizer state was stored (no ``"optimizer_state"``)
still load, with a fresh optimizer state.

Classes are named so that no user class can collide with layernet's own
(``"layernet>Dense"``; see :mod:`layernet.registry`). Loading never unpickles
(``allow_pickle=False``), instantiates only layernet's own classes, classes
registered with :func:`~layernet.register_serializable` and ones passed
explicitly in ``custom_objects`` (through their ``from_config``), bounds
the header and every member's size, and checks every weight's name and shape,
reporting all mismatches in one error. Writes go to a temporary file in the same
folder, are flushed to disk, then renamed over the target: a failed or
interrupted save leaves any previous file intact.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .layers.base import Layer
from .losses import Loss
from .registry import get_registered_name, resolve

if TYPE_CHECKING:
    from .models import Sequential

FORMAT = "layernet"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
MAX_MEMBER_BYTES = 1 << 31
MAX_MEMBERS = 100_000


class ModelFileError(ValueError):
    """A model or weights file that cannot be loaded: what is wrong, and where."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Write a file through ``write(fileobj)`` so that it appears whole or not at all."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"save: folder {str(folder)!r} does not exist (saving to {str(path)!r})."
        )
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        # (or the replaced file's).
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if os.name == "posix":
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _weights(model: Sequential) -> dict[str, np.ndarray]:
    out = {}
    for i, layer in enumerate(model.layers):
        for k, p in layer.variables().items():
            if not np.isfinite(p).all():
                raise ValueError(
                    f"save: {layer.owner} parameter {k!r} holds NaN or inf; "
                    f"refusing to save it (any previous file is kept)."
                )
            out[f"layers.{i}.{k}"] = p
    return out


def _header(model: Sequential, kind: str, weights: dict[str, np.ndarray]) -> dict[str, Any]:
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
    if model.loss is not None:
        head["compile"] = {
            "loss": {
                "class_name": get_registered_name(type(model.loss)),
                "config": model.loss.get_config(),
            },
            "metrics": [m.name for m in model.metrics],
            "optimizer": _optimizer_config(model.optimizer),
        }
    head["epochs_completed"] = int(getattr(model, "epochs_completed", 0))
    return head


def _optimizer_config(opt: Any) -> dict[str, Any] | None:
    if opt is None or not opt.serializable:
        return None  # a learning rate given as arbitrary Python code is not stored
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def _optimizer_state(model: Sequential) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """The header entry and the arrays of the optimizer's state (None if not stored)."""
    opt = model.optimizer
    if opt is None or model.loss is None or _optimizer_config(opt) is None:
        return None, {}
    slots, arrays = [], {}
    for key, named in opt.state.items():
        for slot, value in named.items():
            member = f"optimizer.{len(slots)}"
            slots.append({"param": key, "slot": slot, "array": member})
            arrays[member] = value
    return {"iterations": int(opt.iterations), "slots": slots}, arrays


def _write(model: Sequential, path: str | os.PathLike, kind: str) -> None:
    from .distributed import is_root

    if not model.built:
        raise RuntimeError(
            f"save: model {model.name!r} is not built yet; call build() or fit() first."
        )
    if not is_root(model):
        return  # data-parallel training: rank 0 writes, the other ranks hold the same model
    weights = _weights(model)
    head = _header(model, kind, weights)
    extra: dict[str, np.ndarray] = {}
    if kind == "model":
        head["optimizer_state"], extra = _optimizer_state(model)
    header = json.dumps(head).encode("utf-8")
    arrays = {"header": np.frombuffer(header, dtype=np.uint8), **weights, **extra}
    atomic_write(path, lambda f: np.savez(f, **arrays))


def save_model(model: Sequential, path: str | os.PathLike) -> None:
    """Write architecture, compile settings and weights to one file (atomically)."""
    _write(model, path, "model")


def save_weights(model: Sequential, path: str | os.PathLike) -> None:
    """Write only the weights (and their names and shapes) to one file (atomically)."""
    _write(model, path, "weights")


# -------------------------------------------------------------------- reading
def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    path = os.fspath(path)
    where = f"{path!r}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no file at {where}.")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise ModelFileError(
                    f"load: {where} has {len(infos)} members, above the limit of {MAX_MEMBERS}."
                )
            for info in infos:
                limit = MAX_HEADER_BYTES if info.filename == "header.npy" else MAX_MEMBER_BYTES
                if info.file_size > limit:
                    raise ModelFileError(
                        f"load: member {info.filename!r} of {where} is "
                        f"{info.file_size} bytes, above the limit of {limit}."
                    )
        with np.load(path, allow_pickle=False) as npz:
            if "header" not in npz.files:
                raise ModelFileError(f"load: {where} is not a layernet file (no header).")
            arrays = {k: npz[k] for k in npz.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelFileError(
            f"load: {where} is not a readable layernet file (truncated or corrupted: {exc})."
        ) from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ModelFileError(
                f"load: {where} holds a pickled object array; refusing to load "
                f"it (layernet files never contain pickles)."
            ) from None
        raise ModelFileError(f"load: {where} is not a valid layernet file ({exc}).") from None
    raw = arrays.pop("header")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"load: {where} has a malformed header.")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"load: {where} has a header that is not valid JSON ({exc})."
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(
            f"load: {where} is not a layernet file (format "
            f"{header.get('format') if isinstance(header, dict) else None!r})."
        )
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"load: {where} has format version "
            f"{header.get('format_version')!r}; this layernet reads version "
            f"{FORMAT_VERSION}."
        )
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
        return cls.from_config(config)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"load: {where}: cannot rebuild {name}: {exc}") from None


def layer_from_spec(spec: Any, custom_objects: dict[str, type] | None = None) -> Layer:
    """A layer from ``{"class_name": ..., "config": ...}`` with the checks of :func:`load_model`.

    Only layernet's own layer classes, or those in ``custom_objects``, are built;
    nested specs (the inner layers of containers) are built the same way.
    """
    return _instantiate(spec, "layer config", dict(custom_objects or {}), Layer)


def _renamed_weights(model: Sequential, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
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


def _restore_optimizer(
    model: Sequential, entry: Any, arrays: dict[str, np.ndarray], where: str
) -> None:
    """Put the saved step count and state arrays into the model's (fresh) optimizer."""
    if entry is None:
        if arrays:
            raise ModelFileError(f"load_model: {where}: optimizer arrays without their header.")
        return
    bad = ModelFileError(f"load_model: {where}: malformed optimizer state.")
    if not isinstance(entry, dict) or not isinstance(entry.get("slots"), list):
        raise bad
    iterations = entry.get("iterations")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise bad
    params = {
        f"{i}.{layer.name}.{k}": p
        for i, layer in enumerate(model.layers)
        if layer.trainable
        for k, p in layer.params.items()
    }
    state: dict[str, dict[str, np.ndarray]] = {}
    for spec in entry["slots"]:
        if not (
            isinstance(spec, dict)
            and all(isinstance(spec.get(k), str) for k in ("param", "slot", "array"))
        ):
            raise bad
        p, a = params.get(spec["param"]), arrays.pop(spec["array"], None)
        if p is None or a is None or a.shape != p.shape or a.dtype.kind != "f":
            raise ModelFileError(
                f"load_model: {where}: optimizer state {spec['slot']!r} of "
                f"{spec['param']!r} does not match the model's parameters."
            )
        if not np.isfinite(a).all():
            raise ModelFileError(
                f"load_model: {where}: optimizer state {spec['slot']!r} of "
                f"{spec['param']!r} holds NaN or inf."
            )
        state.setdefault(spec["param"], {})[spec["slot"]] = a.astype(p.dtype)
    if arrays:
        raise ModelFileError(
            f"load_model: {where}: unexpected optimizer arrays {sorted(arrays)!r:.200}."
        )
    model.optimizer.iterations = iterations
    model.optimizer.state = state


def _assign(model: Sequential, arrays: dict[str, np.ndarray], where: str) -> None:
    arrays = _renamed_weights(model, arrays)
    expected = {
        f"layers.{i}.{k}": p
        for i, layer in enumerate(model.layers)
        for k, p in layer.variables().items()
    }
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


def load_model(
    path: str | os.PathLike, custom_objects: dict[str, type] | None = None
) -> Sequential:
    """Rebuild a model saved by :meth:`Sequential.save`, weights and compile settings included.

    Parameters
    ----------
    path : str or os.PathLike
    custom_objects : dict of str to type, optional
        Your own Layer and Loss subclasses, by class name (or by the name the file
        stores). layernet's own classes and those registered with
        :func:`~layernet.register_serializable` load without it; nothing else is
        ever instantiated. A class here never replaces one of layernet's own
        (``"layernet>Dense"`` always means :class:`~layernet.Dense`).

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
        For truncated, tampered, pickled, unknown-layer or mismatched files.
    """
    from . import metrics as metrics_mod
    from . import optimizers
    from .models import Sequential

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
    if not isinstance(specs, list) or not isinstance(info, dict):
        raise ModelFileError(f"load_model: {where}: malformed header (layers).")
    layers = [_instantiate(s, where, custom, Layer) for s in specs]
    name = info.get("name")
    model = Sequential(layers, name=name if isinstance(name, str) and name else None)
    shape = info.get("input_shape")
    if not (
        isinstance(shape, list)
        and shape
        and all(
            s is None or (isinstance(s, int) and not isinstance(s, bool) and s >= 0) for s in shape
        )
    ):
        raise ModelFileError(f"load_model: {where}: malformed input shape {shape!r:.100}.")
    try:
        model.build(tuple(shape))
    except ValueError as exc:
        raise ModelFileError(
            f"load_model: {where}: the layers do not fit together: {exc}"
        ) from None
    saved_optimizer = _pop_optimizer_arrays(arrays)
    _assign(model, arrays, where)
    done = header.get("epochs_completed", 0)
    if not isinstance(done, int) or isinstance(done, bool) or done < 0:
        raise ModelFileError(f"load_model: {where}: malformed epochs_completed {done!r:.50}.")
    model.epochs_completed = done
    comp = header.get("compile")
    if isinstance(comp, dict):
        loss = _instantiate(comp.get("loss"), where, custom, Loss)
        opt_spec = comp.get("optimizer")
        optimizer: Any = "sgd"
        if isinstance(opt_spec, dict):
            try:
                optimizer = optimizers.from_config(
                    opt_spec.get("class_name"), opt_spec.get("config")
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
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelFileError(f"load_model: {where}: malformed metrics entry.")
        try:
            model.compile(optimizer, loss, [metrics_mod.get(n) for n in names])
        except ValueError as exc:
            raise ModelFileError(f"load_model: {where}: {exc}") from None
        if isinstance(opt_spec, dict):
            _restore_optimizer(model, header.get("optimizer_state"), saved_optimizer, where)
    return model


def load_weights(model: Sequential, path: str | os.PathLike) -> None:
    """Load weights saved by ``save_weights`` or ``save`` into a model with the same layers."""
    where = repr(os.fspath(path))
    header, arrays = _read(path)
    shapes = header.get("weights")
    if not isinstance(shapes, dict):
        raise ModelFileError(f"load_weights: {where}: malformed header (weights).")
    if not model.built:
        shape = (header.get("model") or {}).get("input_shape")
        if not isinstance(shape, list):
            raise RuntimeError(
                f"load_weights: model {model.name!r} is not built; call build() first."
            )
        model.build(tuple(shape))
    _pop_optimizer_arrays(arrays)  # a full model file: only its weights are wanted here
    _assign(model, arrays, where)
