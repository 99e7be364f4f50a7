"""The worker's side of incoming media: the checks before and after a download, the hand-over file, and the sample
files the simulator sends (real PNG, PDF and Ogg bytes)."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

from app.whatsapp import samples
from app.whatsapp.media import hand_over, read_outgoing, too_large

MEDIA = {"mimetype": "image/png", "size": 10, "file_name": None}


def test_a_checked_file_is_written_into_the_folder(tmp_path: Path) -> None:
    data = samples.png()
    handed = hand_over(MEDIA, data, hashlib.sha256(data).digest(), str(tmp_path), 10_000)
    assert Path(handed["file"]).parent == tmp_path and Path(handed["file"]).read_bytes() == data
    assert handed["sha256"] == hashlib.sha256(data).hexdigest() and handed["size"] == len(data)
    assert "error" not in handed


def test_a_wrong_hash_or_size_or_no_folder_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    data = samples.pdf()
    mismatch = hand_over(MEDIA, data, hashlib.sha256(b"other").digest(), str(tmp_path), 10_000)
    assert mismatch["error"].startswith("sha256 mismatch") and "file" not in mismatch
    large = hand_over(MEDIA, data, hashlib.sha256(data).digest(), str(tmp_path), len(data) - 1)
    assert "MEDIA_MAX_BYTES" in large["error"] and "file" not in large
    assert "error" in hand_over(MEDIA, data, None, None, 10_000)
    assert os.listdir(tmp_path) == []
    assert too_large(17, 16) is not None and too_large(16, 16) is None and too_large(None, 16) is None


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, body) of each chunk of a PNG, every chunk's CRC checked."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        position += 12 + length
    assert position == len(data)
    return chunks


def test_the_png_is_valid() -> None:
    chunks = png_chunks(samples.png(4, 3))
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert len(zlib.decompress(chunks[1][1])) == 3 * (1 + 4 * 3)  # 3 rows of a filter byte and 4 RGB pixels


def test_a_sized_png_is_that_size_of_random_pixels_that_do_not_compress() -> None:
    row = 1 + 3 * samples.PNG_WIDTH
    for size in (300, 1000, 65_600, 2**20 + 7):
        data = samples.random_png(size)
        assert len(data) == size
        chunks = dict(png_chunks(data))
        assert list(chunks) == [b"IHDR", b"IDAT", samples.PAD_CHUNK, b"IEND"]
        width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
        pixels = zlib.decompress(chunks[b"IDAT"])  # checks the stored blocks and the Adler-32
        assert width == samples.PNG_WIDTH and len(pixels) == height * row and pixels[::row] == bytes(height)
        assert len(zlib.compress(data)) > 0.99 * size  # nothing to gain: as a photo's bytes
    assert samples.random_png(2**20) != samples.random_png(2**20)
    assert len(samples.random_png(10)) == len(samples.random_png(0)) > 10  # below one row: the smallest there is


def test_the_pdf_cross_reference_points_at_its_objects() -> None:
    data = samples.pdf("Hello")
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF") and b"(Hello)" in data
    xref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert data[xref:].startswith(b"xref")
    offsets = [int(line[:10]) for line in data[xref:].split(b"\n")[3:8]]
    assert [data[offset:].split(b" ")[0] for offset in offsets] == [b"1", b"2", b"3", b"4", b"5"]


def test_the_ogg_pages_carry_opus_with_correct_checksums() -> None:
    data = samples.ogg(frames=5)
    pages = [b"OggS" + page for page in data.split(b"OggS")[1:]]
    assert len(pages) == 2 + 5 and pages[0][28:36] == b"OpusHead" and pages[1][28:36] == b"OpusTags"
    for page in pages:
        blank = page[:22] + b"\0\0\0\0" + page[26:]
        assert struct.unpack("<I", page[22:26])[0] == samples._ogg_crc(blank)
    assert pages[0][5] == 0x02 and pages[-1][5] == 0x04  # beginning and end of stream


def test_only_a_file_directly_in_the_folder_is_read_for_a_send(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    inside = folder / "a.send"
    inside.write_bytes(b"bytes")
    assert read_outgoing(str(inside), str(folder)) == b"bytes"
    nested = folder / "sub"
    nested.mkdir()
    (nested / "b.send").write_bytes(b"x")
    (tmp_path / "c.send").write_bytes(b"x")
    os.symlink(tmp_path / "c.send", folder / "link.send")  # a link out of the folder is read as where it points
    for path in (nested / "b.send", tmp_path / "c.send", folder / "link.send", folder / "../c.send", folder / "gone"):
        assert read_outgoing(str(path), str(folder)) is None
    assert read_outgoing(str(inside), None) is None
