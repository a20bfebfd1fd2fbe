#!/usr/bin/env python3
"""Independent check of the RFC 6962 / RFC 9162 Merkle vectors in ct.json.

Written from RFC 9162 section 2.1 alone, with hashlib, so a vector mistyped
into ct.json fails here even if the Rust implementation had the same slip.
Run by the Rust test `vectors_agree_with_independent_python_check` and by hand:
    python3 tests/vectors/merkle/check.py tests/vectors/merkle/ct.json
Prints one "<section>: ok" line per section; exits non-zero on any mismatch.
"""
import hashlib
import json
import sys


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n):
    """The largest power of two smaller than n (section 2.1.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    """MTH(D[n]), section 2.1.1."""
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = split(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m, d):
    """PATH(m, D[n]), section 2.1.3.1."""
    if len(d) == 1:
        return []
    k = split(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    """SUBPROOF(m, D[n], b), section 2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def proof(m, d):
    """PROOF(m, D[n]), section 2.1.4.1 (0 < m < n; empty otherwise)."""
    return subproof(m, d, True) if 0 < m < len(d) else []


def verify_inclusion(h, index, size, p, root):
    """Section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, h
    for x in p:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(x, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, x)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, p):
    """Section 2.1.4.2, for 0 < first < second."""
    assert 0 < first < second
    if not p:
        return False
    if first & (first - 1) == 0:
        p = [first_hash] + p
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = p[0]
    for c in p[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def synthetic(n):
    """Leaves for the shape tables (any leaves will do): leaf i is i as u64 BE."""
    return [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]


def main(file):
    v = json.load(open(file))
    failures = []

    def check(section, ok, what):
        if not ok:
            failures.append(f"{section}: {what}")

    d = [leaf_hash(bytes.fromhex(x)) for x in v["leaves"]["hex"]]
    h = lambda xs: [bytes.fromhex(x) for x in xs]  # noqa: E731

    roots = h(v["roots"]["hex"])
    check("roots", len(roots) == 9, "nine roots")
    for n, r in enumerate(roots):
        check("roots", mth(d[:n]) == r, f"size {n}")
    print("roots: ok" if not failures else "roots: FAILED")

    before = len(failures)
    for level, row in enumerate(v["node_hashes"]["hex"]):
        for i, x in enumerate(h(row)):
            w = 1 << level
            check("node_hashes", mth(d[i * w:(i + 1) * w]) == x, f"level {level} node {i}")
    print("node_hashes: ok" if len(failures) == before else "node_hashes: FAILED")

    before = len(failures)
    nh = [h(row) for row in v["node_hashes"]["hex"]]
    for n, nodes in enumerate(v["compact_trees"]["nodes"]):
        want, start = [], 0
        for level in range(n.bit_length() - 1, -1, -1):
            if n >> level & 1:
                want.append(mth(d[start:start + (1 << level)]))
                start += 1 << level
        check("compact_trees", [nh[lv][i] for lv, i in nodes] == want, f"size {n}")
    print("compact_trees: ok" if len(failures) == before else "compact_trees: FAILED")

    before = len(failures)
    for c in v["inclusion"]["cases"]:
        i, n, p = c["index"], c["size"], h(c["path"])
        check("inclusion", path(i, d[:n]) == p, f"PATH({i}, D[{n}])")
        check("inclusion", verify_inclusion(d[i], i, n, p, mth(d[:n])), f"verify {i} in {n}")
    print("inclusion: ok" if len(failures) == before else "inclusion: FAILED")

    before = len(failures)
    for c in v["consistency"]["cases"]:
        m, n, p = c["first"], c["second"], h(c["proof"])
        check("consistency", proof(m, d[:n]) == p, f"PROOF({m}, D[{n}])")
        if 0 < m < n:
            check("consistency", verify_consistency(m, n, mth(d[:m]), mth(d[:n]), p), f"verify {m} -> {n}")
    print("consistency: ok" if len(failures) == before else "consistency: FAILED")

    before = len(failures)
    s = synthetic(128)
    for c in v["inclusion_shapes"]["cases"]:
        i, n = c["index"], c["size"]
        check("inclusion_shapes", path(i, s[:n]) == [mth(s[a:b]) for a, b in c["ranges"]], f"PATH({i}, D[{n}])")
    for c in v["consistency_shapes"]["cases"]:
        m, n = c["first"], c["second"]
        check("consistency_shapes", proof(m, s[:n]) == [mth(s[a:b]) for a, b in c["ranges"]], f"PROOF({m}, D[{n}])")
    print("shapes: ok" if len(failures) == before else "shapes: FAILED")

    for f in failures:
        print("mismatch:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/merkle/ct.json"))
