"""Signal sessions and sender keys from libsignal-node's records (what Baileys stores) to the JSON records of
go.mau.fi/libsignal that whatsmeow stores (SessionStructure / SenderKeyStructure, Go field names, bytes as base64).

The one trap: libsignal-node keeps a chain key with `counter` c meaning "this key derives message c + 1", while Go's
ChainKey.Index is the index of the next message key, so Index = c + 1. Skipped message keys are kept as seeds in
libsignal-node and expanded in Go: HKDF(seed, "WhisperMessageKeys", 80) = cipher key 32 | MAC key 32 | IV 16.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from app.authimport import curve
from app.authimport.documents import as_bytes, as_int

SENDING, RECEIVING = 1, 2  # libsignal-node's ChainType
OPEN = -1  # indexInfo.closed of the open session
SESSION_VERSION = 3


class Unconvertible(ValueError):
    """A record this converter cannot carry over (the contact then re-establishes it with one retry)."""


def address(baileys_id: str) -> str:
    """libsignal-node's address "user.device" (user may be "lid_1") as whatsmeow writes it: "user:device"."""
    user, dot, device = baileys_id.rpartition(".")
    if not dot or not user or not device.isdigit():
        raise Unconvertible(f"{baileys_id!r} is not a Signal address (user.device)")
    return f"{user}:{device}"


def session(record: Any, identity_public: bytes, registration_id: int) -> bytes:
    """A libsignal-node SessionRecord ({_sessions, version}) -> whatsmeow's session JSON."""
    if not isinstance(record, dict):
        record = _json(record)
    entries = record.get("_sessions")
    if not isinstance(entries, dict) or not entries:
        raise Unconvertible("no session entries")
    if record.get("version") not in ("v1", None):
        raise Unconvertible(f"session record version {record.get('version')!r}")
    states = []
    for entry in entries.values():
        info = entry["indexInfo"]
        states.append((as_int(info["closed"]), _state(entry, identity_public, registration_id)))
    current = [state for closed, state in states if closed == OPEN]
    if not current:
        raise Unconvertible("no open session")
    previous = [state for closed, state in sorted(states, key=lambda pair: -pair[0]) if closed != OPEN]
    return _dump({"SessionState": current[0], "PreviousStates": previous})


def _state(entry: dict[str, Any], identity_public: bytes, registration_id: int) -> dict[str, Any]:
    ratchet = entry["currentRatchet"]
    info = entry["indexInfo"]
    ours = ratchet["ephemeralKeyPair"]
    our_public = curve.typed(as_bytes(ours["pubKey"]))
    chains = {curve.typed(as_bytes(key)): chain for key, chain in entry.get("_chains", {}).items()}
    sending = chains.get(our_public)
    if sending is None or as_int(sending.get("chainType", SENDING)) != SENDING:
        raise Unconvertible("the session has no sending chain yet")
    pending = entry.get("pendingPreKey")
    return {
        "LocalIdentityPublic": _b64(curve.typed(identity_public)),
        "LocalRegistrationID": registration_id,
        "NeedsRefresh": False,
        "PendingKeyExchange": None,
        "PendingPreKey": _pending(pending) if pending else None,
        "PreviousCounter": max(as_int(ratchet.get("previousCounter", 0)), 0),
        "ReceiverChains": [
            _chain(public, chain, private=None)
            for public, chain in chains.items()
            if as_int(chain.get("chainType", RECEIVING)) == RECEIVING
        ],
        "RemoteIdentityPublic": _b64(curve.typed(as_bytes(info["remoteIdentityKey"]))),
        "RemoteRegistrationID": as_int(entry.get("registrationId") or 0),
        "RootKey": _b64(as_bytes(ratchet["rootKey"])),
        "SenderBaseKey": _b64(curve.typed(as_bytes(info["baseKey"]))),
        "SenderChain": _chain(our_public, sending, private=as_bytes(ours["privKey"])),
        "SessionVersion": SESSION_VERSION,
    }


