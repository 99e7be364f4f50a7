"""Voice notes: WhatsApp plays a voice note (audio sent with ptt) only as Opus in Ogg. A stored file that is one is
used as it is; other audio is converted with ffmpeg and stored as a new file; and the duration of an Ogg Opus file,
which the audio message carries as `seconds`.

Why ffmpeg from imageio-ffmpeg 0.8.1: Heroku's Python buildpack installs no system ffmpeg, and this wheel ships a
static ffmpeg 9.0 binary built with libopus (`ffmpeg -encoders` lists it), maintained by the imageio project (a
release in 2026-11, widely used). It costs 68 MB of wheel (165 MB installed), within a slug's 500 MB. A conversion runs
as a child process, on a file no larger than MEDIA_MAX_BYTES, with one thread, for at most CONVERT_SECONDS."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import uuid

import imageio_ffmpeg

from app.db.database import Database
from app.media import store as media_store
from app.media.intake import MediaRefused, keep
from app.media.storage import MediaStorage, read_bytes
from app.ogg import VOICE_MIMETYPE, is_ogg_opus, opus_seconds
from app.settings import child_environment

OPUS_MIMETYPE = "audio/ogg"  # as libmagic names it (app/media/sniff.py); WhatsApp's own is "audio/ogg; codecs=opus"
CONVERT_SECONDS = 60.0
BITRATE = "32k"  # WhatsApp's own voice notes are mono Opus at about this rate
ACCEPTED = (
    "a voice note must be Ogg Opus (audio/ogg; codecs=opus); other audio (MP3, M4A/AAC, AMR, WAV, FLAC, Ogg Vorbis, "
    "WebM) is converted to it"
)


async def to_ogg_opus(data: bytes, *, max_bytes: int, seconds: float = CONVERT_SECONDS) -> bytes:
    """`data` (any audio ffmpeg decodes) as mono Ogg Opus; MediaRefused (422) if ffmpeg cannot decode it, takes longer
    than `seconds`, or makes a file larger than `max_bytes`. The input is a temporary file, not a pipe: an M4A whose
    index sits at its end (as phones write them) needs a seekable input."""
    with tempfile.NamedTemporaryFile(prefix="voice-", suffix=".in") as source:
        source.write(data)
        source.flush()
        process = await asyncio.create_subprocess_exec(
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-i", source.name),
            *("-map", "0:a:0", "-vn", "-ac", "1", "-c:a", "libopus", "-b:a", BITRATE, "-application", "voip"),
            *("-f", "ogg", "pipe:1"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_environment(),  # without the app's secrets: a decoder of files from anyone has no use for them
        )
        try:
            async with asyncio.timeout(seconds):
                output, errors = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise MediaRefused(422, f"the audio could not be converted to a voice note within {seconds:g} s") from None
    if process.returncode != 0 or not output:
        said = errors.decode("utf-8", "replace").strip().splitlines()
        reason = said[-1].replace(source.name, "the file")[:200] if said else f"ffmpeg exited with {process.returncode}"
        raise MediaRefused(422, f"the file cannot be converted to a voice note ({reason}); {ACCEPTED}")
    if len(output) > max_bytes:
        raise MediaRefused(422, f"the converted voice note is larger than MEDIA_MAX_BYTES ({max_bytes} bytes)")
    return output


@dataclasses.dataclass(frozen=True)
class VoiceNote:
    media_id: uuid.UUID  # the Ogg Opus file to send: the one asked for, or its converted copy
    seconds: float  # its duration
    converted: bool
    mimetype: str = VOICE_MIMETYPE


async def voice_note(
    database: Database, storage: MediaStorage, media_id: uuid.UUID, *, max_bytes: int,
    convert_seconds: float = CONVERT_SECONDS,
) -> VoiceNote:  # fmt: skip
    """The stored file `media_id` as a voice note: itself if it is Ogg Opus, else converted and stored as a new file
    (of the same origin). MediaRefused (422) naming the accepted formats if it is not audio or cannot be converted."""
    async with database.connection() as connection:
        found = await media_store.find(connection, media_id)
    data = await read_bytes(database, storage, media_id) if found else None
    if found is None or data is None:
        raise MediaRefused(422, f"media_id {media_id} names no stored file (never stored, deleted or removed)")
    if is_ogg_opus(data):
        return VoiceNote(media_id, opus_seconds(data), converted=False)
    if not found.mimetype.startswith(("audio/", "video/")):  # a video's sound track makes a voice note too
        raise MediaRefused(422, f"the file is {found.mimetype}, not audio; {ACCEPTED}")
    converted = await to_ogg_opus(data, max_bytes=max_bytes, seconds=convert_seconds)
    origin = found.origin if found.origin in media_store.ORIGINS else "upload"
    name = f"{os.path.splitext(found.file_name)[0]}.ogg" if found.file_name else None
    stored = await keep(database, storage, converted, origin=origin, mimetype=OPUS_MIMETYPE, file_name=name)
    return VoiceNote(stored.id, opus_seconds(converted), converted=True)
