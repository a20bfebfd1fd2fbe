#!/usr/bin/env python3
"""Independent reader of a seqshield audit log file (hashlib only).

Parses MAGIC, then records `len:u32be entry chain[32] crc32c:u32be`; checks
each CRC-32C (bitwise, Castagnoli polynomial 0x82F63B78) over len, entry and
chain; checks each chain value is SHA-256(0x02 || previous chain || leaf
hash), starting from 32 zero bytes; checks that each entry
is RFC 8785 canonical JSON of a v1 event (for these events: sorted keys, no
whitespace, non-ASCII unescaped) with `time` the RFC 3339 form of `unix`;
prints "<size> <RFC 9162 tree head hex>". Exits non-zero on any mismatch.
Run by crates/seqshield-audit/tests/interop.rs.
"""
import datetime
import hashlib
import json
import struct
import sys

MAGIC = b"\x89SQA\r\n\x1a\n"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def mth(d):
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def main(path):
    assert crc32c(b"123456789") == 0xE3069283
    data = open(path, "rb").read()
    assert data[:8] == MAGIC, "magic"
    pos, leaves, chain = 8, [], bytes(32)
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        entry = data[pos + 4:pos + 4 + n]
        stored = data[pos + 4 + n:pos + 36 + n]
        (crc,) = struct.unpack(">I", data[pos + 36 + n:pos + 40 + n])
        assert len(entry) == n and crc == crc32c(data[pos:pos + 36 + n]), f"record at {pos}"
        leaf = hashlib.sha256(b"\x00" + entry).digest()
        chain = hashlib.sha256(b"\x02" + chain + leaf).digest()
        assert stored == chain, f"chain at {pos}"
        ev = json.loads(entry)
        canonical = json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert canonical == entry, f"not canonical at {pos}:\n{entry}\n{canonical}"
        assert ev["v"] == 1
        t = datetime.datetime.fromtimestamp(ev["unix"], datetime.timezone.utc)
        assert ev["time"] == t.strftime("%Y-%m-%dT%H:%M:%SZ"), f"time at {pos}"
        leaves.append(leaf)
        pos += 40 + n
    print(len(leaves), mth(leaves).hex())


if __name__ == "__main__":
    main(sys.argv[1])
