//! Landlock rules for a step: read-only everywhere, writable only on the
//! declared read-write mounts, /tmp and the harmless devices; TCP denied
//! without the network switch; signals and abstract UNIX sockets scoped to
//! the sandbox where the kernel's ABI allows.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use serde::Serialize;

use crate::sys::LandlockPlan;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;

const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;

const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

const FS_NAMES: [&str; 16] = [
    "execute",
    "write_file",
    "read_file",
    "read_dir",
    "remove_dir",
    "remove_file",
    "make_char",
    "make_dir",
    "make_reg",
    "make_sock",
    "make_fifo",
    "make_block",
    "make_sym",
    "refer",
    "truncate",
    "ioctl_dev",
];

/// What landlock enforces, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct LandlockReport {
    /// The kernel's landlock ABI version in use.
    pub abi: i32,
    /// File-system rights the ruleset handles (denied unless a rule grants).
    pub handled_fs: Vec<&'static str>,
    /// Network rights handled (TCP bind/connect denied), ABI 4+.
    pub handled_net: Vec<&'static str>,
    /// Scopes (ABI 6+): signals and abstract UNIX sockets stay inside.
    pub scoped: Vec<&'static str>,
    /// The rules: path and rights granted.
    pub rules: Vec<String>,
}

pub(crate) struct Planned {
    pub(crate) plan: LandlockPlan,
    pub(crate) report: LandlockReport,
    pub(crate) rules_desc: Vec<String>,
}

fn names(bits: u64) -> Vec<&'static str> {
    FS_NAMES.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, n)| *n).collect()
}

/// The file-system rights an ABI version knows.
pub(crate) fn handled_fs(abi: i32) -> u64 {
    let mut fs = (1 << 13) - 1;
    if abi >= 2 {
        fs |= REFER;
    }
    if abi >= 3 {
        fs |= TRUNCATE;
    }
    if abi >= 5 {
        fs |= IOCTL_DEV;
    }
    fs
}

pub(crate) fn plan(abi: i32, rw: &[PathBuf], devices: &[PathBuf], network: bool) -> Planned {
    let fs = handled_fs(abi);
    let net = if abi >= 4 && !network { NET_BIND_TCP | NET_CONNECT_TCP } else { 0 };
    let mut scoped = 0;
    if abi >= 6 {
        scoped |= SCOPE_SIGNAL;
        if !network {
            scoped |= SCOPE_ABSTRACT_UNIX_SOCKET;
        }
    }
    let attr_size = match abi {
        ..=3 => 8,
        4 | 5 => 16,
        _ => 24,
    };
    let read_only = READ_FILE | READ_DIR | EXECUTE;
    let read_write = READ_FILE
        | READ_DIR
        | WRITE_FILE
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_SYM
        | REFER
        | TRUNCATE;
    let device = READ_FILE | WRITE_FILE | TRUNCATE;
    let _ = (MAKE_CHAR, MAKE_BLOCK);
    let mut rules: Vec<(PathBuf, u64)> = vec![(PathBuf::from("/"), read_only)];
    rules.extend(rw.iter().map(|p| (p.clone(), read_write)));
    rules.extend(devices.iter().map(|p| (p.clone(), device)));
    let desc: Vec<String> =
        rules.iter().map(|(p, a)| format!("{}: {}", p.display(), names(a & fs).join(","))).collect();
    let plan = LandlockPlan {
        attr_size,
        handled_fs: fs,
        handled_net: net,
        scoped,
        rules: rules
            .iter()
            .map(|(p, a)| (CString::new(p.as_os_str().as_bytes()).unwrap_or_default(), a & fs))
            .collect(),
    };
    let report = LandlockReport {
        abi,
        handled_fs: names(fs),
        handled_net: [(NET_BIND_TCP, "bind_tcp"), (NET_CONNECT_TCP, "connect_tcp")]
            .into_iter()
            .filter(|(b, _)| net & b != 0)
            .map(|(_, n)| n)
            .collect(),
        scoped: [(SCOPE_ABSTRACT_UNIX_SOCKET, "abstract_unix_socket"), (SCOPE_SIGNAL, "signal")]
            .into_iter()
            .filter(|(b, _)| scoped & b != 0)
            .map(|(_, n)| n)
            .collect(),
        rules: desc.clone(),
    };
    Planned { plan, report, rules_desc: rules.iter().map(|(p, _)| p.display().to_string()).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_follow_the_abi() {
        let p = plan(1, &[PathBuf::from("/work")], &[], false);
        assert_eq!(p.plan.handled_fs, (1 << 13) - 1);
        assert_eq!((p.plan.handled_net, p.plan.scoped, p.plan.attr_size), (0, 0, 8));
        // rules never grant what the ABI does not handle
        assert!(p.plan.rules.iter().all(|(_, a)| a & !p.plan.handled_fs == 0));
        let p = plan(7, &[PathBuf::from("/work")], &[PathBuf::from("/dev/null")], false);
        assert_eq!(p.plan.handled_fs, (1 << 16) - 1);
        assert_eq!(p.plan.handled_net, 3);
        assert_eq!(p.plan.scoped, 3);
        assert_eq!(p.plan.attr_size, 24);
        let root = &p.plan.rules[0];
        assert_eq!(root.0.to_str().unwrap(), "/");
        assert_eq!(root.1 & WRITE_FILE, 0, "root is read-only");
        let work = &p.plan.rules[1];
        assert_ne!(work.1 & WRITE_FILE, 0);
        assert_eq!(work.1 & (MAKE_CHAR | MAKE_BLOCK | IOCTL_DEV), 0, "no device nodes in the work dir");
        // the network switch lifts TCP and abstract-socket scoping, not signals
        let n = plan(7, &[], &[], true);
        assert_eq!((n.plan.handled_net, n.plan.scoped), (0, SCOPE_SIGNAL));
        assert!(p.report.rules[0].starts_with("/: execute,read_file,read_dir"));
    }
}
