#!/usr/bin/env python3
"""Outside judge for seqshield's RS256 tokens: PyJWT and jwcrypto.

Invoked by crates/seqshield-auth/tests/jwt_judges.rs from the repository
root as `.venv/bin/python crates/seqshield-auth/tests/judges/jwt_judge.py CMD
REQUEST.json`; writes one JSON object to stdout.

verify: REQUEST = {"jwks_path": PATH, "iss": ..., "aud": ..., "tokens": [...]}
    Verifies every token with both libraries against the JWKS (RS256 only,
    issuer and audience checked, exp/iat/nbf checked against the real clock).
    Output: {"results": [{"pyjwt": "ok" | "error: ...", "jwcrypto": ...,
    "claims": {...} | null}, ...]}

forge: REQUEST = {"jwks_path": PATH, "ring_kid": ..., "test_kid": ...,
    "test_pem": PATH to a PKCS#8 PEM private key whose public half the Rust
    side trusts under test_kid, "claims": {...} valid claims, "now": int,
    "our_token": a token the Rust side signed}
    Output: {"forgeries": {name: token}, "controls": {name: token}}.
    Forgeries must all be refused by seqshield; controls (correctly signed
    with the trusted test key) must be accepted, which shows that each
    forgery fails for its one defect and not for a format mismatch.
"""

import base64
import copy
import hashlib
import hmac
import json
import sys

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws
from jwcrypto import jwt as jc_jwt


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_pyjwt(token, jwks, iss, aud):
    try:
        kid = pyjwt.get_unverified_header(token).get("kid")
        keys = {k.key_id: k for k in pyjwt.PyJWKSet.from_dict(jwks).keys}
        if kid not in keys:
            return "error: unknown kid", None
        claims = pyjwt.decode(
            token,
            keys[kid].key,
            algorithms=["RS256"],
            audience=aud,
            issuer=iss,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
        return "ok", claims
    except Exception as e:  # noqa: BLE001 - any failure is a verdict
        return f"error: {type(e).__name__}: {e}", None


def verify_jwcrypto(token, jwks, iss, aud):
    try:
        keyset = jc_jwk.JWKSet.from_json(json.dumps(jwks))
        t = jc_jwt.JWT(
            jwt=token,
            key=keyset,
            algs=["RS256"],
            check_claims={"iss": iss, "aud": aud, "exp": None, "iat": None},
        )
        return "ok", json.loads(t.claims)
    except Exception as e:  # noqa: BLE001
        return f"error: {type(e).__name__}: {e}", None


def cmd_verify(req):
    out = []
    for token in req["tokens"]:
        p, claims = verify_pyjwt(token, req["jwks"], req["iss"], req["aud"])
        j, claims2 = verify_jwcrypto(token, req["jwks"], req["iss"], req["aud"])
        out.append({"pyjwt": p, "jwcrypto": j, "claims": claims if claims is not None else claims2})
    return {"results": out}


def header(kid, alg="RS256"):
    return {"alg": alg, "typ": "at+jwt", "kid": kid}


def pyjwt_rs256(claims, pem, kid):
    return pyjwt.encode(claims, pem, algorithm="RS256", headers={"typ": "at+jwt", "kid": kid})


def jwcrypto_rs256(claims, pem, kid):
    key = jc_jwk.JWK.from_pem(pem)
    t = jc_jwt.JWT(header=header(kid), claims=claims)
    t.make_signed_token(key)
    return t.serialize()


def ring_public_pem(jwks, kid):
    for k in jwks["keys"]:
        if k["kid"] == kid:
            return jc_jwk.JWK(**k).export_to_pem()
    raise SystemExit(f"kid {kid} not in JWKS")


def cmd_forge(req):
    claims = req["claims"]
    now = int(req["now"])
    ring_kid, test_kid = req["ring_kid"], req["test_kid"]
    with open(req["test_pem"], "rb") as f:
        test_pem = f.read()
    public_pem = ring_public_pem(req["jwks"], ring_kid)

    def with_(**changes):
        c = copy.deepcopy(claims)
        c.update(changes)
        return c

    forgeries = {}

    # RFC 8725 §2.1: unsigned token.
    forgeries["alg_none_pyjwt"] = pyjwt.encode(
        claims, None, algorithm="none", headers={"typ": "at+jwt", "kid": ring_kid}
    )

    # Key confusion: HS256 keyed with our published public key, as PEM.
    # PyJWT refuses PEM-looking HMAC keys, so jwcrypto and plain hmac.
    oct_key = jc_jwk.JWK(kty="oct", k=b64url(public_pem))
    s = jc_jws.JWS(json.dumps(claims).encode())
    s.add_signature(oct_key, alg="HS256", protected=json.dumps(header(ring_kid, "HS256")))
    forgeries["hs256_public_pem_jwcrypto"] = s.serialize(compact=True)
    signing_input = (
        b64url(json.dumps(header(ring_kid, "HS256")).encode()) + "." + b64url(json.dumps(claims).encode())
    )
    tag = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forgeries["hs256_public_pem_hmac"] = signing_input + "." + b64url(tag)

    # Correctly signed with the trusted test key, one claim wrong.
    forgeries["wrong_aud_pyjwt"] = pyjwt_rs256(with_(aud="someone-else"), test_pem, test_kid)
    forgeries["wrong_aud_jwcrypto"] = jwcrypto_rs256(with_(aud="someone-else"), test_pem, test_kid)
    forgeries["wrong_iss_pyjwt"] = pyjwt_rs256(with_(iss="https://evil.example"), test_pem, test_kid)
    forgeries["wrong_iss_jwcrypto"] = jwcrypto_rs256(with_(iss="https://evil.example"), test_pem, test_kid)
    old = with_(exp=now - 3600, iat=now - 4200, nbf=now - 4200)
    forgeries["expired_pyjwt"] = pyjwt_rs256(old, test_pem, test_kid)
    forgeries["expired_jwcrypto"] = jwcrypto_rs256(old, test_pem, test_kid)

    # A kid nobody published.
    forgeries["unknown_kid_pyjwt"] = pyjwt_rs256(claims, test_pem, "not-a-published-kid")
    forgeries["unknown_kid_jwcrypto"] = jwcrypto_rs256(claims, test_pem, "not-a-published-kid")

    # One of our own tokens with its payload changed, signature kept.
    h, p, sig = req["our_token"].split(".")
    payload = json.loads(b64url_decode(p))
    payload["clearance"] = "controlled"
    forgeries["tampered_payload"] = h + "." + b64url(json.dumps(payload).encode()) + "." + sig

    # A valid RS256 signature from a key we never trusted, under our kid.
    other = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forgeries["other_key_pyjwt"] = pyjwt_rs256(claims, other_pem, ring_kid)
    forgeries["other_key_jwcrypto"] = jwcrypto_rs256(claims, other_pem, ring_kid)

    controls = {
        "control_pyjwt": pyjwt_rs256(claims, test_pem, test_kid),
        "control_jwcrypto": jwcrypto_rs256(claims, test_pem, test_kid),
    }
    return {"forgeries": forgeries, "controls": controls}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("verify", "forge"):
        raise SystemExit("usage: jwt_judge.py verify|forge REQUEST.json")
    with open(sys.argv[2], encoding="utf-8") as f:
        req = json.load(f)
    # The JWKS exactly as seqshield publishes it.
    with open(req["jwks_path"], encoding="utf-8") as f:
        req["jwks"] = json.load(f)
    out = cmd_verify(req) if sys.argv[1] == "verify" else cmd_forge(req)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
