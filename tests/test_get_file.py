"""``layernet.utils.get_file``: Keras's cache layout, hashes, atomic downloads, safe extraction.

No test touches the internet: files are served from ``file://`` URLs and a loopback
HTTP server, and the opener is replaced where a failure is simulated.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import time
import urllib.error
import zipfile
from pathlib import Path

import pytest

import layernet as ln
from layernet import _files


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Only file:// and loopback URLs may be opened."""
    real = _files.opener

    def guarded(url, timeout):
        if not (url.startswith("file://") or url.startswith("http://127.0.0.1")):
            raise urllib.error.URLError("network disabled in tests")
        return real(url, timeout)

    monkeypatch.setattr(_files, "opener", guarded)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def served(tmp_path: Path, name: str, data: bytes) -> str:
    src = tmp_path / "origin" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(data)
    return src.as_uri()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_downloads_into_keras_home_and_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    url = served(tmp_path, "data.bin", b"abc" * 1000)
    path = ln.utils.get_file("data.bin", url, file_hash=sha256(b"abc" * 1000))
    assert path == str(tmp_path / "home" / "datasets" / "data.bin")
    assert Path(path).read_bytes() == b"abc" * 1000
    calls = []
    monkeypatch.setattr(_files, "opener", lambda *a: calls.append(a))
    assert ln.utils.get_file("data.bin", url, file_hash=sha256(b"abc" * 1000)) == path
    assert calls == []  # cached and valid: no download
    assert leftovers(tmp_path / "home" / "datasets") == []


def test_name_from_origin_md5_and_cache_subdir(tmp_path):
    url = served(tmp_path, "w.json", b"{}")
    md5 = hashlib.md5(b"{}").hexdigest()
    path = ln.utils.get_file(origin=url, md5_hash=md5, cache_dir=tmp_path / "c", cache_subdir="x")
    assert path == str(tmp_path / "c" / "x" / "w.json")
    path2 = ln.utils.get_file(
        origin=url, file_hash=md5, hash_algorithm="md5", cache_dir=tmp_path / "c"
    )
    assert Path(path2).read_bytes() == b"{}"


def test_stale_cached_file_is_downloaded_again(tmp_path, capsys):
    url = served(tmp_path, "f.npz", b"new")
    cache = tmp_path / "c" / "datasets"
    cache.mkdir(parents=True)
    (cache / "f.npz").write_bytes(b"old, truncated")
    path = ln.utils.get_file("f.npz", url, file_hash=sha256(b"new"), cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == b"new"
    assert "hash does not match" in capsys.readouterr().out


def test_force_download(tmp_path):
    url = served(tmp_path, "f", b"fresh")
    cache = tmp_path / "c" / "datasets"
    cache.mkdir(parents=True)
    (cache / "f").write_bytes(b"stale")
    assert Path(ln.utils.get_file("f", url, cache_dir=tmp_path / "c")).read_bytes() == b"stale"
    path = ln.utils.get_file("f", url, cache_dir=tmp_path / "c", force_download=True)
    assert Path(path).read_bytes() == b"fresh"


def test_corrupted_download_is_refused_and_the_cache_kept(tmp_path):
    url = served(tmp_path, "f", b"tampered")
    cache = tmp_path / "c" / "datasets"
    cache.mkdir(parents=True)
    (cache / "f").write_bytes(b"previous")
    with pytest.raises(ValueError, match=r"incomplete or corrupted.*left as it was"):
        ln.utils.get_file("f", url, file_hash=sha256(b"good"), cache_dir=tmp_path / "c")
    assert (cache / "f").read_bytes() == b"previous"
    assert leftovers(cache) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, ConnectionResetError])
def test_interrupted_download_leaves_the_cache_as_it_was(tmp_path, monkeypatch, error):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise error()
            return super().read(4)

    monkeypatch.setattr(_files, "opener", lambda url, timeout: Broken(b"0123456789"))
    with pytest.raises((KeyboardInterrupt, ln.utils.DownloadError)):
        ln.utils.get_file("f.bin", "https://example.invalid/f.bin", cache_dir=tmp_path)
    assert list((tmp_path / "datasets").iterdir()) == []


