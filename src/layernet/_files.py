r"""Downloading into Keras's cache folder: :func:`get_file` with Keras 3's behaviour.

Files land where Keras puts them (``$KERAS_HOME`` or ``~/.keras``, then
``cache_subdir``), so a machine on which Keras already fetched a file needs no
download. A download goes to a temporary file in the cache folder, is checked
against its hash and only then renamed onto its final name: an interrupted or
corrupted download leaves the cache as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import IO, Any

__all__ = ["DownloadError", "get_file", "keras_home"]

#: Seconds to wait for a server before giving up (an offline machine fails at once).
TIMEOUT = 30.0
_CHUNK = 1 << 16


class DownloadError(OSError):
    """A file could not be fetched: the message names the file, the URL and the folder."""


def _urlopen(url: str, timeout: float) -> IO[bytes]:
    """Open ``url`` for reading (replace this function to change how files are fetched)."""
    return urllib.request.urlopen(url, timeout=timeout)


#: The function that opens a URL, ``opener(url, timeout) -> binary file object`` (with
#: an optional ``headers`` mapping for ``Content-Length``). Tests and offline setups
#: replace it (``layernet._files.opener = ...``).
opener: Callable[[str, float], IO[bytes]] = _urlopen


def keras_home() -> str:
    """Keras's cache root: ``$KERAS_HOME`` if set, else ``~/.keras`` (read at every call).

    Examples
    --------
    >>> import os
    >>> import layernet as ln
    >>> os.path.basename(ln.utils.keras_home()) in {".keras", os.path.basename(
    ...     os.environ.get("KERAS_HOME", ".keras"))}
    True
    """
    env = os.environ.get("KERAS_HOME")
    if env:
        return env
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def _hasher(algorithm: str, file_hash: str | None) -> Any:
    if algorithm == "sha256" or (
        algorithm == "auto" and file_hash is not None and len(file_hash) == 64
    ):
        return hashlib.sha256()
    return hashlib.md5()  # Keras's legacy hashes


def hash_file(path: str, algorithm: str = "sha256", file_hash: str | None = None) -> str:
    """The hex digest of a file (``"sha256"``, ``"md5"``, or ``"auto"`` from ``file_hash``)."""
    h = _hasher(algorithm, file_hash)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return str(h.hexdigest())


def validate_file(path: str, file_hash: str, algorithm: str = "auto") -> bool:
    """Whether the file's hash equals ``file_hash`` (sha256 for 64 hex digits, else md5)."""
    return hash_file(path, algorithm, file_hash) == str(file_hash)


def _progress(total: int | None, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=False)


