"""Encryption of personal and secret data at rest (AES-GCM) and keyed lookup hashes.

The data key (``LAOWU_DATA_KEY``) is 32 random bytes in base64url. Ciphertexts
carry a key id so keys can be rotated: old rows stay readable while being
re-encrypted under the new key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def new_data_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


def decode_key(text: str, *, name: str = "LAOWU_DATA_KEY") -> bytes:
    """Strict base64url (padding optional) of exactly 32 bytes; the message names ``name``."""
    stripped = text.strip()
    if not _BASE64URL.fullmatch(stripped):
        raise ValueError(f"{name} 不是 base64url 编码（只能含 A-Z a-z 0-9 - _）")
    try:
        key = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} 不是有效的 base64url 编码") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"{name} 解码后应为 {KEY_BYTES} 字节，实际为 {len(key)} 字节")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"laowu-key-id|" + key).hexdigest()[:8]


class DataCipher:
    def __init__(self, key: bytes, *, old_keys: tuple[bytes, ...] = ()) -> None:
        self._key = key
        self._kid = key_id(key)
        self._keys = {key_id(k): k for k in (key, *old_keys)}
        self._hmac_key = hashlib.sha256(b"laowu-lookup|" + key).digest()
        self._old_hmac_keys = tuple(hashlib.sha256(b"laowu-lookup|" + k).digest() for k in old_keys)

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._key).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self._kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        kid, _, body = token.partition(":")
        key = self._keys.get(kid)
        if key is None:
            raise ValueError("ciphertext was made with an unknown key")
        raw = base64.urlsafe_b64decode(body)
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()

    def lookup_hash(self, value: str) -> str:
        """A keyed hash for equality lookups and de-duplication without plaintext."""
        return hmac.new(self._hmac_key, value.encode(), hashlib.sha256).hexdigest()

    def lookup_hashes(self, value: str) -> list[str]:
        """The hash under the current key and under each old key: while a key rotation
        runs, rows not yet rotated still carry old-key hashes and must be found."""
        keys = (self._hmac_key, *self._old_hmac_keys)
        return [hmac.new(k, value.encode(), hashlib.sha256).hexdigest() for k in keys]

    def is_current(self, token: str) -> bool:
        """Was ``token`` encrypted under the current key (nothing to rotate)?"""
        return token.partition(":")[0] == self._kid
