"""AES-GCM for personal data at rest, key rotation, and keyed lookup hashes."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from marketplace.crypto import KEY_BYTES, DataCipher, decode_key, key_id, new_data_key

ID_NUMBER = "500103199001011234"


def _cipher() -> DataCipher:
    return DataCipher(decode_key(new_data_key()))


def test_round_trip_with_a_fresh_nonce_each_time() -> None:
    cipher = _cipher()
    first = cipher.encrypt(ID_NUMBER, context="worker.id_number")
    second = cipher.encrypt(ID_NUMBER, context="worker.id_number")
    assert first != second
    assert ID_NUMBER not in first
    assert cipher.decrypt(first, context="worker.id_number") == ID_NUMBER
    assert cipher.decrypt(second, context="worker.id_number") == ID_NUMBER
    assert cipher.decrypt(cipher.encrypt("张三 ✓")) == "张三 ✓"


def test_tampered_ciphertext_is_refused() -> None:
    cipher = _cipher()
    token = cipher.encrypt(ID_NUMBER)
    kid, _, body = token.partition(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 0x01
    with pytest.raises(InvalidTag):
        cipher.decrypt(f"{kid}:{base64.urlsafe_b64encode(bytes(raw)).decode()}")


def test_ciphertext_is_bound_to_its_context() -> None:
    cipher = _cipher()
    token = cipher.encrypt("JBSWY3DPEHPK3PXP", context="totp")
    with pytest.raises(InvalidTag):
        cipher.decrypt(token, context="worker.id_number")


def test_other_key_cannot_decrypt() -> None:
    token = _cipher().encrypt(ID_NUMBER)
    with pytest.raises(ValueError, match="unknown key"):
        _cipher().decrypt(token)


def test_old_key_still_decrypts_after_rotation() -> None:
    old_key, new_key = decode_key(new_data_key()), decode_key(new_data_key())
    old_token = DataCipher(old_key).encrypt(ID_NUMBER)
    rotated = DataCipher(new_key, old_keys=(old_key,))
    assert rotated.decrypt(old_token) == ID_NUMBER
    fresh = rotated.encrypt(ID_NUMBER)
    assert fresh.startswith(key_id(new_key) + ":")  # new writes use the new key
    with pytest.raises(ValueError, match="unknown key"):
        DataCipher(old_key).decrypt(fresh)


def test_lookup_hash_is_stable_and_keyed() -> None:
    key = decode_key(new_data_key())
    one, same = DataCipher(key), DataCipher(key)
    assert one.lookup_hash(ID_NUMBER) == same.lookup_hash(ID_NUMBER)
    assert len(one.lookup_hash(ID_NUMBER)) == 64
    assert one.lookup_hash(ID_NUMBER) != one.lookup_hash("500103199001011235")
    assert one.lookup_hash(ID_NUMBER) != _cipher().lookup_hash(ID_NUMBER)
    # Not a plain hash of the value: without the key it cannot be recomputed.
    import hashlib

    assert one.lookup_hash(ID_NUMBER) != hashlib.sha256(ID_NUMBER.encode()).hexdigest()


def test_data_key_format() -> None:
    key = new_data_key()
    assert "=" not in key
    assert len(decode_key(key)) == KEY_BYTES
    assert decode_key(key + "\n") == decode_key(key)
    assert decode_key(key + "=") == decode_key(key)  # padding is optional
    assert new_data_key() != key


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not base64 at all!", "不是 base64url"),
        (base64.b64encode(b"\xfb" * 32).decode(), "不是 base64url"),  # '+' and '/'
        ("a" * 43 + "*", "不是 base64url"),
        ("abcde", "不是有效的 base64url"),
        (base64.urlsafe_b64encode(b"x" * 16).decode(), "应为 32 字节，实际为 16 字节"),
        ("", "不是 base64url"),
    ],
    ids=["garbage", "standard-alphabet", "stray-char", "bad-length", "short", "empty"],
)
def test_bad_data_key_is_refused(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        decode_key(text)
    assert "LAOWU_DATA_KEY" in str(caught.value)
    assert text not in str(caught.value) or not text  # the key itself is never echoed
