"""Outside judge of a witness checkpoint (`seqshield audit checkpoint`),
independent of seqshield's code: python `cryptography` checks the signed
tree head's ECDSA P-384 / SHA-384 signature over its C2SP-style body with
the checkpoint's own public key, and the key id; with LOG_FILE, hashlib
re-reads the log file's records and recomputes the chain values and the
RFC 9162 tree head at the checkpoint's size.

Usage: sth_judge.py CHECKPOINT_JSON [LOG_FILE]
Prints one JSON line; exits non-zero on any failure."""
import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAGIC = b"\x89SQA\r\n\x1a\n"

cp_path = sys.argv[1]
log_path = sys.argv[2] if len(sys.argv) > 2 else None

with open(cp_path, encoding="utf-8") as f:
    cp = json.load(f)
assert cp["format"] == "seqshield-audit-checkpoint/v1", cp["format"]
head = cp["head"]

key = serialization.load_pem_public_key(cp["public_key"].encode())
assert isinstance(key, ec.EllipticCurvePublicKey), type(key)
assert isinstance(key.curve, ec.SECP384R1), key.curve.name
spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
key_id = "ec-" + hashlib.sha256(spki).hexdigest()[:16]
assert head["key_id"] == key_id, (head["key_id"], key_id)
assert head["algorithm"] == "ecdsa-p384-sha384", head["algorithm"]

root = bytes.fromhex(head["root"])
assert len(root) == 32
body = (
    f"{head['origin']}\n{head['size']}\n{base64.b64encode(root).decode()}\n"
    f"timestamp {head['timestamp_ms']}\nkey {head['key_id']} {head['algorithm']}\n"
).encode()
signature = base64.b64decode(head["signature"], validate=True)
try:
    key.verify(signature, body, ec.ECDSA(hashes.SHA384()))
except InvalidSignature:
    raise SystemExit("the signed tree head's signature does not verify over its body")

# The judge itself must be able to say no: any change to the body fails.
tampered = bytearray(body)
tampered[0] ^= 1
try:
    key.verify(signature, bytes(tampered), ec.ECDSA(hashes.SHA384()))
    raise SystemExit("a tampered body verified: the judge is broken")
except InvalidSignature:
    pass


def mth(leaves):
    """RFC 9162 §2.1.1 Merkle Tree Hash."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


out = {"ok": True, "size": head["size"], "key_id": key_id}
if log_path:
    with open(log_path, "rb") as f:
        data = f.read()
    assert data[:8] == MAGIC, "bad magic"
    pos, chain, leaves = 8, bytes(32), []
    while len(leaves) < head["size"]:
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        entry = data[pos + 4:pos + 4 + n]
        stored = data[pos + 4 + n:pos + 4 + n + 32]
        leaf = hashlib.sha256(b"\x00" + entry).digest()
        chain = hashlib.sha256(b"\x02" + chain + leaf).digest()
        assert stored == chain, f"chain value of entry {len(leaves)}"
        json.loads(entry)
        leaves.append(leaf)
        pos += 4 + n + 32 + 4
    assert mth(leaves) == root, "the log's tree head at the checkpoint's size differs from the signed root"
    out["root_recomputed"] = True

print(json.dumps(out))
