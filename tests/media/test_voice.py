"""Voice notes against real Postgres and the real ffmpeg of imageio-ffmpeg: an Ogg Opus file is used as it is and its
duration read from its last page; other audio is converted and stored as a new Ogg Opus file; what is not audio, or
does not decode, is refused with the accepted formats named."""

from __future__ import annotations

import io
import math
import struct
import uuid
import wave

import pytest

from app.db.database import Database
from app.media import store as media_store
from app.media.intake import MediaRefused, keep
from app.media.sniff import sniff
from app.media.storage import POSTGRES
from app.media.voice import voice_note
from app.ogg import is_ogg_opus, opus_seconds
from app.whatsapp import samples

LIMIT = 2 * 1024 * 1024


def tone(seconds: float, rate: int = 16000) -> bytes:
    """A WAV file of a 440 Hz tone."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(frames)
    return out.getvalue()


def test_ogg_opus_is_recognised_and_its_duration_read() -> None:
    one_second = samples.ogg()
    assert is_ogg_opus(one_second) and opus_seconds(one_second) == 1.0  # 50 frames of 20 ms, pre-skip removed
    assert opus_seconds(samples.ogg(frames=150)) == 3.0
    assert not is_ogg_opus(tone(0.1)) and not is_ogg_opus(samples.png()) and not is_ogg_opus(b"OggS")
    assert opus_seconds(samples.png()) == 0.0
    assert opus_seconds(one_second[:-10]) < 1.0  # a cut-off last page is not read: the duration of what is whole


async def test_an_ogg_opus_file_is_sent_as_it_is(database: Database) -> None:
    data = samples.ogg()
    stored = await keep(database, POSTGRES, data, origin="upload", mimetype=sniff(data), file_name="voice.ogg")
    note = await voice_note(database, POSTGRES, stored.id, max_bytes=LIMIT)
    assert (note.media_id, note.seconds, note.converted) == (stored.id, 1.0, False)
    assert note.mimetype == "audio/ogg; codecs=opus"


async def test_other_audio_is_converted_to_a_new_ogg_opus_file(database: Database) -> None:
    data = tone(2.0)
    stored = await keep(database, POSTGRES, data, origin="fetched", mimetype=sniff(data), file_name="memo.wav")
    note = await voice_note(database, POSTGRES, stored.id, max_bytes=LIMIT)
    assert note.converted and note.media_id != stored.id
    assert note.seconds == pytest.approx(2.0, abs=0.05)
    async with database.connection() as connection:
        found = await media_store.find(connection, note.media_id)
        converted = await media_store.content(connection, note.media_id)
    assert found is not None and converted is not None and is_ogg_opus(converted)
    assert (found.mimetype, found.origin, found.file_name) == ("audio/ogg", "fetched", "memo.ogg")
    assert found.size == len(converted) < len(data)


async def test_what_is_not_audio_or_cannot_be_converted_is_refused(database: Database) -> None:
    pdf = await keep(database, POSTGRES, samples.pdf(), origin="upload", mimetype="application/pdf")
    broken = await keep(database, POSTGRES, b"not audio at all " * 8, origin="upload", mimetype="audio/mpeg")
    for media_id, words in ((pdf.id, "application/pdf, not audio"), (broken.id, "cannot be converted")):
        with pytest.raises(MediaRefused) as refused:
            await voice_note(database, POSTGRES, media_id, max_bytes=LIMIT)
        assert refused.value.status == 422 and words in str(refused.value)
        assert "Ogg Opus" in str(refused.value)  # the accepted formats are named
    with pytest.raises(MediaRefused, match="names no stored file"):
        await voice_note(database, POSTGRES, uuid.uuid4(), max_bytes=LIMIT)
    long = await keep(database, POSTGRES, tone(1.0), origin="upload", mimetype="audio/wav")
    with pytest.raises(MediaRefused, match="larger than MEDIA_MAX_BYTES"):
        await voice_note(database, POSTGRES, long.id, max_bytes=100)
    with pytest.raises(MediaRefused, match=r"within 0\.001 s"):
        await voice_note(database, POSTGRES, long.id, max_bytes=LIMIT, convert_seconds=0.001)
