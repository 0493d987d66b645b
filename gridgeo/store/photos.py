"""Report photos as files, content-addressed by SHA-256, beside the store (never in its rows).

Why files: a county's reports bring thousands of phone photos a month; in
the GeoPackage they would bloat the one file everyone copies, and in
PostgreSQL every backup. The row keeps the hash, type and size; the bytes
live in ``DIR/ab/abcdef…``. The same photo sent twice is one file. A photo
is written to a temporary file in the same directory, flushed to disk and
then renamed into place, so a reader never sees half a photo and a crash
leaves at most a stray temporary file.

The type is what the bytes are (their magic numbers), never what the client
says: only JPEG, PNG and WebP are taken, up to :data:`MAX_PHOTO_BYTES`.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gridgeo.errors import NotFoundError, OutputError, PayloadTooLargeError, UnsupportedMediaTypeError

#: the largest photo taken (a 12-megapixel phone JPEG is 3-5 MB)
MAX_PHOTO_BYTES = 10 * 1024 * 1024
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Photo:
    """A stored photo: its hash (its name), media type and size in bytes."""

    sha256: str
    type: str
    size: int


def sniff(data: bytes) -> str | None:
    """The media type the bytes are (JPEG, PNG, WebP), else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_photo(data: bytes, *, where: str = "photo", limit: int = MAX_PHOTO_BYTES) -> str:
    """The photo's media type, or a 413 (too large) / 415 (not JPEG, PNG or WebP) naming ``where``."""
    if len(data) > limit:
        raise PayloadTooLargeError(f"{where}: {len(data)} bytes; a photo is at most {limit // 2**20} MiB")
    if not data:
        raise UnsupportedMediaTypeError(f"{where}: empty; send a JPEG, PNG or WebP image")
    mtype = sniff(data)
    if mtype is None:
        raise UnsupportedMediaTypeError(f"{where}: not a JPEG, PNG or WebP image (its first bytes are "
                                        f"{data[:8].hex()})")
    return mtype


class PhotoDir:
    """The directory photos are kept in (made at the first photo)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if not _HEX.fullmatch(sha256):
            raise NotFoundError(f"no photo {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, *, where: str = "photo") -> Photo:
        """Check and keep ``data``; its :class:`Photo` (the file is written once per distinct photo)."""
        mtype = check_photo(data, where=where)
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path(sha)
        if dest.is_file() and dest.stat().st_size == len(data):
            return Photo(sha, mtype, len(data))
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise OutputError(f"photos directory {self.root}: cannot write a photo ({exc.strerror})") from None
        return Photo(sha, mtype, len(data))

    def read(self, sha256: str) -> bytes:
        p = self.path(sha256)
        try:
            return p.read_bytes()
        except OSError:
            raise NotFoundError(f"photo {sha256[:12]}… is recorded but its file is missing") from None