def _chain(public: bytes, chain: dict[str, Any], private: bytes | None) -> dict[str, Any]:
    key = chain["chainKey"]
    seeds = chain.get("messageKeys") or {}
    return {
        "SenderRatchetKeyPublic": _b64(public),
        "SenderRatchetKeyPrivate": _b64(private) if private is not None else None,
        "ChainKey": {
            "Key": _b64(as_bytes(key["key"])) if key.get("key") is not None else None,  # None: a closed chain
            "Index": as_int(key["counter"]) + 1,
        },
        "MessageKeys": [_message_keys(as_int(index), as_bytes(seeds[index])) for index in sorted(seeds, key=int)],
    }


def _message_keys(index: int, seed: bytes) -> dict[str, Any]:
    keys = curve.hkdf(seed, None, b"WhisperMessageKeys", 80)
    return {"CipherKey": _b64(keys[:32]), "MacKey": _b64(keys[32:64]), "IV": _b64(keys[64:]), "Index": index}


def _pending(pending: dict[str, Any]) -> dict[str, Any]:
    pre_key = pending.get("preKeyId")
    return {
        "PreKeyID": {"Value": as_int(pre_key), "IsEmpty": False}
        if pre_key is not None
        else {"Value": 0, "IsEmpty": True},
        "SignedPreKeyID": as_int(pending["signedKeyId"]),
        "BaseKey": _b64(curve.typed(as_bytes(pending["baseKey"]))),
    }


def sender_key_name(baileys_id: str) -> tuple[str, str]:
    """ "group::user::device" (or with '--', as file names have it) -> (chat_id, sender_id) as whatsmeow keys them."""
    separator = "::" if "::" in baileys_id else "--"
    group, user, device = [*baileys_id.rsplit(separator, 2), "", ""][:3]
    if not group or not user or not device.isdigit():
        raise Unconvertible(f"{baileys_id!r} is not a sender key name (group::user::device)")
    return group, f"{user}:{device}"


def sender_key(record: Any) -> bytes:
    """Baileys' SenderKeyRecord (a JSON list of states, oldest first, often wrapped in a Buffer) -> whatsmeow's JSON
    (newest first: Go's SenderKey.SenderKeyState() takes the first)."""
    states = record if isinstance(record, list) else _json(record)
    if not isinstance(states, list) or not states:
        raise Unconvertible("no sender key states")
    converted = []
    for state in reversed(states):
        chain = state["senderChainKey"]
        signing = state.get("senderSigningKey") or {}
        private = as_bytes(signing.get("private") or b"")
        converted.append(
            {
                "Keys": [_sender_message_key(key) for key in state.get("senderMessageKeys") or []],
                "KeyID": as_int(state["senderKeyId"]),
                "SenderChainKey": {"Iteration": as_int(chain["iteration"]), "ChainKey": _b64(as_bytes(chain["seed"]))},
                "SigningKeyPrivate": _b64(private) if private else None,
                "SigningKeyPublic": _b64(curve.typed(as_bytes(signing["public"]))),
            }
        )
    return _dump({"SenderKeyStates": converted})


def _sender_message_key(key: dict[str, Any]) -> dict[str, Any]:
    seed = as_bytes(key["seed"])
    derived = curve.hkdf(seed, None, b"WhisperGroup", 48)
    return {
        "Iteration": as_int(key["iteration"]),
        "IV": _b64(derived[:16]),
        "CipherKey": _b64(derived[16:]),
        "Seed": _b64(seed),
    }


def _json(value: Any) -> Any:
    """A record stored as a Buffer (or base64) of its JSON text."""
    try:
        return json.loads(as_bytes(value))
    except (ValueError, UnicodeDecodeError) as error:
        raise Unconvertible(f"not a JSON record: {error}") from error


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _dump(structure: dict[str, Any]) -> bytes:
    return json.dumps(structure, separators=(",", ":")).encode()
