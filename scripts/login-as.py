"""Plays the browser for `seqshield login --no-browser`, for scripts that
need a real user token without a person at the keyboard (benchmarks, the
demo): reads the authorization URL the CLI prints, signs in on the
gateway's pages with the password and a TOTP code computed from the
account's otpauth URI, and follows the redirect to the CLI's loopback
listener. The CLI itself exchanges the code and saves the token.

Usage: login-as.py SEQSHIELD URL CA_PEM USER PASSWORD_FILE OTPAUTH_URI [SCOPE]
(run with the same XDG_CONFIG_HOME the later commands will use)."""
import os
import subprocess
import sys
import urllib.parse

import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "crates", "seqshield-cli", "tests", "judges"))
from common import fresh_code, hidden_login, secret_from_uri  # noqa: E402

sq, base, ca, user, pw_file, uri = sys.argv[1:7]
scope = sys.argv[7] if len(sys.argv) > 7 else "openid data:read data:write jobs:submit"
password = open(pw_file).read().strip()

cli = subprocess.Popen([sq, "login", "--no-browser", "--server", base, "--ca-cert", ca, "--scope", scope],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
url = None
for line in cli.stderr:
    line = line.strip()
    if line.startswith("https://") and "/authorize?" in line:
        url = line
        break
if url is None:
    cli.kill()
    raise SystemExit("seqshield login printed no authorization URL")

http = requests.Session()
http.trust_env = False
http.verify = ca
page = http.get(url, timeout=30)
page.raise_for_status()
page = http.post(base + "/authorize/password",
                 data={"login": hidden_login(page.text), "username": user, "password": password}, timeout=60)
page.raise_for_status()
r = http.post(base + "/authorize/totp",
              data={"login": hidden_login(page.text), "code": fresh_code(secret_from_uri(uri), set())},
              allow_redirects=False, timeout=30)
if r.status_code not in (302, 303):
    cli.kill()
    raise SystemExit("sign-in failed: %d %s" % (r.status_code, r.text[:300]))
loopback = r.headers["Location"]
assert urllib.parse.urlparse(loopback).hostname == "127.0.0.1", loopback
requests.get(loopback, timeout=30)
rest, err = cli.communicate(timeout=60)
if cli.returncode != 0:
    raise SystemExit("seqshield login failed: " + err)
