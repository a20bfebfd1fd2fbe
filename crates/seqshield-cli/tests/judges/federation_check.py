"""Federation end to end: the Entra stand-in mints tokens; seqshield accepts
them only at the token-exchange endpoint, maps groups to scopes and clearance,
refuses another tenant, an unmapped user and direct use as a bearer token, and
fetches the issuer's JWKS again when the issuer rotates its key.

Usage: federation_check.py BASE_URL CA_PEM ENTRA_JSON CLIENT_ID CLIENT_SECRET
Prints one JSON line; exits non-zero on any failure."""
import json
import sys

import requests

base, ca, entra_json, client_id, client_secret = sys.argv[1:6]
entra = json.loads(entra_json)


def mint(**kw):
    r = requests.post(entra["mint"], json=kw, verify=entra["ca_file"], timeout=10)
    r.raise_for_status()
    return r.json()["token"]


def exchange(subject, scope=None, audience="seqshield"):
    data = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": subject,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "audience": audience}
    if scope:
        data["scope"] = scope
    return requests.post(base + "/token", data=data, auth=(client_id, client_secret), verify=ca, timeout=30)


def whoami(token):
    return requests.get(base + "/api/v1/whoami", headers={"Authorization": "Bearer " + token}, verify=ca, timeout=10)


out = {}
analyst = mint(oid="0a1b2c3d-analyst", groups=["genomics-analysts"])
# An external token is not a bearer token here.
r = whoami(analyst)
assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text

r = exchange(analyst, scope="openid data:read jobs:submit audit:read")
assert r.status_code == 200, r.text
tok = r.json()
assert tok["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token", tok
claims = whoami(tok["access_token"]).json()
assert claims["sub"] == f"fed:{entra['tenant']}/0a1b2c3d-analyst", claims
assert claims["clearance"] == "restricted", claims
assert set(claims["scope"].split()) <= {"data:read", "jobs:submit"}, claims  # audit:read is not mapped
assert claims["act"]["sub"] == client_id, claims
out["analyst"] = claims["scope"]

r = exchange(mint(oid="x-other-tenant", groups=["genomics-analysts"], tid="00000000-0000-0000-0000-000000000000"))
assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
r = exchange(mint(oid="x-unmapped", groups=["marketing"]))
assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
r = exchange(mint(oid="x-wrong-aud", groups=["genomics-analysts"], aud="api://someone-else"))
assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text

# The issuer rotates its key: seqshield must fetch the JWKS again for the new kid.
requests.post(entra["rotate"], verify=entra["ca_file"], timeout=10).raise_for_status()
import time
time.sleep(1.2)
r = exchange(mint(oid="0a1b2c3d-analyst", groups=["genomics-analysts"]), scope="data:read")
assert r.status_code == 200, r.text
out["after_rotation"] = "ok"
print(json.dumps({"ok": True, **out}))
