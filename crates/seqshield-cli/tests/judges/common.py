"""Helpers shared by the outside-judge scripts: RFC 6238 TOTP, PKCE, form scraping."""
import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
import urllib.parse


def totp(secret_b32, at=None, step=30, digits=6):
    """RFC 6238 TOTP (HMAC-SHA1), independent of seqshield's implementation."""
    pad = "=" * (-len(secret_b32) % 8)
    key = base64.b32decode(secret_b32.upper() + pad)
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return str(code).zfill(digits)


def secret_from_uri(uri):
    q = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
    return q["secret"][0]


def pkce_pair():
    verifier = secrets.token_urlsafe(48)[:64]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_login(html):
    m = re.search(r'name="login" value="([^"]+)"', html)
    if not m:
        raise SystemExit("no login id in page:\n" + html[:2000])
    return m.group(1)


def fresh_code(secret_b32, used):
    """A TOTP code for a step not used before in this run (waits for the next step if needed)."""
    while True:
        step = int(time.time() // 30)
        if step not in used:
            used.add(step)
            return totp(secret_b32)
        time.sleep(0.5)
