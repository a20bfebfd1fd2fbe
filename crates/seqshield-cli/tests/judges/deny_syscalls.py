#!/usr/bin/env python3
"""Runs a command with kernel features taken away, to test what the sandbox
says when they are missing. A seccomp filter (installed with ctypes; no
third-party code) makes:
  --no-landlock   landlock_create_ruleset fail with ENOSYS (as on a kernel
                  without CONFIG_SECURITY_LANDLOCK);
  --no-userns     clone/unshare with CLONE_NEWUSER fail with EPERM (as with
                  user.max_user_namespaces=0 or an AppArmor restriction).
usage: deny_syscalls.py [--no-landlock] [--no-userns] -- CMD ARGS...
"""
import ctypes
import os
import struct
import sys

args = sys.argv[1:]
sep = args.index("--")
opts, cmd = set(args[:sep]), args[sep + 1:]
unknown = opts - {"--no-landlock", "--no-userns"}
if unknown or not cmd:
    sys.exit(__doc__)

LD_NR, LD_ARG0 = (0x20, 0), (0x20, 16)
RET_ALLOW, ERRNO = 0x7FFF0000, 0x00050000
ENOSYS, EPERM = 38, 1
CLONE_NEWUSER = 0x10000000
SYS_CLONE, SYS_UNSHARE, SYS_LANDLOCK_CREATE_RULESET = 56, 272, 444


def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


prog = []
if "--no-landlock" in opts:
    prog += [insn(0x20, 0, 0, 0), insn(0x15, 0, 1, SYS_LANDLOCK_CREATE_RULESET), insn(0x06, 0, 0, ERRNO | ENOSYS)]
if "--no-userns" in opts:
    for nr, arg in ((SYS_CLONE, 16), (SYS_UNSHARE, 16)):
        prog += [
            insn(0x20, 0, 0, 0),
            insn(0x15, 0, 5, nr),          # not this call: skip the block
            insn(0x20, 0, 0, arg),         # flags, low word
            insn(0x54, 0, 0, CLONE_NEWUSER),
            insn(0x15, 1, 0, 0),           # no CLONE_NEWUSER: allow
            insn(0x06, 0, 0, ERRNO | EPERM),
            insn(0x06, 0, 0, RET_ALLOW),
        ]
prog.append(insn(0x06, 0, 0, RET_ALLOW))

buf = ctypes.create_string_buffer(b"".join(prog))


class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


fp = Fprog(len(prog), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
    sys.exit("prctl(NO_NEW_PRIVS) failed")
if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fp), 0, 0) != 0:
    sys.exit(f"installing the filter failed: errno {ctypes.get_errno()}")
os.execv(cmd[0], cmd)
