r"""Names of layer and loss classes in model files, chosen so that they cannot collide.

A model file names each layer's class by a *registered name*:

* layernet's own classes are ``"layernet>Dense"``, ``"layernet>Conv2D"``, ...;
  they are registered when layernet defines them, and no user class can take
  such a name, so a user class that happens to be called ``Dense`` never
  changes how a file holding layernet's ``Dense`` loads;
* a user class decorated with :func:`register_serializable` is
  ``"<package>><name>"`` (Keras' convention), e.g. ``"my_pkg>Smooth"``; it loads
  by that name without ``custom_objects``;
* any other user class is written as ``"<module>.<qualified name>"`` and loads
  only when passed in ``custom_objects``, by that name or by its class name.

Files from the first format (bare class names such as ``"Dense"``) still load:
a bare name means layernet's own class of that name unless ``custom_objects``
maps it to another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["get_registered_name", "register_serializable"]

#: The package name of layernet's own classes (refused for user registrations).
BUILTIN_PACKAGE = "layernet"

T = TypeVar("T", bound=type)

# registered name ("package>Name") -> class; built-ins and user registrations
_BY_NAME: dict[str, type] = {}
# class -> registered name
_BY_CLASS: dict[type, str] = {}

#: Keras's global custom objects (``layernet.utils.get_custom_objects()``): loading
#: finds the classes here without ``custom_objects=``.
GLOBAL_CUSTOM_OBJECTS: dict[str, Any] = {}
#: The dicts of the open ``layernet.utils.custom_object_scope`` blocks, innermost last.
SCOPED_CUSTOM_OBJECTS: list[dict[str, Any]] = []


def _with_global(custom_objects: Mapping[str, Any] | None) -> dict[str, Any]:
    """``custom_objects`` over the scoped and global custom objects (given ones win)."""
    merged = dict(GLOBAL_CUSTOM_OBJECTS)
    for scope in SCOPED_CUSTOM_OBJECTS:
        merged.update(scope)
    merged.update(custom_objects or {})
    return merged


def registered_object(name: str) -> Any:
    """The user class or function registered under ``name`` (``"package>Name"`` or, when
    only one has it, the bare ``Name``), or ``None``; never one of layernet's own."""
    if name in _BY_NAME and not name.startswith(f"{BUILTIN_PACKAGE}>"):
        return _BY_NAME[name]
    matches = [
        obj
        for key, obj in _BY_NAME.items()
        if not key.startswith(f"{BUILTIN_PACKAGE}>") and _short(key) == name
    ]
    return matches[0] if len(matches) == 1 else None


def _register(cls: type, key: str) -> None:
    _BY_NAME[key] = cls
    _BY_CLASS[cls] = key


def register_builtin(cls: type) -> None:
    """Register one of layernet's own public classes as ``"layernet>Name"`` (internal use)."""
    if cls.__module__.split(".")[0] == BUILTIN_PACKAGE and not cls.__name__.startswith("_"):
        _register(cls, f"{BUILTIN_PACKAGE}>{cls.__name__}")


def builtin_classes(base: type) -> dict[str, type]:
    """layernet's own registered subclasses of ``base``, by class name.

    Examples
    --------
    >>> import layernet as ln
    >>> from layernet.registry import builtin_classes
    >>> builtin_classes(ln.Layer)["Dense"] is ln.Dense
    True
    """
    prefix = f"{BUILTIN_PACKAGE}>"
    return {
        key[len(prefix) :]: cls
        for key, cls in _BY_NAME.items()
        if key.startswith(prefix) and isinstance(cls, type) and issubclass(cls, base)
    }


def register_builtin_function(fn: Callable[..., Any], name: str) -> None:
    """Register one of layernet's own functions (an op) as ``"layernet>name"`` (internal use)."""
    _register(fn, f"{BUILTIN_PACKAGE}>{name}")  # type: ignore[arg-type]


def resolve_function(name: str, custom_objects: Mapping[str, Any] | None = None) -> Any:
    """The function a stored name stands for (``custom_objects`` first, then the scoped and
    global custom objects), or ``None``."""
    custom = _with_global(custom_objects)
    if name in custom:
        return custom[name]
    fn = _BY_NAME.get(name)
    if fn is not None and not isinstance(fn, type):
        return fn
    short = _short(name)
    return custom.get(short)


