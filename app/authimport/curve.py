"""The Curve25519 work of an import: public keys derived from private ones (X25519), libsignal's curve25519 signature
check (XEdDSA: the Montgomery key as an Ed25519 key, sign bit carried in the signature), and Signal's HKDF. All on
`cryptography` (OpenSSL); the only arithmetic here is the birational map from Montgomery u to Edwards y.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DJB_TYPE = 0x05  # libsignal's key type byte in front of a 32-byte Curve25519 public key
PRIME = 2**255 - 19


def public_key(private: bytes) -> bytes:
    """The X25519 public key of a 32-byte private key (clamped the way whatsmeow and libsignal clamp it)."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def agreement(private: bytes, public: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(strip(public)))


def strip(public: bytes) -> bytes:
    """A 32-byte public key from libsignal's 33-byte form (0x05 + key); a 32-byte key as it is."""
    if len(public) == 33 and public[0] == DJB_TYPE:
        return public[1:]
    if len(public) == 32:
        return public
    raise ValueError(f"a Curve25519 public key has 32 bytes (33 with the 0x05 type byte), not {len(public)}")


def typed(public: bytes) -> bytes:
    """libsignal's 33-byte form of a public key."""
    return bytes([DJB_TYPE]) + strip(public)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """libsignal's curve25519 signature check (what whatsmeow's ecc.VerifySignature and Baileys' Curve.verify do)."""
    if len(signature) != 64:
        return False
    u = int.from_bytes(strip(public), "little") & ((1 << 255) - 1)
    if u >= PRIME or (u + 1) % PRIME == 0:
        return False
    y = (u - 1) * pow(u + 1, PRIME - 2, PRIME) % PRIME
    edwards = bytearray(y.to_bytes(32, "little"))
    edwards[31] |= signature[63] & 0x80  # the signer's Edwards sign bit travels in the signature's top bit
    plain = bytearray(signature)
    plain[63] &= 0x7F
    try:
        Ed25519PublicKey.from_public_bytes(bytes(edwards)).verify(bytes(plain), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def hkdf(secret: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256, as libsignal's kdf.DeriveSecrets (a missing salt is 32 zero bytes)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(secret)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()
