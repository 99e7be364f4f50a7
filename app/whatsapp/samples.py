"""Small real files for the simulator's incoming media, made here without any dependency: a PNG image, a one-page
PDF and a short Ogg Opus voice note (silence), so a receiver can test downloads offline."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable


def png(width: int = 16, height: int = 16) -> bytes:
    """A valid PNG: a red-to-blue gradient, 8-bit RGB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    def row(y: int) -> bytes:
        return b"\x00" + b"".join(bytes((255 * x // width, 64, 255 * y // height)) for x in range(width))

    rows = b"".join(row(y) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def pdf(text: str = "Order 1234") -> bytes:
    """A one-page PDF with one line of text, with a correct cross-reference table."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packet: bytes, sequence: int, granule: int, flags: int) -> bytes:
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, 0x5A11, sequence, 0, len(segments))
    page = header + bytes(segments) + packet
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def ogg(frames: int = 50) -> bytes:
    """An Ogg Opus stream (as WhatsApp's voice notes are): `frames` 20 ms frames of silence, one second by default."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 9) + b"simulator" + struct.pack("<I", 0)
    silence = b"\xf8\xff\xfe"  # a CELT 20 ms frame code with no energy: decoders play it as silence
    pages = [_ogg_page(head, 0, 0, 0x02), _ogg_page(tags, 1, 0, 0)]
    for index in range(frames):
        last = index == frames - 1
        pages.append(_ogg_page(silence, index + 2, 312 + 960 * (index + 1), 0x04 if last else 0))
    return b"".join(pages)


def mp4() -> bytes:
    """The smallest MP4 container a sniffer recognises (an ftyp box and an empty mdat); not playable."""
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 512, b"isom", b"mp41")
    return ftyp + struct.pack(">I4s", 8, b"mdat")


# Message type -> (bytes, mimetype, file name) of what the simulator "downloads".
SAMPLES: dict[str, tuple[Callable[[], bytes], str, str | None]] = {
    "image": (png, "image/png", None),
    "sticker": (png, "image/png", None),
    "document": (pdf, "application/pdf", "order.pdf"),
    "audio": (ogg, "audio/ogg; codecs=opus", None),
    "video": (mp4, "video/mp4", None),
}


def sample(kind: str) -> tuple[bytes, str, str | None] | None:
    """(bytes, mimetype, file name) of a sample of message type `kind`, or None if it has no media."""
    found = SAMPLES.get(kind)
    if found is None:
        return None
    make, mimetype, file_name = found
    return make(), mimetype, file_name
