"""Decrypting with whatsmeow's records as go.mau.fi/libsignal would (SessionCipher.Decrypt with a receiving DH ratchet
step; GroupCipher.Decrypt), in Python, for the tests: a message the fake contact encrypted after the import must
decrypt with the converted session and sender key, read by the Go field names.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

from app.authimport import curve


def _b(value: str) -> bytes:
    return base64.b64decode(value)


def _fields(data: bytes) -> dict[int, Any]:
    fields: dict[int, Any] = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            fields[number] = data[position : position + length]
            position += length
        else:
            raise ValueError(f"wire type {wire}")
    return fields


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _aes_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _chain_step(chain_key: bytes, index: int, target: int) -> bytes:
    """The chain key for message `target`, from the chain key for message `index`."""
    while index < target:
        chain_key = curve.hmac_sha256(chain_key, b"\x02")
        index += 1
    return chain_key


def decrypt_session(record: bytes, kind: str, ciphertext: bytes) -> bytes:
    """A pkmsg or msg, decrypted with whatsmeow's session record (its current state)."""
    state = json.loads(record)["SessionState"]
    if kind == "pkmsg":
        ciphertext = _fields(ciphertext[1:])[4]  # PreKeySignalMessage.message: the inner SignalMessage
    body, mac = ciphertext[:-8], ciphertext[-8:]
    message = _fields(body[1:])
    ratchet_key, counter, encrypted = message[1], message.get(2, 0), message[4]
    chain = next(
        (chain for chain in state["ReceiverChains"] if _b(chain["SenderRatchetKeyPublic"]) == ratchet_key), None
    )
    if chain is not None and counter < chain["ChainKey"]["Index"]:
        keys = next(keys for keys in chain["MessageKeys"] if keys["Index"] == counter)  # a skipped message
        cipher_key, mac_key, iv = _b(keys["CipherKey"]), _b(keys["MacKey"]), _b(keys["IV"])
    else:
        if chain is not None:
            chain_key, index = _b(chain["ChainKey"]["Key"]), chain["ChainKey"]["Index"]
        else:  # a new ratchet key: the receiving DH ratchet step, from our sending chain's private key
            private = _b(state["SenderChain"]["SenderRatchetKeyPrivate"])
            derived = curve.hkdf(curve.agreement(private, ratchet_key), _b(state["RootKey"]), b"WhisperRatchet", 64)
            chain_key, index = derived[32:], 0
        seed = curve.hmac_sha256(_chain_step(chain_key, index, counter), b"\x01")
        derived = curve.hkdf(seed, None, b"WhisperMessageKeys", 80)
        cipher_key, mac_key, iv = derived[:32], derived[32:64], derived[64:]
    expected = curve.hmac_sha256(mac_key, _b(state["RemoteIdentityPublic"]) + _b(state["LocalIdentityPublic"]) + body)[
        :8
    ]
    if expected != mac:
        raise ValueError("bad MAC")
    return _aes_cbc_decrypt(cipher_key, iv, encrypted)


def decrypt_group(record: bytes, ciphertext: bytes) -> bytes:
    """A SenderKeyMessage, decrypted with whatsmeow's sender key record (signature checked)."""
    body, signature = ciphertext[:-64], ciphertext[-64:]
    message = _fields(body[1:])
    key_id, iteration, encrypted = message[1], message.get(2, 0), message[3]
    state = next(state for state in json.loads(record)["SenderKeyStates"] if state["KeyID"] == key_id)
    if not curve.verify(_b(state["SigningKeyPublic"]), body, signature):
        raise ValueError("bad sender key signature")
    chain = state["SenderChainKey"]
    if iteration < chain["Iteration"]:
        key = next(key for key in state["Keys"] if key["Iteration"] == iteration)
        iv, cipher_key = _b(key["IV"]), _b(key["CipherKey"])
    else:
        seed = curve.hmac_sha256(_chain_step(_b(chain["ChainKey"]), chain["Iteration"], iteration), b"\x01")
        derived = curve.hkdf(seed, None, b"WhisperGroup", 48)
        iv, cipher_key = derived[:16], derived[16:]
    return _aes_cbc_decrypt(cipher_key, iv, encrypted)
