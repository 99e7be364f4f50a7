"""Phone numbers and WhatsApp addresses as users type them: validated with libphonenumber, normalised to E.164/JIDs."""

from __future__ import annotations

import dataclasses
import functools
import re

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

EXPECTED_FORM = "+<country code><number>, for example +6281234567890"
# A device part (':12') is accepted and dropped: a message goes to the account, not to one of its devices.
USER_JID = re.compile(r"^(\d{6,15})(?::\d+)?@(s\.whatsapp\.net|c\.us)$")
LID_JID = re.compile(r"^(\d{6,20})(?::\d+)?@lid$")  # WhatsApp's hidden-number id of a user ('<digits>@lid')
GROUP_JID = re.compile(r"^(\d{6,20}(?:-\d{6,12})?)@g\.us$")
# What each server needs before the '@', said when an address of that server does not match.
JID_FORMS = {
    "s.whatsapp.net": "a phone JID is <country code and number, digits only>@s.whatsapp.net",
    "c.us": "a phone JID is <country code and number, digits only>@c.us",
    "lid": "a LID is <digits>@lid",
    "g.us": "a group JID is <digits>@g.us or <digits>-<digits>@g.us",
}
# Chats a webhook may name that are no one to write to.
UNADDRESSABLE = {
    "broadcast": "status posts and broadcast lists cannot be answered; write to the sender's JID (sender_jid)",
    "newsletter": "channels (newsletters) cannot be written to through this API",
}
ADDRESS_FORMS = (
    f"give a phone number ({EXPECTED_FORM}), a user JID (<digits>@s.whatsapp.net), "
    "a LID (<digits>@lid) or a group JID (<id>@g.us)"
)

REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "has an unknown country code",
    ValidationResult.TOO_SHORT: "is too short",
    ValidationResult.TOO_LONG: "is too long",
    ValidationResult.INVALID_LENGTH: "has the wrong number of digits for its country",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "can only be dialled locally",
}


DIALLED = re.compile(r"\+[\s().-]*\d[\d\s().-]*")  # a "+" and digits, with the separators people write

PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country code",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}


class InvalidPhone(ValueError):
    """A phone number or address that cannot be used; the message says why and shows the expected form."""


@dataclasses.dataclass(frozen=True)
class Recipient:
    address: str  # what the caller gave, normalised: "+6281234567890" or a JID
    jid: str  # where WhatsApp delivers it
    is_group: bool


@functools.lru_cache(maxsize=4096)  # senders write to the same customers again and again; parsing is not free
def normalise_phone(value: str) -> str:
    """'+62 812-3456-7890' -> '+6281234567890'; InvalidPhone with the reason otherwise."""
    text = value.strip()
    if not text.startswith("+"):
        raise InvalidPhone(f"{value!r} is not in international form: write it as {EXPECTED_FORM}")
    try:
        number = phonenumbers.parse(text, None)
    except NumberParseException as error:
        problem = PARSE_REASONS.get(error.error_type, "is not a phone number")
        if error.error_type == NumberParseException.NOT_A_NUMBER and DIALLED.fullmatch(text):
            problem = "is too short"  # "+1": digits, too few of them for libphonenumber to call it a number at all
        raise InvalidPhone(f"{value!r} {problem}: write it as {EXPECTED_FORM}") from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in REASONS:
        raise InvalidPhone(f"{value!r} {REASONS[possible]}: write it as {EXPECTED_FORM}")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{value!r} is not a valid number in its country: write it as {EXPECTED_FORM}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_recipient(value: str) -> Recipient:
    """A phone number in international form, or any chat JID a webhook event names: a user (…@s.whatsapp.net, or
    WhatsApp Web's …@c.us), a LID (…@lid) or a group (…@g.us). InvalidPhone says what is wrong otherwise."""
    text = value.strip()
    if match := USER_JID.match(text):
        return Recipient(f"{match.group(1)}@s.whatsapp.net", f"{match.group(1)}@s.whatsapp.net", False)
    if match := LID_JID.match(text):
        return Recipient(f"{match.group(1)}@lid", f"{match.group(1)}@lid", False)
    if match := GROUP_JID.match(text):
        return Recipient(text, text, True)
    if "@" in text:
        server = text.rpartition("@")[2]
        if server in JID_FORMS:
            raise InvalidPhone(f"{value!r} is not a valid WhatsApp address: {JID_FORMS[server]}")
        if server in UNADDRESSABLE:
            raise InvalidPhone(f"{value!r} is not a WhatsApp address you can write to: {UNADDRESSABLE[server]}")
        raise InvalidPhone(f"{value!r} is not a WhatsApp address: {ADDRESS_FORMS}")
    phone = normalise_phone(text)
    return Recipient(phone, phone.removeprefix("+") + "@s.whatsapp.net", False)


GROUP_ID = re.compile(r"[0-9]+(?:-[0-9]+)?")  # 120363025246125486, or the older <creator>-<timestamp> form
GROUP_FORMS = "a group JID (<digits>@g.us or <digits>-<digits>@g.us) or its id (the part before @g.us)"


def group_jid(value: str) -> str:
    """'120363025246125486' or '120363025246125486@g.us' -> '120363025246125486@g.us'; ValueError otherwise."""
    group_id = value.removesuffix("@g.us")
    if not GROUP_ID.fullmatch(group_id):
        raise ValueError(f"must be {GROUP_FORMS}")
    return f"{group_id}@g.us"