def register_serializable(package: str = "Custom", name: str | None = None) -> Callable[[T], T]:
    r"""Decorator: save and load a layer or loss class under ``"<package>><name>"``.

    A registered class loads from model files without ``custom_objects``. A
    function can be registered too (for :class:`~layernet.layers.Lambda`):
    model files then refer to it by that name, never by its code.
    Registering the same name again for a class of the same module and name
    (a cell run twice in a notebook) replaces the old one; a different class
    under a name already taken is refused.

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
        When the decorated object is not a Layer or Loss subclass or a function.

    Examples
    --------
    >>> import layernet as ln
    >>> @ln.register_serializable(package="my_pkg")
    ... class Smooth(ln.Tanh):
    ...     pass
    >>> ln.get_registered_name(Smooth), ln.get_registered_name(ln.Dense)
    ('my_pkg>Smooth', 'layernet>Dense')
    """
    for arg, value in (("package", package), ("name", name)):
        if value is None and arg == "name":
            continue
        if not isinstance(value, str) or not value or ">" in value:
            raise ValueError(
                f"register_serializable: invalid value for `{arg}`: expected a non-empty str "
                f"without '>', received {value!r}."
            )
    if package == BUILTIN_PACKAGE:
        raise ValueError(
            f"register_serializable: the package {BUILTIN_PACKAGE!r} is reserved for "
            f"layernet's own classes; choose a package name of your own."
        )

    def decorate(cls: T) -> T:
        from .layers.base import Layer
        from .losses import Loss

        is_function = callable(cls) and not isinstance(cls, type)
        if not (is_function or (isinstance(cls, type) and issubclass(cls, Layer | Loss))):
            raise TypeError(
                f"register_serializable: expected a Layer or Loss subclass or a function, "
                f"received {cls!r}."
            )
        key = f"{package}>{name or cls.__name__}"
        old = _BY_NAME.get(key)
        if old is not None and old is not cls:
            if (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(
                    f"register_serializable: {key!r} is already registered for "
                    f"{old.__module__}.{old.__qualname__}; choose another package or name."
                )
            _BY_CLASS.pop(old, None)
        _register(cls, key)
        return cls

    return decorate


def get_registered_name(cls: type) -> str:
    """The name a model file uses for ``cls``.

    ``"layernet>Name"`` for layernet's classes, ``"<package>><name>"`` for classes
    registered with :func:`register_serializable`, ``"<module>.<qualified name>"``
    for any other class (loadable only through ``custom_objects``).

    Parameters
    ----------
    cls : type
        A layer or loss class.

    Returns
    -------
    str
        The name stored in model files for instances of ``cls``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.get_registered_name(ln.Conv2D)
    'layernet>Conv2D'
    """
    key = _BY_CLASS.get(cls)
    return key if key is not None else f"{cls.__module__}.{cls.__qualname__}"


def _short(name: str) -> str:
    """The class name at the end of a stored name (after the last '>' or '.')."""
    return name.rsplit(">", 1)[-1].rsplit(".", 1)[-1]


def resolve(name: str, custom_objects: Mapping[str, Any] | None = None) -> type | None:
    """The class a model file's ``name`` stands for, or ``None`` when there is none.

    Order: ``custom_objects`` (over those of open ``custom_object_scope`` blocks and
    ``get_custom_objects()``) by the exact stored name; layernet's classes by
    ``"layernet>Name"``; registered user classes; ``custom_objects`` by class name
    (never for a ``"layernet>"`` name); finally a bare name from the first format
    means layernet's own class of that name.
    """
    custom = _with_global(custom_objects)
    if name in custom:
        return custom[name]
    if name in _BY_NAME:
        return _BY_NAME[name]
    builtin = name.startswith(f"{BUILTIN_PACKAGE}>")
    if not builtin:
        short = _short(name)
        if short in custom:
            return custom[short]
        matches = [c for c in custom.values() if isinstance(c, type) and c.__name__ == short]
        if len(matches) == 1:
            return matches[0]
    if ">" not in name and "." not in name:  # the first format's bare class names
        return _BY_NAME.get(f"{BUILTIN_PACKAGE}>{name}")
    return None
