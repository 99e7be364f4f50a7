"""Content types read from the bytes (libmagic), named as WhatsApp names them, and which kinds of message carry them."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from app.media.sniff import OCTET_STREAM, content_type, fits, sniff
from app.whatsapp import samples


def wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(8000)
        file.writeframes(b"\x00\x00" * 800)
    return out.getvalue()


def box(kind: bytes, brand: bytes) -> bytes:
    return struct.pack(">I4s4sI4s", 20, b"ftyp", brand, 0, brand) + struct.pack(">I4s", 8, b"mdat")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (samples.png(), "image/png"),
        (samples.pdf(), "application/pdf"),
        (samples.ogg(), "audio/ogg"),
        (samples.mp4(), "video/mp4"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64, "image/jpeg"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 64, "image/webp"),
        (b"#!AMR\n" + b"\x3c" * 64, "audio/amr"),
        (box(b"ftyp", b"M4A "), "audio/mp4"),
        (box(b"ftyp", b"3gp4"), "video/3gpp"),
        (wav(), "audio/wav"),
        (b"", OCTET_STREAM),
    ],
)
def test_types_are_read_from_the_bytes(data: bytes, expected: str) -> None:
    assert sniff(data) == expected


def test_a_claim_counts_only_for_a_document_libmagic_does_not_know() -> None:
    unknown = bytes([0x00, 0x13, 0x37]) * 100
    assert sniff(unknown) == OCTET_STREAM
    assert content_type(unknown, "application/vnd.example.order; charset=binary") == "application/vnd.example.order"
    assert content_type(unknown, "image/jpeg") == OCTET_STREAM  # media types are known to libmagic: not believed
    assert content_type(unknown, "text/html") == OCTET_STREAM
    assert content_type(samples.png(), "application/pdf") == "image/png"  # the bytes win over any claim


def test_each_kind_carries_what_whatsapp_plays() -> None:
    assert fits("image", "image/jpeg") is None and fits("image", "image/webp") is None
    assert fits("sticker", "image/webp") is None
    assert "image/webp" in str(fits("sticker", "image/png"))
    assert fits("video", "video/3gpp") is None and "video/mp4" in str(fits("video", "video/quicktime"))
    assert fits("audio", "audio/wav") is None and "audio/*" in str(fits("audio", "video/mp4"))
    assert fits("document", "application/zip") is None
    assert "unknown kind" in str(fits("gif", "image/gif"))
