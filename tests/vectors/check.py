#!/usr/bin/env python3
"""Independent decoder for the seqshield v1 test vectors.

Written from docs/format.md alone, with the `cryptography` package, so the
spec and the Rust implementation are checked against each other. Run by the
Rust test `vectors_agree_with_independent_python_decoder` and usable by hand:
    .venv/bin/python tests/vectors/check.py tests/vectors/*.json
"""
import hashlib
import hmac
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"\x89SQS\r\n\x1a\n"
TRAILER_MAGIC = b"\x89SQT\r\n\x1a\n"


def hkdf(salt, ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def mth(leaves):
    """RFC 9162 section 2.1.1 Merkle tree head over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def decode(obj, data_key):
    assert obj[:8] == MAGIC, "magic"
    version, body_len = struct.unpack(">HI", obj[8:14])
    assert version == 1, "version"
    signed = obj[: 14 + body_len]
    checksum = obj[14 + body_len : 46 + body_len]
    mac = obj[46 + body_len : 78 + body_len]
    assert hashlib.sha256(signed).digest() == checksum, "header checksum"
    body = obj[14 : 14 + body_len]
    segment_size, classification, flags = struct.unpack(">IBB", body[:6])
    assert flags & ~0x01 == 0, "unknown flags"
    integrity_only = bool(flags & 0x01)
    salt = body[6:38]
    k_payload = hkdf(salt, data_key, b"seqshield/v1/payload")
    k_header = hkdf(salt, data_key, b"seqshield/v1/header")
    k_merkle = hkdf(salt, data_key, b"seqshield/v1/merkle")
    assert hmac.compare_digest(hmac.new(k_header, signed, "sha256").digest(), mac), "header MAC"
    header_len = 78 + body_len
    trailer = obj[-88:]
    assert trailer[:8] == TRAILER_MAGIC
    assert hmac.compare_digest(hmac.new(k_merkle, trailer[:56], "sha256").digest(), trailer[56:]), "trailer MAC"
    count, plaintext_len = struct.unpack(">QQ", trailer[8:24])
    root = trailer[24:56]
    data = obj[header_len:-88]
    stride = segment_size + 16
    aead = AESGCM(k_payload)
    out, leaves = [], []
    for i in range(count):
        last = i == count - 1
        seg = data[i * stride : (i + 1) * stride] if not last else data[i * stride :]
        nonce = b"\x00\x00\x00" + struct.pack(">QB", i, 1 if last else 0)
        if integrity_only:
            # plaintext ‖ GMAC tag: AES-GCM with the plaintext as AAD and an
            # empty plaintext, under the same nonce.
            out.append(seg[:-16])
            assert aead.decrypt(nonce, seg[-16:], seg[:-16]) == b"", "GMAC"
        else:
            out.append(aead.decrypt(nonce, seg, b""))
        leaf = struct.pack(">QBI", i, 1 if last else 0, len(seg)) + seg[-16:]
        leaves.append(hashlib.sha256(b"\x00" + leaf).digest())
    assert len(data) == (count - 1) * stride + len(seg), "length"
    assert mth(leaves) == root, "Merkle root"
    plain = b"".join(out)
    assert len(plain) == plaintext_len
    return plain, root, count, classification, integrity_only


def main(paths):
    for p in paths:
        v = json.load(open(p))
        if "object_hex" not in v:
            print(f"{v['name']}: no object bytes in the vector (hash only), skipped")
            continue
        obj = bytes.fromhex(v["object_hex"])
        plain, root, count, _, integrity_only = decode(obj, bytes.fromhex(v["data_key"]))
        assert integrity_only == v.get("integrity_only", False), f"{p}: mode"
        expected = bytes((7 * i + 3) % 251 for i in range(v["plaintext_len"]))
        assert plain == expected, f"{p}: plaintext"
        assert root.hex() == v["merkle_root"] and count == v["segment_count"], f"{p}: root/count"
        mode = "integrity-only" if integrity_only else "encrypted"
        print(f"{v['name']}: ok ({count} segments, {mode})")


if __name__ == "__main__":
    main(sys.argv[1:])
