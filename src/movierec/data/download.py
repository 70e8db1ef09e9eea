"""Download, verify and unpack MovieLens releases.

A fetch streams the zip into ``<root>/<name>.zip.part`` (resuming a partial file with a ``Range``
request), checks its md5, and unpacks it into a temporary folder that is renamed to ``<root>/<name>`` only
when complete, so a half-written dataset is never visible.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Literal

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from movierec import paths
from movierec.atomic import atomic_directory
from movierec.data.datasets import GROUPLENS_BASE_URL, Release, get_release
from movierec.errors import DownloadError

MIRROR_ENV = "MOVIEREC_MIRROR"
EMBEDDED_RELEASE = "ml-latest-small"
CHUNK_SIZE = 1 << 20
TIMEOUT = httpx.Timeout(30.0, connect=15.0)

_MD5_PATTERN = re.compile(r"\b([0-9a-fA-F]{32})\b")

ReleaseStatus = Literal["embedded", "downloaded", "downloadable"]


def dataset_path(name: str, dest_root: Path | None = None) -> Path:
    """The folder a fetched release lives in: ``<dest_root>/<name>``."""
    get_release(name)
    return (dest_root if dest_root is not None else paths.datasets_dir()) / name


def is_downloaded(name: str, dest_root: Path | None = None) -> bool:
    """Whether ``name`` has been fetched and unpacked under ``dest_root``."""
    release = get_release(name)
    return (dataset_path(name, dest_root) / release.ratings_file).is_file()


def release_status(name: str, dest_root: Path | None = None) -> ReleaseStatus:
    """``embedded`` (shipped with movierec), ``downloaded`` (fetched already) or ``downloadable``."""
    release = get_release(name)
    if name == EMBEDDED_RELEASE and (paths.EMBEDDED_DIR / name / release.ratings_file).is_file():
        return "embedded"
    return "downloaded" if is_downloaded(name, dest_root) else "downloadable"


def fetch(
    name: str,
    *,
    base_url: str | None = None,
    dest_root: Path | None = None,
    progress: bool = True,
    client: httpx.Client | None = None,
    force: bool = False,
) -> Path:
    """Download, verify and unpack release ``name``; return its folder (at once if already there).

    ``base_url`` (else ``$MOVIEREC_MIRROR``, else GroupLens) is the folder URL of the zip and its ``.md5``.
    ``force`` fetches again even when the release is already unpacked.
    """
    release = get_release(name)
    root = dest_root if dest_root is not None else paths.datasets_dir()
    target = root / name
    if not force and is_downloaded(name, root):
        return target
    root.mkdir(parents=True, exist_ok=True)
    zip_url, md5_url = _urls(release, base_url)
    part = root / f"{name}.zip.part"
    with _client(client) as http:
        expected = release.md5 or _published_md5(http, release, md5_url)
        _download(http, release, zip_url, part, progress)
    _verify(release, part, expected)
    try:
        _unpack(release, part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _urls(release: Release, base_url: str | None) -> tuple[str, str]:
    """The zip and md5 URLs, under ``base_url`` or ``$MOVIEREC_MIRROR`` when either is set."""
    base = base_url or os.environ.get(MIRROR_ENV) or GROUPLENS_BASE_URL
    if base.rstrip("/") == GROUPLENS_BASE_URL:
        return release.url, release.md5_url
    zip_url = f"{base.rstrip('/')}/{release.zip_name}"
    return zip_url, zip_url + ".md5"


@contextlib.contextmanager
def _client(client: httpx.Client | None) -> Iterator[httpx.Client]:
    """The caller's client, or a fresh one closed afterwards."""
    if client is not None:
        yield client
        return
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as fresh:
        yield fresh