def _fetch(origin: str, target: str, file_hash: str | None, algorithm: str, where: str) -> None:
    """Download ``origin`` to ``target`` through a temporary file in the same folder."""
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".part")
    try:
        try:
            with os.fdopen(fd, "wb") as out, opener(origin, TIMEOUT) as src:
                headers = getattr(src, "headers", None)
                length = headers.get("Content-Length") if headers is not None else None
                total = int(length) if length and str(length).isdigit() else None
                with _progress(total, os.path.basename(target)) as bar:
                    for chunk in iter(lambda: src.read(_CHUNK), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
            reason = getattr(e, "reason", None) or e
            if isinstance(e, urllib.error.HTTPError):
                reason = f"HTTP {e.code} {e.reason}"
            raise DownloadError(
                f"{where}: could not download {os.path.basename(target)!r} from {origin} "
                f"({reason}). If this machine has no network access, copy the file "
                f"there yourself: put it at {target} (in the folder {folder})."
            ) from e
        if file_hash is not None and not validate_file(tmp, file_hash, algorithm):
            raise ValueError(
                f"{where}: the file downloaded from {origin} is incomplete or corrupted: its "
                f"hash is not {file_hash}. The cache ({target}) was left as it was."
            )
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _inside(base: str, name: str) -> bool:
    path = os.path.realpath(os.path.join(base, name))
    return os.path.commonpath([path, base]) == base


def _safe_tar_members(archive: tarfile.TarFile, base: str) -> Iterator[tarfile.TarInfo]:
    for info in archive:
        ok = _inside(base, info.name)
        if ok and info.issym():
            dest = os.path.dirname(os.path.realpath(os.path.join(base, info.name)))
            ok = _inside(base, os.path.join(dest, info.linkname))
        elif ok and info.islnk():
            ok = _inside(base, info.linkname)
        elif ok and not (info.isfile() or info.isdir()):
            ok = False  # devices, FIFOs
        if ok:
            yield info
        else:
            warnings.warn(
                f"get_file: skipping the archive member {info.name!r}: it would be written "
                f"(or point) outside {base}.",
                stacklevel=4,
            )


def _extract(archive_path: str, dest: str, archive_format: Any, where: str) -> bool:
    """Extract into a temporary folder beside ``dest``, then move it to ``dest``."""
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else archive_format
    formats = [formats] if isinstance(formats, str) else list(formats)
    for fmt in formats:
        if fmt not in ("tar", "zip"):
            raise ValueError(
                f"{where}: invalid value for `archive_format`: expected 'auto', 'tar', 'zip', "
                f"a list of those, or None, received {archive_format!r}."
            )
    parent = os.path.dirname(dest)
    for fmt in formats:
        if fmt == "tar" and tarfile.is_tarfile(archive_path):
            opened: Any = tarfile.open(archive_path)
        elif fmt == "zip" and zipfile.is_zipfile(archive_path):
            opened = zipfile.ZipFile(archive_path)
        else:
            continue
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(dest)}.", suffix=".part")
        base = os.path.realpath(tmp)
        try:
            with opened as archive:
                if isinstance(archive, zipfile.ZipFile):
                    members = []
                    for info in archive.infolist():
                        if _inside(base, info.filename):
                            members.append(info)
                        else:
                            warnings.warn(
                                f"get_file: skipping the archive member {info.filename!r}: "
                                f"it would be written outside {base}.",
                                stacklevel=3,
                            )
                    archive.extractall(tmp, members=members)
                else:
                    kwargs: dict[str, Any] = {}
                    if hasattr(tarfile, "data_filter"):
                        kwargs["filter"] = "data"
                    archive.extractall(tmp, members=_safe_tar_members(archive, base), **kwargs)
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            elif os.path.exists(dest):
                os.remove(dest)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp)
        return True
    return False


def get_file(
    fname: str | os.PathLike | None = None,
    origin: str | None = None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: str | list[str] | None = "auto",
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
) -> str:
    r"""Download a file into Keras's cache unless it is there already (``keras.utils.get_file``).

    The file ``fname`` (by default the last part of ``origin``'s path) is looked for
    in ``<cache_dir>/<cache_subdir>``, with ``cache_dir`` defaulting to
    ``$KERAS_HOME`` or ``~/.keras`` (``/tmp/.keras`` when that is not writable): the
    same place Keras uses, so a file Keras fetched is found without a download.

    Parameters
    ----------
    fname : str or path-like, optional
        Name of the file in the cache (no folder separators). With ``extract``, a name
        without a dot is the extraction folder and the archive is kept as
        ``<fname>_archive``; a name with a dot is the archive's name and the folder is
        ``<stem>_extracted`` (Keras 3's layout).
    origin : str
        URL of the file (``https://``, ``http://`` or ``file://``).
    untar : bool, default False
        Deprecated form of ``extract=True, archive_format="tar"``.
    md5_hash : str, optional
        Deprecated form of ``file_hash`` with ``hash_algorithm="md5"``.
    file_hash : str, optional
        Expected hex digest. A cached file that does not match is downloaded again;
        a downloaded file that does not match is refused.
    cache_subdir : str, default "datasets"
        Folder under ``cache_dir`` (an absolute path is used as is).
    hash_algorithm : {"auto", "sha256", "md5"}, default "auto"
        ``"auto"``: sha256 for a 64-digit hash, md5 otherwise.
    extract : bool, default False
        Extract a tar or zip archive and return the folder.
    archive_format : {"auto", "tar", "zip"}, list of them, or None, default "auto"
        Formats tried when extracting (``"auto"`` is tar then zip).
    cache_dir : str or path-like, optional
        Cache root; default :func:`keras_home`.
    force_download : bool, default False
        Download even when a valid file is cached.

    Returns
    -------
    str
        The path of the file, or of the extraction folder with ``extract``.

    Raises
    ------
    DownloadError
        When the file is not cached and cannot be downloaded (an :class:`OSError`):
        ``get_file: could not download 'mnist.npz' from https://... (reason).
        If this machine has no network access, copy the file there yourself: put it at
        <path> (in the folder <folder>).``
    ValueError
        ``origin`` missing, ``fname`` with a folder separator, an unknown
        ``hash_algorithm`` or ``archive_format``, or a downloaded file whose hash
        differs from ``file_hash`` (the cache keeps its previous content).

    Notes
    -----
    Downloading writes ``.<name>.<random>.part`` in the cache folder, checks its hash
    and renames it onto the final name with :func:`os.replace`; any failure (network,
    hash, ``KeyboardInterrupt``) removes the partial file. Extraction goes to a
    temporary folder that replaces the extraction folder only once complete. Archive
    members that would land outside the folder (``../``, absolute paths, links
    pointing out, devices) are skipped with a warning, as in Keras. A non-empty
    extraction folder whose archive is absent (copied there by hand) is used as it
    is, with no download.

    Examples
    --------
    >>> import os, tempfile, pathlib
    >>> import layernet as ln
    >>> src = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> _ = src.write_text("hi")
    >>> cache = tempfile.mkdtemp()
    >>> path = ln.utils.get_file(origin=src.as_uri(), cache_dir=cache)
    >>> os.path.relpath(path, cache), open(path).read()
    ('datasets/hello.txt', 'hi')
    """
    return _get_file(
        "get_file", fname, origin, untar, md5_hash, file_hash, cache_subdir, hash_algorithm,
        extract, archive_format, cache_dir, force_download,
    )  # fmt: skip


