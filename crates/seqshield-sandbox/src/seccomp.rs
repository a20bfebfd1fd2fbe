//! Compiles a profile's allow list into a classic-BPF seccomp filter.
//!
//! Layout: check the architecture (anything but x86_64 is killed), kill x32
//! calls, then one `jeq nr` per allowed syscall returning ALLOW (calls with
//! argument conditions get a small block), then the default action. Calls
//! allowed without conditions never read their arguments, so the kernel's
//! seccomp action cache lets them through without running the filter.
//!
//! The default action is `SECCOMP_RET_USER_NOTIF`: the supervisor in the
//! parent counts the call by name and answers EPERM (or kills the step).
//! Why not a crate: `seccompiler` (Firecracker's) has no user-notification
//! action, which is what makes per-syscall counts possible.

use syscalls::x86_64::Sysno;

use crate::profile::{errno_value, sysno, Profile};

/// `struct sock_filter`.
pub(crate) type Insn = libc::sock_filter;

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// A compiled filter.
#[derive(Clone)]
pub(crate) struct Filter {
    pub(crate) insns: Vec<Insn>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} instructions)", self.insns.len())
    }
}

/// Compiles the profile's filter with `default` as the action for every
/// call it does not allow.
pub(crate) fn compile(profile: &Profile, default: u32) -> Result<Filter, String> {
    let mut p = vec![
        insn(LD_W_ABS, 0, 0, OFF_ARCH),
        insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, RET_KILL_PROCESS),
        insn(LD_W_ABS, 0, 0, OFF_NR),
        insn(JGE_K, 0, 1, X32_SYSCALL_BIT),
        insn(RET_K, 0, 0, RET_KILL_PROCESS),
    ];
    // Unconditional allows first, then fixed-errno answers, then the
    // conditional blocks (each ends in a return, so the accumulator may be
    // clobbered inside them).
    for r in profile.seccomp.allow.iter().filter(|r| r.when.is_empty()) {
        let nr = sysno(&r.syscall)?.id() as u32;
        p.push(insn(JEQ_K, 0, 1, nr));
        p.push(insn(RET_K, 0, 0, RET_ALLOW));
    }
    for r in &profile.seccomp.errno {
        let nr = sysno(&r.syscall)?.id() as u32;
        let e = errno_value(&r.errno)? as u32;
        p.push(insn(JEQ_K, 0, 1, nr));
        p.push(insn(RET_K, 0, 0, RET_ERRNO | (e & 0xffff)));
    }
    // Group conditional alternatives by syscall: each alternative is a
    // conjunction; the first that holds allows the call.
    let mut groups: Vec<(u32, Vec<&crate::profile::AllowRule>)> = Vec::new();
    for r in profile.seccomp.allow.iter().filter(|r| !r.when.is_empty()) {
        let nr = sysno(&r.syscall)?.id() as u32;
        match groups.iter_mut().find(|(n, _)| *n == nr) {
            Some((_, v)) => v.push(r),
            None => groups.push((nr, vec![r])),
        }
    }
    for (nr, alts) in groups {
        let mut block: Vec<Insn> = Vec::new();
        for alt in alts {
            let mut conj: Vec<Vec<Insn>> = Vec::new();
            for c in &alt.when {
                let mut ci = vec![insn(LD_W_ABS, 0, 0, off_arg_lo(c.arg))];
                if let Some(m) = c.mask {
                    ci.push(insn(AND_K, 0, 0, m as u32));
                }
                let values: Vec<u32> = match c.equals {
                    Some(v) => vec![v as u32],
                    None => c.one_of.iter().map(|v| *v as u32).collect(),
                };
                // Any value matches → fall through to the next condition;
                // none → jump to the next alternative (patched below).
                let n = values.len();
                for (i, v) in values.iter().enumerate() {
                    let remaining = (n - 1 - i) as u8;
                    if i + 1 < n {
                        ci.push(insn(JEQ_K, remaining, 0, *v));
                    } else {
                        // last value: match → next condition, else → fail
                        ci.push(insn(JEQ_K, 0, u8::MAX, *v));
                    }
                }
                conj.push(ci);
            }
            // Lay out the conjunction, then ALLOW; failing jumps go past
            // the ALLOW (to the next alternative or the default).
            let mut alt_insns: Vec<Insn> = conj.into_iter().flatten().collect();
            alt_insns.push(insn(RET_K, 0, 0, RET_ALLOW));
            let len = alt_insns.len();
            for (i, ins) in alt_insns.iter_mut().enumerate() {
                if ins.code == JEQ_K && ins.jf == u8::MAX {
                    let to_end = len - 1 - i; // instructions after this one, up to and incl. ALLOW
                    ins.jf = u8::try_from(to_end).map_err(|_| "argument block too long".to_string())?;
                }
            }
            block.extend(alt_insns);
        }
        block.push(insn(RET_K, 0, 0, default));
        // The jump over the block re-reads nothing: the accumulator still
        // holds nr when the block is skipped.
        let skip = u8::try_from(block.len()).map_err(|_| "argument block too long".to_string())?;
        p.push(insn(JEQ_K, 0, skip, nr));
        p.extend(block);
    }
    p.push(insn(RET_K, 0, 0, default));
    if p.len() > 4096 {
        return Err(format!("filter has {} instructions (BPF limit 4096)", p.len()));
    }
    Ok(Filter { insns: p })
}

