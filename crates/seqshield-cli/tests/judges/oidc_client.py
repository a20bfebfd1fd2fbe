"""Independent OIDC client (authlib + requests): discovery, authorization code
flow with PKCE S256 through seqshield's login pages, ID-token validation
against the published JWKS, then a protected API call.

Usage: oidc_client.py BASE_URL CA_PEM CLIENT_ID REDIRECT_URI USER PASSWORD TOTP_URI
Prints one JSON line with the results; exits non-zero on any failure."""
import json
import secrets
import sys
import urllib.parse

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt

from common import fresh_code, hidden_login, secret_from_uri

base, ca, client_id, redirect_uri, user, password, totp_uri = sys.argv[1:8]
secret = secret_from_uri(totp_uri)
used = set()

http = requests.Session()
# Pin the gateway certificate; REQUESTS_CA_BUNDLE from the environment would
# otherwise override a session's `verify`.
http.trust_env = False
http.verify = ca
meta = http.get(base + "/.well-known/openid-configuration", timeout=10).json()
assert meta["issuer"] == base, meta
assert meta["code_challenge_methods_supported"] == ["S256"], meta
jwks = http.get(meta["jwks_uri"], timeout=10).json()

oauth = OAuth2Session(client_id, redirect_uri=redirect_uri, scope="openid data:read",
                      code_challenge_method="S256", token_endpoint_auth_method="none")
oauth.trust_env = False
oauth.verify = ca
verifier = secrets.token_urlsafe(48)
nonce = secrets.token_urlsafe(16)
url, state = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)

page = http.get(url, timeout=10)
assert page.status_code == 200, (page.status_code, page.text[:500])
login = hidden_login(page.text)
page = http.post(base + "/authorize/password", data={"login": login, "username": user, "password": password}, timeout=30)
assert page.status_code == 200, (page.status_code, page.text[:500])
enrolled_page = "otpauth://" in page.text
r = http.post(base + "/authorize/totp", data={"login": hidden_login(page.text), "code": fresh_code(secret, used)},
              allow_redirects=False, timeout=10)
assert r.status_code in (302, 303), (r.status_code, r.text[:500])
location = r.headers["Location"]
q = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
assert q["state"] == [state] and q["iss"] == [base], q

token = oauth.fetch_token(meta["token_endpoint"], authorization_response=location, code_verifier=verifier)
claims = jwt.decode(token["id_token"], JsonWebKey.import_key_set(jwks),
                    claims_options={"iss": {"essential": True, "value": base},
                                    "aud": {"essential": True, "value": client_id},
                                    "nonce": {"essential": True, "value": nonce}})
claims.validate()
assert claims["sub"] == user and "mfa" in claims["amr"], dict(claims)

who = http.get(base + "/api/v1/whoami", headers={"Authorization": "Bearer " + token["access_token"]}, timeout=10)
assert who.status_code == 200, (who.status_code, who.text)
print(json.dumps({"ok": True, "sub": who.json()["sub"], "scope": token["scope"], "enrol_page": enrolled_page,
                  "refresh": "refresh_token" in token}))