def test_offline_error_names_file_url_and_folder_and_is_fast(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(_files, "opener", offline)
    url = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
    start = time.perf_counter()
    with pytest.raises(ln.utils.DownloadError) as info:
        ln.utils.get_file("mnist.npz", url, cache_dir=tmp_path)
    assert time.perf_counter() - start < 1
    msg = str(info.value)
    assert "'mnist.npz'" in msg and url in msg and str(tmp_path / "datasets") in msg
    assert isinstance(info.value, OSError)
    assert list((tmp_path / "datasets").iterdir()) == []


def test_loopback_http_server(tmp_path):
    (tmp_path / "www").mkdir()
    data = os.urandom(200_000)
    (tmp_path / "www" / "big.bin").write_bytes(data)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path / "www"), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/big.bin"
        path = ln.utils.get_file(origin=url, file_hash=sha256(data), cache_dir=tmp_path / "c")
        assert Path(path).read_bytes() == data
        with pytest.raises(ln.utils.DownloadError, match=r"404"):
            ln.utils.get_file(origin=url + ".missing", cache_dir=tmp_path / "c")
    finally:
        server.shutdown()
        server.server_close()


def make_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


def test_extract_tar_with_keras_layout(tmp_path):
    make_tar(tmp_path / "a.tar.gz", {"inner/x.txt": b"x", "inner/y.txt": b"y"})
    url = (tmp_path / "a.tar.gz").as_uri()
    folder = ln.utils.get_file("stuff", url, extract=True, cache_dir=tmp_path / "c")
    assert folder == str(tmp_path / "c" / "datasets" / "stuff")
    assert (Path(folder) / "inner" / "y.txt").read_bytes() == b"y"
    assert (tmp_path / "c" / "datasets" / "stuff_archive").is_file()
    # A name with a dot names the archive; the folder is "<stem>_extracted".
    folder = ln.utils.get_file("a.tar.gz", url, untar=True, cache_dir=tmp_path / "c")
    assert folder == str(tmp_path / "c" / "datasets" / "a_extracted")
    assert (Path(folder) / "inner" / "x.txt").read_bytes() == b"x"


def test_extract_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.writestr("d/one.txt", "1")
    folder = ln.utils.get_file(
        origin=(tmp_path / "z.zip").as_uri(), extract=True, cache_dir=tmp_path / "c"
    )
    assert (Path(folder) / "d" / "one.txt").read_text() == "1"


def test_extraction_refuses_members_outside_the_folder(tmp_path):
    make_tar(
        tmp_path / "evil.tar.gz",
        {"ok.txt": b"ok", "../escaped.txt": b"bad", "/abs.txt": b"bad"},
        links={"link": "../../outside", "inner_link": "ok.txt"},
    )
    with pytest.warns(UserWarning, match="skipping the archive member"):
        folder = ln.utils.get_file(
            "evil", (tmp_path / "evil.tar.gz").as_uri(), extract=True, cache_dir=tmp_path / "c"
        )
    assert sorted(os.listdir(folder)) == ["inner_link", "ok.txt"]
    assert not (tmp_path / "c" / "datasets" / "escaped.txt").exists()
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("good.txt", "1")
        z.writestr("../../zipescape.txt", "bad")
    with pytest.warns(UserWarning, match="zipescape"):
        folder = ln.utils.get_file(
            "zevil", (tmp_path / "evil.zip").as_uri(), extract=True, cache_dir=tmp_path / "c"
        )
    assert os.listdir(folder) == ["good.txt"]
    assert not (tmp_path / "zipescape.txt").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"`origin`"):
        ln.utils.get_file("x", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"`fname`: expected a file name without folders"):
        ln.utils.get_file("a/b", "file:///x", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"`hash_algorithm`"):
        ln.utils.get_file("a", "file:///x", hash_algorithm="sha1", cache_dir=tmp_path)


def test_same_paths_as_keras(tmp_path, monkeypatch):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from keras.src.utils import file_utils

    make_tar(tmp_path / "a.tar.gz", {"inner/x.txt": b"x"})
    url = (tmp_path / "a.tar.gz").as_uri()
    monkeypatch.setattr(file_utils, "urlretrieve", lambda *a, **k: pytest.fail("no download"))
    for kwargs in (
        {"fname": "stuff", "extract": True},
        {"fname": "a.tar.gz", "extract": True},
        {"fname": "plain.tgz"},
    ):
        ours = ln.utils.get_file(origin=url, cache_dir=tmp_path / "c", **kwargs)
        theirs = keras.utils.get_file(origin=url, cache_dir=str(tmp_path / "c"), **kwargs)
        assert ours == theirs
