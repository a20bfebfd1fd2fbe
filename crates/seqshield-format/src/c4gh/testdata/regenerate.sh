#!/usr/bin/env bash
# Regenerates the Crypt4GH spec vectors in this folder with the GA4GH
# reference implementation (python crypt4gh 1.8.6, installed by
# scripts/setup). The unit tests in ../ read these files; the secret keys are
# throwaway test keys. Passphrase of every encrypted key: "correct horse".
set -euo pipefail
cd "$(dirname "$0")"
VENV=../../../../../.venv/bin
PASS="correct horse"
rm -f alice.* bob.* hello*

# Keygen reads the passphrase twice from stdin (getpass, no tty under setsid).
printf '%s\n%s\n' "$PASS" "$PASS" | setsid -w "$VENV/crypt4gh-keygen" -f --sk alice.scrypt.sec --pk alice.pub -C alice >/dev/null
"$VENV/crypt4gh-keygen" -f --nocrypt --sk bob.sec --pk bob.pub >/dev/null 2>&1

# The same secret key under every other KDF the reader supports.
"$VENV/python" - "$PASS" <<'PY'
import sys, os
from base64 import b64encode
from crypt4gh.keys import get_private_key, c4gh, kdf
passphrase = sys.argv[1].encode()
sk = get_private_key('alice.scrypt.sec', lambda: sys.argv[1])
def write(name, kdfname):
    if kdfname is None:
        blob = c4gh.encode_private_key(sk, None, None)
    else:
        saltsize, rounds = kdf.get_kdf(kdfname)
        salt = os.urandom(saltsize)
        key = kdf.derive_key(kdfname, passphrase, salt, rounds)
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
        nonce = os.urandom(12)
        blob = (c4gh.MAGIC_WORD + c4gh.encode_string(kdfname)
                + c4gh.encode_string(rounds.to_bytes(4, 'big') + salt)
                + c4gh.encode_string(b'chacha20_poly1305')
                + c4gh.encode_string(nonce + ChaCha20Poly1305(key).encrypt(nonce, sk, None)))
    with open(name, 'wb') as f:
        f.write(b'-----BEGIN CRYPT4GH PRIVATE KEY-----\n' + b64encode(blob)
                + b'\n-----END CRYPT4GH PRIVATE KEY-----\n')
write('alice.nocrypt.sec', None)
write('alice.bcrypt.sec', b'bcrypt')
write('alice.pbkdf2.sec', b'pbkdf2_hmac_sha256')
PY

# 1000 bytes of DNA, encrypted for bob then alice (alice's packet is second).
"$VENV/python" -c "import random; r = random.Random(4); print(''.join(r.choice('ACGT') for _ in range(999)))" > hello.txt
"$VENV/crypt4gh" encrypt --recipient_pk bob.pub --recipient_pk alice.pub < hello.txt > hello.c4gh
# An edit list (skip 10, keep 489) added by the reference for alice.
C4GH_PASSPHRASE="$PASS" "$VENV/crypt4gh" rearrange --sk alice.scrypt.sec --range 10-500 < hello.c4gh > hello.edited.c4gh 2>/dev/null
C4GH_PASSPHRASE="$PASS" "$VENV/crypt4gh" decrypt --sk alice.scrypt.sec < hello.edited.c4gh > hello.edited.txt 2>/dev/null
rm -f bob.sec
