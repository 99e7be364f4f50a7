"""Ogg Opus read from the bytes: what a voice note is and how long it lasts."""

from __future__ import annotations

from app.ogg import is_ogg_opus, opus_seconds
from app.whatsapp import samples


def test_an_ogg_opus_length_is_read_from_its_last_page() -> None:
    assert is_ogg_opus(samples.ogg()) and opus_seconds(samples.ogg()) == 1.0  # 50 frames of 20 ms, pre-skip removed
    assert opus_seconds(samples.ogg(frames=250)) == 5.0
    assert not is_ogg_opus(samples.png()) and opus_seconds(samples.png()) == 0.0  # not Ogg: no length
    assert opus_seconds(samples.ogg()[:30]) == 0.0  # cut short: no page with a length
