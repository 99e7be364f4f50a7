"""Recipients: phone numbers validated with libphonenumber, JIDs accepted as they are."""

from __future__ import annotations

import pytest

from app.phone import InvalidPhone, normalise_phone, parse_recipient


@pytest.mark.parametrize(
    ("given", "address", "jid", "is_group"),
    [
        ("+6281234567890", "+6281234567890", "6281234567890@s.whatsapp.net", False),
        ("+62 812-3456-7890", "+6281234567890", "6281234567890@s.whatsapp.net", False),
        (" +1 202 555 0143 ", "+12025550143", "12025550143@s.whatsapp.net", False),
        ("+44 20 7946 0958", "+442079460958", "442079460958@s.whatsapp.net", False),
        ("6281234567890@s.whatsapp.net", "6281234567890@s.whatsapp.net", "6281234567890@s.whatsapp.net", False),
        ("6281234567890@c.us", "6281234567890@s.whatsapp.net", "6281234567890@s.whatsapp.net", False),
        ("6281234567890:12@s.whatsapp.net", "6281234567890@s.whatsapp.net", "6281234567890@s.whatsapp.net", False),
        ("120363021234567890@g.us", "120363021234567890@g.us", "120363021234567890@g.us", True),
        ("6281234567890-1600000000@g.us", "6281234567890-1600000000@g.us", "6281234567890-1600000000@g.us", True),
        ("123456789012345@lid", "123456789012345@lid", "123456789012345@lid", False),
        (" 123456789012345:3@lid ", "123456789012345@lid", "123456789012345@lid", False),
    ],
)
def test_valid_recipients(given: str, address: str, jid: str, is_group: bool) -> None:
    recipient = parse_recipient(given)
    assert (recipient.address, recipient.jid, recipient.is_group) == (address, jid, is_group)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("081234567890", "not in international form"),
        ("6281234567890", "not in international form"),
        ("+62", "is too short"),
        ("+1", "is too short"),  # too few digits for libphonenumber to parse at all: still too short, as promised
        ("+1 2", "is too short"),
        ("+", "not a phone number"),
        ("+628", "is too short"),
        ("+62812345678901234567", "is too long"),
        ("+999 1234 5678", "unknown country code"),
        ("+1 555 000 1111", "not a valid number"),
        ("+abc", "not a phone number"),
        ("", "not in international form"),
        ("someone@example.com", "not a WhatsApp address"),
        ("12@s.whatsapp.net", "a phone JID is <country code and number, digits only>@s.whatsapp.net"),
        ("+6281234567890@s.whatsapp.net", "a phone JID is <country code and number, digits only>@s.whatsapp.net"),
        ("62812abc@c.us", "a phone JID is <country code and number, digits only>@c.us"),
        ("abc@g.us", "a group JID is <digits>@g.us"),
        ("1203630212345678@g.us@g.us", "a group JID is <digits>@g.us"),
        ("abcdef123@lid", "a LID is <digits>@lid"),
        ("@lid", "a LID is <digits>@lid"),
        ("status@broadcast", "cannot be answered"),
        ("120363000000000000@newsletter", "cannot be written to"),
        ("6281234567890@whatsapp.net", "not a WhatsApp address"),
    ],
)
def test_invalid_recipients_say_why(given: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        parse_recipient(given)
    assert reason in str(caught.value)
    if "@" not in given:
        assert "+<country code><number>" in str(caught.value)


def test_normalise_phone() -> None:
    assert normalise_phone("+62 (812) 3456-7890") == "+6281234567890"
