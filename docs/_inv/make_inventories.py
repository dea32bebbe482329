"""Write the small intersphinx inventories that the documentation build reads offline.

The build never downloads ``objects.inv`` from the projects' sites: these
files list only the Python, NumPy and PyTorch names layernet's pages refer to,
with the addresses they have on those sites. Add a name here (and rerun
``python docs/_inv/make_inventories.py``) when a page starts referring to a new
one; a nitpicky build reports any that is missing.
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

BUILTIN_FUNCTIONS = ["bool", "float", "int", "object", "type", "slice", "callable"]
BUILTIN_TYPES = ["str", "list", "dict", "tuple", "set", "frozenset", "bytes"]
EXCEPTIONS = [
    "Exception",
    "ValueError",
    "TypeError",
    "RuntimeError",
    "OSError",
    "KeyError",
    "IndexError",
    "AttributeError",
    "FileNotFoundError",
    "FileExistsError",
    "PermissionError",
    "ImportError",
    "ModuleNotFoundError",
    "NotImplementedError",
    "ZeroDivisionError",
    "FloatingPointError",
    "ArithmeticError",
    "StopIteration",
    "KeyboardInterrupt",
]
TYPING = ["Any", "Callable", "ClassVar", "Literal", "NamedTuple", "Optional", "Union", "Self"]
TYPING_DATA = ["Any", "Literal", "Optional", "Union", "ClassVar", "Self", "TypeAlias"]
ABC = ["Callable", "Sequence", "Iterable", "Iterator", "Mapping", "MutableMapping", "Collection"]

PYTHON: list[tuple[str, str, str, str]] = [
    *[(n, "py:class", f"library/functions.html#{n}", "-") for n in BUILTIN_FUNCTIONS],
    *[(n, "py:function", f"library/functions.html#{n}", "-") for n in BUILTIN_FUNCTIONS],
    *[
        (n, "py:function", f"library/functions.html#{n}", "-")
        for n in ("print", "len", "isinstance", "open", "repr", "round", "sum", "max", "min")
    ],
    *[(n, "py:class", f"library/stdtypes.html#{n}", "-") for n in BUILTIN_TYPES],
    *[(n, "py:exception", f"library/exceptions.html#{n}", "-") for n in EXCEPTIONS],
    *[(n, "py:data", f"library/constants.html#{n}", "-") for n in ("None", "True", "False")],
    *[(f"typing.{n}", "py:class", f"library/typing.html#typing.{n}", "-") for n in TYPING],
    *[(f"typing.{n}", "py:data", f"library/typing.html#typing.{n}", "-") for n in TYPING_DATA],
    *[
        (
            f"collections.abc.{n}",
            "py:class",
            f"library/collections.abc.html#collections.abc.{n}",
            "-",
        )
        for n in ABC
    ],
    ("os.PathLike", "py:class", "library/os.html#os.PathLike", "-"),
    ("os.replace", "py:function", "library/os.html#os.replace", "-"),
    ("os.fsync", "py:function", "library/os.html#os.fsync", "-"),
    ("os.umask", "py:function", "library/os.html#os.umask", "-"),
    ("os.chmod", "py:function", "library/os.html#os.chmod", "-"),
    ("pathlib.Path", "py:class", "library/pathlib.html#pathlib.Path", "-"),
    ("tempfile.mkstemp", "py:function", "library/tempfile.html#tempfile.mkstemp", "-"),
    ("json.dumps", "py:function", "library/json.html#json.dumps", "-"),
    ("json.loads", "py:function", "library/json.html#json.loads", "-"),
    ("math.inf", "py:data", "library/math.html#math.inf", "-"),
    ("math.isfinite", "py:function", "library/math.html#math.isfinite", "-"),
    ("io.IOBase", "py:class", "library/io.html#io.IOBase", "-"),
    (
        "contextlib.AbstractContextManager",
        "py:class",
        "library/contextlib.html#contextlib.AbstractContextManager",
        "-",
    ),
    ("types.MappingProxyType", "py:class", "library/types.html#types.MappingProxyType", "-"),
    ("pickle", "py:module", "library/pickle.html#module-pickle", "-"),
    ("json", "py:module", "library/json.html#module-json", "-"),
    ("typing", "py:module", "library/typing.html#module-typing", "-"),
    ("path-like object", "std:term", "glossary.html#term-path-like-object", "-"),
    ("callable", "std:term", "glossary.html#term-callable", "-"),
    ("iterable", "std:term", "glossary.html#term-iterable", "-"),
    ("sequence", "std:term", "glossary.html#term-sequence", "-"),
    ("mapping", "std:term", "glossary.html#term-mapping", "-"),
]

GEN = "reference/generated/numpy.{0}.html#numpy.{0}"
NUMPY: list[tuple[str, str, str, str]] = [
    ("numpy", "py:module", "reference/index.html#module-numpy", "-"),
    ("numpy.ndarray", "py:class", GEN.format("ndarray"), "-"),
    # type hints written with the usual alias (``np.ndarray``) where autodoc keeps the text
    ("np.ndarray", "py:class", GEN.format("ndarray"), "-"),
    ("np.dtype", "py:class", GEN.format("dtype"), "-"),
    (
        "np.random.Generator",
        "py:class",
        "reference/random/generator.html#numpy.random.Generator",
        "-",
    ),
    ("numpy.dtype", "py:class", GEN.format("dtype"), "-"),
    *[
        (f"numpy.ndarray.{m}", "py:method", GEN.format(f"ndarray.{m}"), "-")
        for m in ("ravel", "reshape", "astype", "copy", "sum")
    ],
    *[
        (f"numpy.ndarray.{a}", "py:attribute", GEN.format(f"ndarray.{a}"), "-")
        for a in ("shape", "size", "dtype", "ndim")
    ],
    *[
        (f"numpy.{t}", role, f"reference/arrays.scalars.html#numpy.{t}", "-")
        for t in ("float32", "float64", "int64", "bool", "integer", "floating", "number")
        for role in ("py:class", "py:attribute")
    ],
    *[
        (f"numpy.{f}", "py:function", GEN.format(f), "-")
        for f in (
            "array",
            "asarray",
            "zeros",
            "ones",
            "ones_like",
            "zeros_like",
            "empty",
            "ravel",
            "reshape",
            "einsum",
            "matmul",
            "dot",
            "kron",
            "eye",
            "pad",
            "save",
            "savez",
            "savez_compressed",
            "load",
            "allclose",
            "isfinite",
            "argmax",
            "maximum",
            "exp",
            "log",
            "tanh",
            "seterr",
            "errstate",
        )
    ],
    (
        "numpy.lib.stride_tricks.sliding_window_view",
        "py:function",
        GEN.format("lib.stride_tricks.sliding_window_view"),
        "-",
    ),
    ("numpy.lib.npyio.NpzFile", "py:class", GEN.format("lib.npyio.NpzFile"), "-"),
    *[
        (name, "py:class", "reference/random/generator.html#numpy.random.Generator", "-")
        for name in ("numpy.random.Generator", "numpy.random._generator.Generator")
    ],
    *[
        (
            f"numpy.random.Generator.{m}",
            "py:method",
            f"reference/random/generated/numpy.random.Generator.{m}.html"
            f"#numpy.random.Generator.{m}",
            "-",
        )
        for m in ("normal", "uniform", "random", "permutation", "shuffle", "integers")
    ],
    (
        "numpy.random.RandomState",
        "py:class",
        "reference/random/legacy.html#numpy.random.RandomState",
        "-",
    ),
    (
        "numpy.random.default_rng",
        "py:function",
        "reference/random/generator.html#numpy.random.default_rng",
        "-",
    ),
    (
        "numpy.random.SeedSequence",
        "py:class",
        "reference/random/bit_generators/generated/numpy.random.SeedSequence.html"
        "#numpy.random.SeedSequence",
        "-",
    ),
    *[
        (f"numpy.typing.{n}", role, f"reference/typing.html#numpy.typing.{n}", "-")
        for n in ("ArrayLike", "DTypeLike", "NDArray")
        for role in ("py:data", "py:class")
    ],
    ("array_like", "std:term", "glossary.html#term-array_like", "-"),
    (
        "broadcasting",
        "std:label",
        "user/basics.broadcasting.html#basics-broadcasting",
        "Broadcasting",
    ),
]

TORCH_GEN = "generated/torch.{0}.html#torch.{0}"
TORCH: list[tuple[str, str, str, str]] = [
    (f"torch.{n}", "py:class", TORCH_GEN.format(n), "-")
    for n in (
        "nn.GRU",
        "nn.Linear",
        "nn.Conv1d",
        "nn.Conv2d",
        "nn.ConvTranspose1d",
        "nn.ConvTranspose2d",
        "nn.MaxPool1d",
        "nn.MaxPool2d",
        "nn.AvgPool1d",
        "nn.AvgPool2d",
        "nn.BatchNorm1d",
        "nn.BatchNorm2d",
        "nn.Dropout",
        "nn.CrossEntropyLoss",
        "nn.MSELoss",
        "optim.SGD",
        "optim.Adam",
    )
]


def write(path: Path, project: str, version: str, entries: list[tuple[str, str, str, str]]) -> None:
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(f"{n} {role} 1 {uri} {disp}\n" for n, role, uri, disp in sorted(set(entries)))
    path.write_bytes(header.encode() + zlib.compress(body.encode()))


if __name__ == "__main__":
    write(HERE / "python.inv", "Python", "3.13", PYTHON)
    write(HERE / "numpy.inv", "NumPy", "2.3", NUMPY)
    write(HERE / "torch.inv", "PyTorch", "2.13", TORCH)
    print(f"wrote {len(PYTHON)} Python, {len(NUMPY)} NumPy and {len(TORCH)} PyTorch names")
