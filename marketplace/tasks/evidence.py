"""Evidence files: checked by content, EXIF location and time read out, stored by
content hash with a stripped copy for showing. See docs/tasks.md ("Evidence")."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from marketplace.clock import SHANGHAI
from marketplace.errors import Invalid

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES = 20
MAX_PIXELS = 60_000_000  # larger than any phone camera; refuses decompression bombs

IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "application/pdf": "pdf",
}
GPS_IFD = 0x8825
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
OFFSET_TIME_ORIGINAL = 36881
DATETIME = 306


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed the checks, with what a reviewer needs to know about it."""

    filename: str
    data: bytes
    sha256: str
    media_type: str
    width: int | None = None
    height: int | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    taken_at: datetime | None = None
    clean: bytes | None = None  # the copy to show: EXIF removed (images only)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.media_type]


class EvidenceStore(Protocol):
    """Where evidence bytes live (the media directory; S3-compatible storage at scale)."""

    def put(self, name: str, data: bytes) -> None: ...

    def read(self, name: str) -> bytes: ...


class LocalEvidenceStore:
    """Files under ``root/evidence/ab/<sha256>.<ext>``, written once, atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "evidence"

    def path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError("bad evidence name")
        return self.root / name[:2] / name

    def put(self, name: str, data: bytes) -> None:
        target = self.path(name)
        if target.exists():
            return  # same hash, same bytes: a retried or repeated upload
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".up-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()


def stored_name(sha256: str, media_type: str, *, clean: bool) -> str:
    """The original keeps its hash as its name; the shown copy sits beside it."""
    return f"{sha256}{'.clean' if clean else ''}.{EXTENSIONS[media_type]}"


def sniff(data: bytes) -> str | None:
    """The media type the bytes themselves say, whatever the file is called."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:5] == b"%PDF-":
        return "application/pdf"
    return None


def check(filename: str, data: bytes) -> CheckedFile:
    """Refuse anything that is not a whole JPEG, PNG, WebP or PDF of at most 10 MB."""
    label = filename or "文件"
    if len(data) == 0:
        raise Invalid("files", f"{label} 是空文件")
    if len(data) > MAX_FILE_BYTES:
        raise Invalid("files", f"{label} 超过 10 MB，请压缩后再传")
    media_type = sniff(data)
    if media_type is None:
        raise Invalid("files", f"{label} 不是图片（JPEG、PNG、WebP）或 PDF 文件")
    digest = hashlib.sha256(data).hexdigest()
    if media_type == "application/pdf":
        _check_pdf(label, data)
        return CheckedFile(filename[:120], data, digest, media_type)
    return _check_image(label, filename, data, digest, media_type)


def _check_pdf(label: str, data: bytes) -> None:
    if not data[5:8].replace(b".", b"").isdigit() or b"%%EOF" not in data[-2048:]:
        raise Invalid("files", f"{label} 不是完整的 PDF 文件（可能未传完）")


def _check_image(
    label: str, filename: str, data: bytes, digest: str, media_type: str
) -> CheckedFile:
    bad = Invalid("files", f"{label} 图片已损坏或不完整（可能未传完），请重新拍摄或上传")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if IMAGE_FORMATS.get(probe.format or "") != media_type:
                    raise bad
                if probe.width * probe.height > MAX_PIXELS:
                    raise Invalid("files", f"{label} 像素过多，请缩小后再传")
                probe.verify()  # structure and checksums
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decodes every byte: a truncated file fails here
                exif = image.getexif()
                lat, lon = _gps(exif)
                taken = _taken_at(exif)
                clean = _strip(image, media_type)
                width, height = image.size
    except Invalid:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise bad from exc
    return CheckedFile(
        filename[:120], data, digest, media_type, width, height, lat, lon, taken, clean
    )


def _strip(image: Image.Image, media_type: str) -> bytes:
    """A copy without EXIF (no location, no time, no camera), turned upright first."""
    upright = ImageOps.exif_transpose(image)
    out = io.BytesIO()
    if media_type == "image/jpeg":
        if upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        upright.save(out, format="JPEG", quality=88)
    elif media_type == "image/png":
        upright.save(out, format="PNG")
    else:
        upright.save(out, format="WEBP", quality=85)
    return out.getvalue()


def _ratio(value: Any) -> float:
    return float(value)


def _gps(exif: Image.Exif) -> tuple[float | None, float | None]:
    try:
        gps = exif.get_ifd(GPS_IFD)
    except (KeyError, ValueError, TypeError):
        return None, None
    try:
        lat = _dms(gps[2], gps.get(1, "N"), "S")
        lon = _dms(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None, None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    return round(lat, 6), round(lon, 6)


def _dms(parts: Any, ref: Any, negative: str) -> float:
    degrees, minutes, seconds = (_ratio(p) for p in parts)
    value = degrees + minutes / 60 + seconds / 3600
    ref_text = ref.decode() if isinstance(ref, bytes) else str(ref)
    return -value if ref_text.strip().upper() == negative else value


def _taken_at(exif: Image.Exif) -> datetime | None:
    """The camera's own clock: local time, Asia/Shanghai unless the photo says its offset."""
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except (KeyError, ValueError, TypeError):
        sub = {}
    raw = sub.get(DATETIME_ORIGINAL) or exif.get(DATETIME)
    if not raw:
        return None
    try:
        moment = datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = sub.get(OFFSET_TIME_ORIGINAL)
    tz: Any = SHANGHAI
    if offset:
        try:
            sign = -1 if str(offset)[0] == "-" else 1
            hours, minutes = str(offset)[1:].split(":")
            tz = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        except (ValueError, IndexError):
            tz = SHANGHAI
    return moment.replace(tzinfo=tz).astimezone(UTC)


def check_all(files: list[tuple[str, bytes]]) -> list[CheckedFile]:
    if len(files) > MAX_FILES:
        raise Invalid("files", f"一次最多上传 {MAX_FILES} 个文件")
    return [check(name, data) for name, data in files]


def save(store: EvidenceStore, checked: CheckedFile) -> None:
    store.put(stored_name(checked.sha256, checked.media_type, clean=False), checked.data)
    if checked.clean is not None:
        store.put(stored_name(checked.sha256, checked.media_type, clean=True), checked.clean)


def shown_copy(store: EvidenceStore, sha256: str, media_type: str) -> bytes:
    """What anyone is shown: the stripped copy of an image, the PDF as uploaded."""
    return store.read(stored_name(sha256, media_type, clean=media_type != "application/pdf"))
