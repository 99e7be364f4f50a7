"""Small real files for the simulator's incoming media, made here without any dependency: a PNG image, a WebP
sticker, a one-page PDF and a short Ogg Opus voice note (silence), so a receiver can test downloads offline; and a
PNG of random pixels of a given size, for load (bench/media_in.py)."""

from __future__ import annotations

import io
import os
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


def webp() -> bytes:
    """A 1x1 lossless WebP (RIFF, WEBP, one VP8L chunk): WhatsApp's stickers are WebP."""
    return b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"


def mp4() -> bytes:
    """The smallest MP4 container a sniffer recognises (an ftyp box and an empty mdat); not playable."""
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 512, b"isom", b"mp41")
    return ftyp + struct.pack(">I4s", 8, b"mdat")


# Message type -> (bytes, mimetype, file name) of what the simulator "downloads".
SAMPLES: dict[str, tuple[Callable[[], bytes], str, str | None]] = {
    "image": (png, "image/png", None),
    "sticker": (webp, "image/webp", None),
    "document": (pdf, "application/pdf", "order.pdf"),
    "audio": (ogg, "audio/ogg; codecs=opus", None),
    "video": (mp4, "video/mp4", None),
}


PNG_WIDTH = 64  # pixels per row of a sized PNG: 193 bytes a row (a filter byte and 64 RGB pixels)
PAD_CHUNK = b"siMp"  # ancillary, private, safe to copy: viewers skip it (PNG specification, section 5.4)
STORED_BLOCK = 65535  # the most a stored (uncompressed) deflate block holds


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _idat_length(raw: int) -> int:
    """The bytes of a zlib stream holding `raw` bytes in stored blocks: its header, 5 per block, its Adler-32."""
    return 2 + raw + 5 * max(1, -(-raw // STORED_BLOCK)) + 4


def random_png(size: int) -> bytes:
    """A valid PNG of `size` bytes of random pixels: incompressible, as a photo's bytes are; a `size` below a one-row
    PNG gives that. The pixels are stored (zlib's stored blocks) and a chunk viewers skip pads it to the exact size.
    Written piece by piece into one buffer, so making it holds about the file's size and no more (what a download's
    memory is measured against, bench/media_in.py)."""
    row = 1 + 3 * PNG_WIDTH
    framing = 8 + 25 + 12 + 12 + 12  # signature, IHDR, the IDAT and the padding chunks' own bytes, IEND
    height = max(1, (size - framing) // row)
    while height > 1 and framing + _idat_length(height * row) > size:
        height -= 1
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", PNG_WIDTH, height, 8, 2, 0, 0, 0)))

    def write(piece: bytes, crc: int) -> int:
        out.write(piece)
        return zlib.crc32(piece, crc)

    raw = height * row
    out.write(struct.pack(">I", _idat_length(raw)))
    crc = write(b"IDAT\x78\x01", 0)  # a zlib header: deflate, 32 KB window, no dictionary
    adler, offset = 1, 0
    while offset < raw or offset == 0:
        length = min(STORED_BLOCK, raw - offset)
        block = bytearray(os.urandom(length))
        first = -offset % row  # each row starts with its filter type, 0 (none)
        block[first::row] = bytes(len(range(first, length, row)))
        final = 1 if offset + length == raw else 0
        crc = write(struct.pack("<BHH", final, length, length ^ 0xFFFF) + block, crc)
        adler = zlib.adler32(block, adler)
        offset += length
    out.write(struct.pack(">II", adler, zlib.crc32(struct.pack(">I", adler), crc)))
    padding = size - out.tell() - 12 - 12
    if padding >= 0:
        out.write(struct.pack(">I", padding))
        crc = write(PAD_CHUNK, 0)
        for start in range(0, padding, STORED_BLOCK):
            crc = write(os.urandom(min(STORED_BLOCK, padding - start)), crc)
        out.write(struct.pack(">I", crc))
    out.write(_png_chunk(b"IEND", b""))
    return out.getvalue()


SIZED = ("image",)  # the type a sender may ask for in a given size: a PNG of random pixels


def make(kind: str, size: int | None = None) -> bytes:
    """The bytes of a sample of message type `kind` (one of SAMPLES). An image of a `size` other than the
    sample's own is a PNG of random pixels (random_png): the sample's own size (as a failed download records it, and
    its retry asks for again) stays the sample."""
    data = SAMPLES[kind][0]()
    if size is not None and kind in SIZED and size != len(data):
        return random_png(size)
    return data


def sample(kind: str) -> tuple[bytes, str, str | None] | None:
    """(bytes, mimetype, file name) of the sample of message type `kind`, or None if it has no media."""
    if kind not in SAMPLES:
        return None
    _, mimetype, file_name = SAMPLES[kind]
    return make(kind), mimetype, file_name