/// A filter that sends every call to the supervisor (learning mode),
/// except `read` and `write`: the hand-over of the listener itself uses
/// them before anyone listens. Drafts always allow both.
pub(crate) fn learn_filter() -> Filter {
    let read = Sysno::read.id() as u32;
    let write = Sysno::write.id() as u32;
    Filter {
        insns: vec![
            insn(LD_W_ABS, 0, 0, OFF_ARCH),
            insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            insn(RET_K, 0, 0, RET_KILL_PROCESS),
            insn(LD_W_ABS, 0, 0, OFF_NR),
            insn(JEQ_K, 1, 0, read),
            insn(JEQ_K, 0, 1, write),
            insn(RET_K, 0, 0, RET_ALLOW),
            insn(RET_K, 0, 0, RET_USER_NOTIF),
        ],
    }
}

/// The syscall name for a number, or `syscall_N`.
pub fn syscall_name(nr: i32) -> String {
    Sysno::new(nr as usize).map(|s| s.name().to_string()).unwrap_or_else(|| format!("syscall_{nr}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::profile::DEFAULT_PROFILE;

    /// A classic-BPF interpreter for the subset the compiler emits.
    pub(crate) fn run(f: &Filter, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = f.insns[pc];
            match i.code {
                LD_W_ABS => {
                    let o = i.k as usize;
                    acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                    pc += 1;
                }
                AND_K => {
                    acc &= i.k;
                    pc += 1;
                }
                JEQ_K => pc += 1 + if acc == i.k { i.jt } else { i.jf } as usize,
                JGE_K => pc += 1 + if acc >= i.k { i.jt } else { i.jf } as usize,
                RET_K => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn nr(name: &str) -> u32 {
        sysno(name).unwrap().id() as u32
    }

    #[test]
    fn filter_decisions() {
        let p = Profile::load(DEFAULT_PROFILE).unwrap();
        let f = compile(&p, RET_USER_NOTIF).unwrap();
        let x = AUDIT_ARCH_X86_64;
        let z = [0u64; 6];
        assert_eq!(run(&f, x, nr("read"), z), RET_ALLOW);
        assert_eq!(run(&f, x, nr("execve"), z), RET_ALLOW);
        assert_eq!(run(&f, x, nr("ptrace"), z), RET_USER_NOTIF);
        assert_eq!(run(&f, x, nr("mount"), z), RET_USER_NOTIF);
        assert_eq!(run(&f, x, nr("bpf"), z), RET_USER_NOTIF);
        // other architectures and x32 calls are killed outright
        assert_eq!(run(&f, 0x4000_0003, nr("read"), z), RET_KILL_PROCESS);
        assert_eq!(run(&f, x, X32_SYSCALL_BIT | nr("read"), z), RET_KILL_PROCESS);
        // clone3 is answered ENOSYS so glibc falls back to clone
        assert_eq!(run(&f, x, nr("clone3"), z), RET_ERRNO | libc::ENOSYS as u32);
        // clone: threads and fork yes, new namespaces no
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(run(&f, x, nr("clone"), [thread_flags, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, x, nr("clone"), [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), RET_ALLOW);
        for ns in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWCGROUP,
        ] {
            let flags = ns as u64 | libc::SIGCHLD as u64;
            assert_eq!(run(&f, x, nr("clone"), [flags, 0, 0, 0, 0, 0]), RET_USER_NOTIF, "{ns:#x}");
        }
        // ioctl: terminal queries yes, TIOCSTI no
        assert_eq!(run(&f, x, nr("ioctl"), [1, libc::TCGETS, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, x, nr("ioctl"), [1, libc::TIOCGWINSZ, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, x, nr("ioctl"), [0, libc::TIOCSTI, 0, 0, 0, 0]), RET_USER_NOTIF);
        // high bits of a 32-bit argument are ignored, as the kernel ignores them
        assert_eq!(run(&f, x, nr("ioctl"), [0, (1 << 32) | libc::TIOCSTI, 0, 0, 0, 0]), RET_USER_NOTIF);
        // chmod without setuid/setgid bits only
        assert_eq!(run(&f, x, nr("fchmodat"), [0, 0, 0o644, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, x, nr("fchmodat"), [0, 0, 0o4755, 0, 0, 0]), RET_USER_NOTIF);
        assert_eq!(run(&f, x, nr("fchmod"), [3, 0o2755, 0, 0, 0, 0]), RET_USER_NOTIF);
        assert_eq!(run(&f, x, nr("chmod"), [0, 0o755, 0, 0, 0, 0]), RET_ALLOW);
        // kill mode uses the same layout
        let k = compile(&p, RET_KILL_PROCESS).unwrap();
        assert_eq!(run(&k, x, nr("ptrace"), z), RET_KILL_PROCESS);
        assert_eq!(run(&k, x, nr("ioctl"), [0, libc::TIOCSTI, 0, 0, 0, 0]), RET_KILL_PROCESS);
    }

    #[test]
    fn every_syscall_gets_exactly_the_profile_decision() {
        let p = Profile::load(DEFAULT_PROFILE).unwrap();
        let f = compile(&p, RET_USER_NOTIF).unwrap();
        let allowed = p.allowed();
        let mut blocked = 0;
        for s in Sysno::iter() {
            let r = run(&f, AUDIT_ARCH_X86_64, s.id() as u32, [0; 6]);
            let conditional = p.seccomp.allow.iter().any(|a| a.syscall == s.name() && !a.when.is_empty());
            if allowed.contains(&s) && !conditional {
                assert_eq!(r, RET_ALLOW, "{}", s.name());
            } else if !allowed.contains(&s) {
                assert_ne!(r, RET_ALLOW, "{}", s.name());
                blocked += 1;
            }
        }
        assert!(blocked >= 300, "{blocked}");
    }

    #[test]
    fn learning_filter_lets_the_hand_over_through() {
        let f = learn_filter();
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(run(&f, x, nr("read"), [0; 6]), RET_ALLOW);
        assert_eq!(run(&f, x, nr("write"), [0; 6]), RET_ALLOW);
        assert_eq!(run(&f, x, nr("execve"), [0; 6]), RET_USER_NOTIF);
        assert_eq!(run(&f, x, nr("ptrace"), [0; 6]), RET_USER_NOTIF);
        assert_eq!(run(&f, 0x4000_0003, nr("read"), [0; 6]), RET_KILL_PROCESS);
    }

    #[test]
    fn multi_value_and_multi_condition_blocks() {
        let text = r#"
name = "t"
description = "test"
[filesystem]
ro = ["/usr"]
[seccomp]
allow = [
  { syscall = "read", reason = "reading input" },
  { syscall = "write", reason = "writing output" },
  { syscall = "execve", reason = "starting the tool" },
  { syscall = "socket", reason = "unix sockets only", when = [{ arg = 0, in = [1] }, { arg = 1, mask = 0xf, equals = 1 }] },
  { syscall = "socket", reason = "or netlink route", when = [{ arg = 0, equals = 16 }, { arg = 2, in = [0, 9, 0] }] },
]
"#;
        let p = Profile::parse(text, "t").unwrap();
        let f = compile(&p, RET_ERRNO | 1).unwrap();
        let s = nr("socket");
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(run(&f, x, s, [1, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, x, s, [1, 0x801, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, x, s, [1, 2, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(run(&f, x, s, [2, 1, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(run(&f, x, s, [16, 3, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, x, s, [16, 3, 9, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, x, s, [16, 3, 4, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(run(&f, x, nr("open"), [0; 6]), RET_ERRNO | 1);
    }
}
