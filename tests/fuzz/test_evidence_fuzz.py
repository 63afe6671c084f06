"""Task evidence uploads on hostile bytes: arbitrary data, truncated or damaged
photos, polyglots (an image's magic bytes in front of a PDF, a zip, HTML). The check
accepts a file or refuses it with ``Invalid`` on ``files``; nothing else escapes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from marketplace.errors import Invalid
from marketplace.tasks import evidence
from tests.fuzz.inputs import FUZZ, damaged, image_bytes, polyglot

JPEG = image_bytes("JPEG", exif=True)
PNG = image_bytes("PNG")
WEBP = image_bytes("WEBP")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
HEADS = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"%PDF-1.7\n"]
BODIES = [JPEG, PNG, WEBP, PDF, b"PK\x03\x04" + b"\x00" * 40, b"<html><script>x</script></html>"]


def _check(name: str, data: bytes) -> None:
    try:
        checked = evidence.check(name, data)
    except Invalid as refused:
        assert refused.field == "files"  # noqa: PT017 (either outcome is fine; only this one)
        return
    # Accepted: it is what its bytes say, and a photo has a clean copy to show.
    assert checked.media_type == evidence.sniff(data)
    if checked.media_type != "application/pdf":
        assert checked.clean is not None
        assert evidence.sniff(checked.clean) == checked.media_type


@FUZZ
@given(data=st.binary(max_size=4096), name=st.text(max_size=200))
def test_arbitrary_bytes(data: bytes, name: str) -> None:
    _check(name, data)


@FUZZ
@given(data=st.one_of(damaged(JPEG), damaged(PNG), damaged(WEBP), damaged(PDF)))
def test_truncated_and_damaged_files(data: bytes) -> None:
    _check("photo.jpg", data)


@FUZZ
@given(data=polyglot(HEADS, BODIES))
def test_polyglots(data: bytes) -> None:
    _check("photo.jpg", data)


@FUZZ
@given(image=st.sampled_from([JPEG, PNG, WEBP]), tail=st.sampled_from(BODIES[3:]))
def test_payload_after_a_whole_photo_never_reaches_the_shown_copy(
    image: bytes, tail: bytes
) -> None:
    """A real photo with a PDF, zip or HTML appended may pass as the photo, but the copy
    shown to officers is re-encoded from the pixels: the payload is gone."""
    try:
        checked = evidence.check("photo", image + tail)
    except Invalid:
        return
    assert checked.clean is not None
    assert tail not in checked.clean


def test_good_photos_pass_and_lose_their_exif() -> None:
    for data in (JPEG, PNG, WEBP):
        checked = evidence.check("p", data)
        assert checked.clean is not None
        assert evidence.sniff(checked.clean) == checked.media_type
    assert b"Exif" in JPEG
    assert b"Exif" not in (evidence.check("p", JPEG).clean or b"")
    assert evidence.check("a.pdf", PDF).media_type == "application/pdf"