def _published_md5(http: httpx.Client, release: Release, md5_url: str) -> str:
    """The md5 GroupLens publishes beside the zip (``<md5>  <file>`` or ``MD5 (<file>) = <md5>``)."""
    try:
        response = http.get(md5_url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"Could not download the checksum of {release.name} from {md5_url}: {_reason(exc)}."
        ) from exc
    match = _MD5_PATTERN.search(response.text)
    if match is None:
        raise DownloadError(f"The checksum file {md5_url} of {release.name} holds no 32-digit md5.")
    return match.group(1).lower()


def _download(http: httpx.Client, release: Release, url: str, part: Path, progress: bool) -> None:
    """Stream ``url`` into ``part``, resuming from its current size when it already exists."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity"}  # byte ranges must count the bytes we store
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with http.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and offset:
                return  # the partial file is already complete; the md5 check decides
            response.raise_for_status()
            if response.status_code == 206 and not _resumes_at(response, offset):
                part.unlink()  # a range we did not ask for: start again from the first byte
            else:
                resumed = response.status_code == 206
                start = offset if resumed else 0
                total = _total_size(response, start)
                _write_body(response, part, "ab" if resumed else "wb", start, total, release, progress)
                return
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"Could not download {release.name} from {url}: {_reason(exc)}; run the fetch again to resume."
        ) from exc
    _download(http, release, url, part, progress)


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    """Whether a 206 answer's ``Content-Range`` starts where the partial file ends."""
    content_range = response.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {offset}-")


def _total_size(response: httpx.Response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _write_body(
    response: httpx.Response,
    part: Path,
    mode: str,
    offset: int,
    total: int | None,
    release: Release,
    progress: bool,
) -> None:
    """Append (or write) the response body to ``part`` under a progress bar."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with (
        Progress(*columns, console=Console(stderr=True), disable=not progress, transient=True) as bar,
        open(part, mode) as out,
    ):
        task = bar.add_task(f"Downloading {release.name}", total=total, completed=offset)
        for chunk in response.iter_raw():  # unbuffered, so a cut-off keeps every byte received
            out.write(chunk)
            bar.advance(task, len(chunk))


def _reason(exc: httpx.HTTPError) -> str:
    """A short reason for an HTTP failure, without a trailing full stop."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the server answered {exc.response.status_code} {exc.response.reason_phrase}"
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text.splitlines()[0]


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(release: Release, part: Path, expected: str) -> None:
    """Check the md5 of the download; delete it and raise a ``DownloadError`` if it does not match."""
    actual = _md5_of(part)
    if actual != expected.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"The download of {release.name} has md5 {actual} but {expected} was expected, "
            "so it was deleted; run the fetch again."
        )


def _unpack(release: Release, archive: Path, target: Path) -> None:
    """Extract the zip's top folder into ``target`` atomically, refusing members that escape it."""
    try:
        with zipfile.ZipFile(archive) as zf, atomic_directory(target) as tmp:
            members = _members(release, zf)
            for info, relative in members:
                _extract_member(zf, info, tmp / relative)
            if not (tmp / release.ratings_file).is_file():
                raise DownloadError(
                    f"The zip of {release.name} has no {release.folder}/{release.ratings_file}; "
                    "it is not that MovieLens release."
                )
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"The download of {release.name} is not a readable zip file: {exc}.") from exc


def _members(release: Release, zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The zip's members under the release's top folder, with that folder stripped from their paths."""
    members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    for info in zf.infolist():
        path = _safe_member_path(release, info.filename)
        if info.is_dir() or len(path.parts) < 2 or path.parts[0] != release.folder:
            continue  # folders, stray top-level files and __MACOSX metadata
        members.append((info, PurePosixPath(*path.parts[1:])))
    return members


def _safe_member_path(release: Release, filename: str) -> PurePosixPath:
    """The member's relative path; a ``DownloadError`` if it is absolute or climbs out with ``..``."""
    path = PurePosixPath(filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts or ":" in path.parts[0]:
        raise DownloadError(
            f"The zip of {release.name} holds the unsafe path {filename!r}; "
            "only relative paths inside the release folder are allowed."
        )
    return path


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK_SIZE)
