"""A full login in headless Chromium, driven over the W3C WebDriver protocol
(chromedriver, no extra python packages): authorization request with PKCE,
password, TOTP computed here, redirect with code to a loopback listener, code
exchange, then the token used on a protected route.

Chromium trusts the gateway's self-signed certificate by its pinned SPKI hash
(--ignore-certificate-errors-spki-list), not by turning verification off.

Usage: chromium_login.py BASE_URL CA_PEM SPKI_B64 CLIENT_ID USER PASSWORD TOTP_URI
Prints one JSON line; exits non-zero on any failure."""
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.error
import urllib.request

import requests

from common import fresh_code, pkce_pair, secret_from_uri

base, ca, spki, client_id, user, password, totp_uri = sys.argv[1:8]
secret = secret_from_uri(totp_uri)
used = set()
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The native app's loopback redirect listener (RFC 8252 §7.3).
received = {}


class Callback(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        # Only the redirect itself: the browser also asks for /favicon.ico.
        if url.path == "/callback":
            received["query"] = urllib.parse.parse_qs(url.query)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"signed in; you can close this window")

    def log_message(self, *a):
        pass


cb_port = free_port()
# Threaded: Chromium opens speculative connections that would block a
# single-threaded server.
server = http.server.ThreadingHTTPServer(("127.0.0.1", cb_port), Callback)
threading.Thread(target=server.serve_forever, daemon=True).start()
redirect_uri = f"http://127.0.0.1:{cb_port}/callback"

driver_port = free_port()
profile = tempfile.mkdtemp(prefix="seqshield-chromium-")
# Its own process group, so the browser it starts is stopped with it.
driver = subprocess.Popen([shutil.which("chromedriver") or "/usr/bin/chromedriver", f"--port={driver_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
wd = f"http://127.0.0.1:{driver_port}"


def call(method, path, body=None):
    req = urllib.request.Request(wd + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["value"]


sid = None
try:
    for _ in range(100):
        try:
            call("GET", "/status")
            break
        except Exception:
            time.sleep(0.1)
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": shutil.which("chromium") or "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--ignore-certificate-errors-spki-list={spki}"]}}}}
    sid = call("POST", "/session", caps)["sessionId"]

    def find(css):
        return call("POST", f"/session/{sid}/element", {"using": "css selector", "value": css})[ELEMENT]

    def type_into(css, text):
        call("POST", f"/session/{sid}/element/{find(css)}/value", {"text": text})

    def source():
        return call("GET", f"/session/{sid}/source")

    def wait_for(css):
        """Polls until the next page shows `css`: a click returns before the
        navigation it starts has finished."""
        for _ in range(300):
            try:
                return find(css)
            except urllib.error.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"page never showed {css}: {source()[:1000]}")

    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = base + "/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": "openid data:read",
        "state": state, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})
    call("POST", f"/session/{sid}/url", {"url": url})
    html = source()
    assert "<script" not in html.lower(), "login page must not carry scripts"
    type_into("#username", user)
    type_into("#password", password)
    call("POST", f"/session/{sid}/element/{find('#submit')}/click", {})
    wait_for("#code")
    html = source()
    enrolled = "otpauth://" in html and "<svg" in html
    type_into("#code", fresh_code(secret, used))
    call("POST", f"/session/{sid}/element/{find('#submit')}/click", {})
    for _ in range(300):
        if "query" in received:
            break
        time.sleep(0.1)
    q = received.get("query") or {}
    assert q.get("state") == [state], (q, call("GET", f"/session/{sid}/url"))
finally:
    if sid:
        try:
            call("DELETE", f"/session/{sid}")
        except Exception:
            pass
    try:
        os.killpg(driver.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    driver.wait(10)
    server.shutdown()
    shutil.rmtree(profile, ignore_errors=True)

tok = requests.post(base + "/token", verify=ca, timeout=30, data={
    "grant_type": "authorization_code", "code": q["code"][0], "redirect_uri": redirect_uri,
    "code_verifier": verifier, "client_id": client_id})
assert tok.status_code == 200, (tok.status_code, tok.text)
access = tok.json()["access_token"]
who = requests.get(base + "/api/v1/whoami", verify=ca, timeout=10, headers={"Authorization": "Bearer " + access})
assert who.status_code == 200 and who.json()["sub"] == user, (who.status_code, who.text)
denied = requests.get(base + "/api/v1/whoami", verify=ca, timeout=10, headers={"Authorization": "Bearer " + access[:-4] + "AAAA"})
assert denied.status_code == 401 and denied.json()["error"] == "invalid_token", denied.text
print(json.dumps({"ok": True, "sub": who.json()["sub"], "enrol_page": enrolled, "amr": who.json()["amr"]}))
