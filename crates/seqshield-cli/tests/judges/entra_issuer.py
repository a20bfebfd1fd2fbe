"""A second, independent token issuer standing in for an institution's Entra ID
(Azure AD): its own RSA keys (jwcrypto), its JWKS served over HTTPS with its
own self-signed certificate (pinned by seqshield as the only trust anchor) (python `cryptography` + `ssl`), and Entra-style tokens
(`tid`, `oid`, `groups`, `amr`).

Usage: entra_issuer.py WORKDIR
Prints one JSON line {"issuer", "jwks_uri", "ca_file"} once it listens, then
serves until killed:
  GET  /discovery/v2.0/keys          the JWKS
  POST /mint   JSON {"oid","groups","tid"?,"aud"?,"amr"?,"exp_in"?}  → {"token"}
  POST /rotate                        new signing key (new kid), old one dropped
"""
import datetime
import http.server
import json
import os
import ssl
import sys
import threading
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jwcrypto import jwk, jwt

workdir = sys.argv[1]
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AUDIENCE = "api://seqshield-gateway"

key = ec.generate_private_key(ec.SECP384R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-standin")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .sign(key, hashes.SHA384()))
ca_file = os.path.join(workdir, "entra-ca.pem")
key_file = os.path.join(workdir, "entra-key.pem")
with open(ca_file, "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
with open(key_file, "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

lock = threading.Lock()
state = {}


def new_key():
    k = jwk.JWK.generate(kty="RSA", size=2048, kid=uuid.uuid4().hex, use="sig", alg="RS256")
    state["key"] = k


new_key()


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/discovery/v2.0/keys":
            with lock:
                self.reply({"keys": [state["key"].export_public(as_dict=True)]})
        else:
            self.reply({"error": "not found"}, 404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        if self.path == "/rotate":
            with lock:
                new_key()
                self.reply({"kid": state["key"]["kid"]})
        elif self.path == "/mint":
            t = int(time.time())
            tid = req.get("tid", TENANT)
            claims = {"iss": issuer, "aud": req.get("aud", AUDIENCE), "iat": t, "nbf": t,
                      "exp": t + int(req.get("exp_in", 3600)), "tid": tid, "oid": req["oid"],
                      "sub": "pairwise-" + req["oid"], "groups": req.get("groups", []), "amr": req.get("amr", ["pwd", "mfa"]),
                      "ver": "2.0", "uti": uuid.uuid4().hex}
            with lock:
                k = state["key"]
                tok = jwt.JWT(header={"alg": "RS256", "typ": "JWT", "kid": k["kid"]}, claims=claims)
                tok.make_signed_token(k)
            self.reply({"token": tok.serialize()})
        else:
            self.reply({"error": "not found"}, 404)

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(ca_file, key_file)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
port = server.server_address[1]
issuer = f"https://127.0.0.1:{port}/{TENANT}/v2.0"
print(json.dumps({"issuer": issuer, "jwks_uri": f"https://127.0.0.1:{port}/discovery/v2.0/keys", "ca_file": ca_file,
                  "tenant": TENANT, "audience": AUDIENCE, "mint": f"https://127.0.0.1:{port}/mint",
                  "rotate": f"https://127.0.0.1:{port}/rotate"}), flush=True)
server.serve_forever()