def _get_file(
    where: str,
    fname: str | os.PathLike | None,
    origin: str | None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: str | list[str] | None = "auto",
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
) -> str:
    """:func:`get_file`, with ``where`` naming the caller in messages."""
    if origin is None or not isinstance(origin, str) or not origin:
        raise ValueError(
            f"{where}: invalid value for `origin`: expected the URL of the file to download, "
            f"received {origin!r}."
        )
    if hash_algorithm not in ("auto", "sha256", "md5"):
        raise ValueError(
            f"{where}: invalid value for `hash_algorithm`: expected 'auto', 'sha256' or 'md5', "
            f"received {hash_algorithm!r}."
        )
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    base = os.path.expanduser(os.fspath(cache_dir) if cache_dir is not None else keras_home())
    if not os.access(base, os.W_OK) and os.path.exists(base):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)

    name = os.fspath(fname) if fname is not None else ""
    provided = bool(name)
    if not name:
        name = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not name:
            raise ValueError(
                f"{where}: cannot tell the file name from `origin`={origin!r}; pass `fname`."
            )
    elif os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(
            f"{where}: invalid value for `fname`: expected a file name without folders (use "
            f"`cache_dir` and `cache_subdir` for the folder), received {name!r}."
        )
    if extract or untar:
        if provided and "." in name:
            target = os.path.join(datadir, name)
            folder = os.path.join(datadir, f"{name[: name.find('.')]}_extracted")
        else:
            folder = os.path.join(datadir, name)
            target = os.path.join(datadir, f"{name}_archive")
    else:
        target = os.path.join(datadir, name)

    if (
        (extract or untar)
        and not force_download
        and not os.path.exists(target)
        and os.path.isdir(folder)
        and os.listdir(folder)
    ):
        return folder  # extracted earlier (or copied there by hand): no archive needed
    download = force_download or not os.path.exists(target)
    if (
        not download
        and file_hash is not None
        and not validate_file(target, file_hash, hash_algorithm)
    ):
        print(
            f"A local file was found ({target}), but its {hash_algorithm} hash does not match "
            f"{file_hash}: downloading it again."
        )
        download = True
    if download:
        _fetch(origin, target, file_hash, hash_algorithm, where)

    if extract or untar:
        fmt = "tar" if untar else archive_format
        if download or not os.path.isdir(folder) or not os.listdir(folder):
            if not _extract(target, folder, fmt, where):
                warnings.warn(f"{where}: could not extract the archive {target}.", stacklevel=2)
        return folder
    return target
