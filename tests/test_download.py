"""Fetching releases from a real HTTP server on 127.0.0.1 that serves zips the tests build themselves."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from movierec.data import datasets, download
from movierec.data.datasets import RELEASES, get_release
from movierec.data.download import dataset_path, fetch, is_downloaded, release_status
from movierec.errors import DownloadError, MovieRecError

RATINGS_CSV = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,3.0,964982224\n"
MOVIES_CSV = "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,Heat (1995),Action\n"


class MovieLensServer:
    """Files by URL path, a log of requests, and transfers that can be cut off after a number of bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_after: dict[str, int] = {}  # path -> bytes to send before hanging up, once
        self.ignore_range = False
        self.lock = threading.Lock()

    def url(self, httpd: ThreadingHTTPServer) -> str:
        host, port = httpd.server_address[:2]
        return f"http://{host!s}:{port}/movielens"

    def ranges_seen(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.requests if p == path]


def _handler(state: MovieLensServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            with state.lock:
                state.requests.append((self.path, rng))
                body = state.files.get(self.path)
                cut = state.cut_after.pop(self.path, None)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if rng and not state.ignore_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body) > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            payload = body[start:] if cut is None else body[start : start + cut]
            self.wfile.write(payload)
            self.wfile.flush()
            if cut is not None:
                self.connection.shutdown(socket.SHUT_RDWR)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MovieLensServer, str]]:
    state = MovieLensServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    base = state.url(httpd)
    monkeypatch.setenv(download.MIRROR_ENV, base)  # belt and braces: never reach GroupLens
    try:
        yield state, base
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_zip(folder: str, extra: dict[str, bytes] | None = None, size: int = 0) -> bytes:
    """A tiny release zip: ``<folder>/ratings.csv``, ``movies.csv`` and ``size`` bytes of padding."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{folder}/", b"")
        zf.writestr(f"{folder}/ratings.csv", RATINGS_CSV)
        zf.writestr(f"{folder}/movies.csv", MOVIES_CSV)
        if size:
            zf.writestr(f"{folder}/README.txt", bytes(range(256)) * (size // 256))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def set_md5(monkeypatch: pytest.MonkeyPatch, name: str, value: str | None) -> None:
    monkeypatch.setitem(RELEASES, name, dataclasses.replace(RELEASES[name], md5=value))


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_registry_has_every_release() -> None:
    assert list(RELEASES) == [
        "ml-latest-small",
        "ml-100k",
        "ml-1m",
        "ml-10m",
        "ml-20m",
        "ml-25m",
        "ml-32m",
    ]
    ml10 = get_release("ml-10m")
    assert ml10.folder == "ml-10M100K" and ml10.format == "dat" and ml10.ratings_file == "ratings.dat"
    assert ml10.url == "https://files.grouplens.org/datasets/movielens/ml-10m.zip"
    assert ml10.md5_url == ml10.url + ".md5"
    assert get_release("ml-100k").ratings_file == "u.data"
    assert get_release("ml-32m").md5 is None


def test_unknown_release_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(MovieRecError, match="Unknown release 'ml-5m'") as info:
        fetch("ml-5m", dest_root=tmp_path, progress=False)
    for name in RELEASES:
        assert name in str(info.value)
    with pytest.raises(MovieRecError, match="valid names are: ml-latest-small, ml-100k"):
        datasets.get_release("ml-5m")


def test_fetch_with_known_md5(
    server: tuple[MovieLensServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    data = make_zip("ml-25m")
    state.files["/movielens/ml-25m.zip"] = data
    set_md5(monkeypatch, "ml-25m", md5(data))

    folder = fetch("ml-25m", base_url=base, dest_root=tmp_path, progress=False)

    assert folder == tmp_path / "ml-25m" == dataset_path("ml-25m", tmp_path)
    assert (folder / "ratings.csv").read_text() == RATINGS_CSV
    assert (folder / "movies.csv").read_text() == MOVIES_CSV
    assert leftovers(tmp_path) == ["ml-25m"]  # no .part, no temporary folders
    assert is_downloaded("ml-25m", tmp_path)
    assert release_status("ml-25m", tmp_path) == "downloaded"
    assert [p for p, _ in state.requests] == ["/movielens/ml-25m.zip"]  # known md5: no .md5 request

    again = fetch("ml-25m", base_url=base, dest_root=tmp_path, progress=False)
    assert again == folder and len(state.requests) == 1  # already there: nothing fetched


def test_fetch_with_published_md5_file_and_mirror_env(server: tuple[MovieLensServer, str], tmp_path: Path) -> None:
    state, _ = server
    data = make_zip("ml-32m", extra={"__MACOSX/._ratings.csv": b"junk"})
    state.files["/movielens/ml-32m.zip"] = data
    state.files["/movielens/ml-32m.zip.md5"] = f"{md5(data)}  ml-32m.zip\n".encode()

    folder = fetch("ml-32m", dest_root=tmp_path, progress=True)  # base URL from $MOVIEREC_MIRROR

    assert sorted(p.name for p in folder.iterdir()) == ["movies.csv", "ratings.csv"]
    assert leftovers(tmp_path) == ["ml-32m"]
    assert "/movielens/ml-32m.zip.md5" in [p for p, _ in state.requests]


def test_md5_mismatch_leaves_nothing(
    server: tuple[MovieLensServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    data = make_zip("ml-1m")
    state.files["/movielens/ml-1m.zip"] = data
    wrong = "0" * 32
    set_md5(monkeypatch, "ml-1m", wrong)

    with pytest.raises(DownloadError) as info:
        fetch("ml-1m", base_url=base, dest_root=tmp_path, progress=False)

    message = str(info.value)
    assert "ml-1m" in message and wrong in message and md5(data) in message
    assert leftovers(tmp_path) == []
    assert not is_downloaded("ml-1m", tmp_path)


def test_cut_off_transfer_resumes_with_range(
    server: tuple[MovieLensServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    data = make_zip("ml-20m", size=200_000)
    path = "/movielens/ml-20m.zip"
    state.files[path] = data
    state.cut_after[path] = 50_000
    set_md5(monkeypatch, "ml-20m", md5(data))

    with pytest.raises(DownloadError, match=r"ml-20m.*resume"):
        fetch("ml-20m", base_url=base, dest_root=tmp_path, progress=False)
    part = tmp_path / "ml-20m.zip.part"
    assert part.stat().st_size == 50_000
    assert not (tmp_path / "ml-20m").exists()

    folder = fetch("ml-20m", base_url=base, dest_root=tmp_path, progress=False)

    assert state.ranges_seen(path) == [None, "bytes=50000-"]
    assert (folder / "ratings.csv").read_text() == RATINGS_CSV
    assert (folder / "README.txt").stat().st_size == 200_000 // 256 * 256
    assert leftovers(tmp_path) == ["ml-20m"]


def test_server_ignoring_range_restarts_from_scratch(
    server: tuple[MovieLensServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    data = make_zip("ml-20m", size=20_000)
    state.files["/movielens/ml-20m.zip"] = data
    state.ignore_range = True
    set_md5(monkeypatch, "ml-20m", md5(data))
    (tmp_path / "ml-20m.zip.part").write_bytes(b"stale bytes from another file")

    folder = fetch("ml-20m", base_url=base, dest_root=tmp_path, progress=False)

    assert state.ranges_seen("/movielens/ml-20m.zip") == ["bytes=29-"]
    assert (folder / "ratings.csv").read_text() == RATINGS_CSV
    assert leftovers(tmp_path) == ["ml-20m"]


@pytest.mark.parametrize("evil", ["ml-25m/../../evil.txt", "/tmp/evil.txt", "ml-25m/..\\..\\evil.txt"])
def test_zip_slip_is_refused(
    server: tuple[MovieLensServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evil: str
) -> None:
    state, base = server
    root = tmp_path / "datasets"
    data = make_zip("ml-25m", extra={evil: b"pwned"})
    state.files["/movielens/ml-25m.zip"] = data
    set_md5(monkeypatch, "ml-25m", md5(data))

    with pytest.raises(DownloadError, match="unsafe path"):
        fetch("ml-25m", base_url=base, dest_root=root, progress=False)

    assert leftovers(root) == []
    assert not list(tmp_path.rglob("evil.txt"))
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"pwned"


def test_zip_without_the_release_folder_is_refused(
    server: tuple[MovieLensServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    data = make_zip("something-else")
    state.files["/movielens/ml-25m.zip"] = data
    set_md5(monkeypatch, "ml-25m", md5(data))

    with pytest.raises(DownloadError, match=r"has no ml-25m/ratings\.csv"):
        fetch("ml-25m", base_url=base, dest_root=tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_http_errors_become_download_errors(server: tuple[MovieLensServer, str], tmp_path: Path) -> None:
    _, base = server
    with pytest.raises(DownloadError, match=r"checksum of ml-32m .* 404"):
        fetch("ml-32m", base_url=base, dest_root=tmp_path, progress=False)

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="Could not download"):
        fetch("ml-25m", base_url=f"http://127.0.0.1:{port}", dest_root=tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_release_status(tmp_path: Path) -> None:
    assert release_status("ml-latest-small", tmp_path) == "embedded"
    assert release_status("ml-1m", tmp_path) == "downloadable"
    with pytest.raises(MovieRecError, match="valid names"):
        release_status("nope")


def test_complete_part_file_is_used_as_is(
    server: tuple[MovieLensServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    data = make_zip("ml-25m")
    state.files["/movielens/ml-25m.zip"] = data
    set_md5(monkeypatch, "ml-25m", md5(data))
    (tmp_path / "ml-25m.zip.part").write_bytes(data)  # killed after the last byte, before unpacking

    folder = fetch("ml-25m", base_url=base, dest_root=tmp_path, progress=False)

    assert state.ranges_seen("/movielens/ml-25m.zip") == [f"bytes={len(data)}-"]  # answered 416
    assert (folder / "ratings.csv").read_text() == RATINGS_CSV
    assert leftovers(tmp_path) == ["ml-25m"]
