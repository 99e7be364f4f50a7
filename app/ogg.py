"""Ogg Opus, the one format WhatsApp plays as a voice note: whether a file is one, and its length in seconds (which
an audio message carries). Read from the bytes alone, so both the web process (a voice note to send, app/media/
voice.py) and the worker (the message it builds) use this one reading."""

from __future__ import annotations

import struct

VOICE_MIMETYPE = "audio/ogg; codecs=opus"  # what WhatsApp's apps put on a voice note
OPUS_RATE = 48000  # Opus granule positions count 48 kHz samples, whatever the input's rate (RFC 7845)
PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, checksum, segments
HEADER_WITHIN = 64 * 1024  # the Opus header is the first page's packet


def pages(data: bytes) -> list[tuple[int, int, bytes]]:
    """(serial, granule position, first packet bytes) of each Ogg page, in order; stops at the first malformed one."""
    found = []
    offset = 0
    while offset + PAGE_HEADER.size <= len(data):
        capture, _, _, granule, serial, _, _, count = PAGE_HEADER.unpack_from(data, offset)
        if capture != b"OggS":
            break
        table = data[offset + PAGE_HEADER.size : offset + PAGE_HEADER.size + count]
        body = offset + PAGE_HEADER.size + count
        end = body + sum(table)
        if len(table) < count or end > len(data):
            break
        found.append((serial, granule, data[body:end]))
        offset = end
    return found


def is_ogg_opus(data: bytes) -> bool:
    """Whether `data` is an Ogg stream whose first packet is an Opus header (RFC 7845's OpusHead)."""
    first = pages(data[:HEADER_WITHIN])
    return bool(first) and first[0][2].startswith(b"OpusHead")


def opus_seconds(data: bytes) -> float:
    """The duration of an Ogg Opus file: the last granule position of its Opus stream, less the header's pre-skip,
    at 48 kHz. 0.0 if it is not one (a cut-off last page is not read: the length of what is whole)."""
    found = pages(data)
    if not found or not found[0][2].startswith(b"OpusHead") or len(found[0][2]) < 12:
        return 0.0
    serial = found[0][0]
    pre_skip: int = struct.unpack_from("<H", found[0][2], 10)[0]
    last = max((granule for page_serial, granule, _ in found if page_serial == serial and granule >= 0), default=0)
    return max(0, last - pre_skip) / OPUS_RATE
