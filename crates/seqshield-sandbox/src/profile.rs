//! Sandbox profiles: the checked-in policy data files that say which
//! syscalls a step may make (each with a reason), which host paths it sees,
//! its default limits and whether it may use the network.
//!
//! Profiles are TOML and reject unknown keys. The built-in ones are
//! embedded in the binary (`profiles/*.toml`); `--profile` also takes a path.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use syscalls::x86_64::Sysno;

use crate::limits::Limits;
use crate::Error;

/// The default profile's name.
pub const DEFAULT_PROFILE: &str = "genomics-tools";

const BUILTIN: &[(&str, &str)] = &[("genomics-tools", include_str!("../profiles/genomics-tools.toml"))];

/// Names of the profiles built into the binary.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}

/// What happens to a syscall the profile does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DenyAction {
    /// The call fails with EPERM; the supervisor counts it by name.
    #[default]
    Errno,
    /// The whole step is killed at the first blocked call (which is named
    /// in the report).
    Kill,
}

impl DenyAction {
    /// Parses `errno` or `kill`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "errno" | "eperm" => Ok(Self::Errno),
            "kill" => Ok(Self::Kill),
            other => Err(Error::Profile(format!("unknown seccomp action `{other}` (expected `errno` or `kill`)"))),
        }
    }
}

/// One condition on a syscall argument, compared on its low 32 bits (what
/// the kernel reads for every flag, mode, command and domain argument).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgCondition {
    /// Argument index, 0 to 5.
    pub arg: u8,
    /// `(arg & mask) == equals` when set; otherwise `arg == equals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<u64>,
    /// The value to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<u64>,
    /// Alternatively: the argument is one of these values.
    #[serde(default, rename = "in", skip_serializing_if = "Vec::is_empty")]
    pub one_of: Vec<u64>,
}

/// A syscall the profile allows, perhaps only with some arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    /// The x86_64 syscall name.
    pub syscall: String,
    /// Why the tools need it.
    pub reason: String,
    /// Conditions that must all hold; empty means any arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<ArgCondition>,
}

/// A syscall answered with a fixed errno without reaching the kernel or the
/// supervisor (e.g. `clone3` → ENOSYS so that glibc falls back to `clone`,
/// whose flags the filter can inspect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrnoRule {
    /// The x86_64 syscall name.
    pub syscall: String,
    /// The errno name, e.g. `ENOSYS`.
    pub errno: String,
    /// Why.
    pub reason: String,
}

/// The seccomp part of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompPolicy {
    /// What a call outside the allow list gets.
    #[serde(default)]
    pub action: DenyAction,
    /// The allow list.
    pub allow: Vec<AllowRule>,
    /// Calls answered with a fixed errno.
    #[serde(default)]
    pub errno: Vec<ErrnoRule>,
}

/// The file-system view of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemPolicy {
    /// Host paths bound read-only at the same place (symlinks such as
    /// `/bin -> usr/bin` are recreated as symlinks). Absent paths are skipped
    /// and reported.
    pub ro: Vec<String>,
    /// Device nodes under /dev, bound from the host.
    #[serde(default = "default_dev")]
    pub dev: Vec<String>,
}

fn default_dev() -> Vec<String> {
    ["null", "zero", "full", "random", "urandom"].into_iter().map(String::from).collect()
}

/// A sandbox profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Whether the step gets the host network (off: a network namespace with
    /// no interfaces up, and landlock denies TCP bind/connect).
    #[serde(default)]
    pub network: bool,
    /// Capabilities the step keeps (names like `CAP_CHOWN`); default none.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Default limits, overridable per run.
    #[serde(default)]
    pub limits: Limits,
    /// Paths.
    pub filesystem: FilesystemPolicy,
    /// The syscall filter.
    pub seccomp: SeccompPolicy,
}

impl Profile {
    /// A built-in profile by name, or a profile file by path.
    pub fn load(name_or_path: &str) -> Result<Self, Error> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text, &format!("built-in profile {name_or_path}"));
        }
        let path = Path::new(name_or_path);
        if !name_or_path.contains('/') && !path.exists() {
            let known: Vec<_> = builtin_names().collect();
            return Err(Error::Profile(format!(
                "no profile named `{name_or_path}` (built in: {}; or give a path to a .toml file)",
                known.join(", ")
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Profile(format!("cannot read profile {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates profile text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let p: Profile = toml::from_str(text).map_err(|e| Error::Profile(format!("{origin}: {e}")))?;
        p.validate().map_err(|e| Error::Profile(format!("{origin}: {e}")))?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        for r in &self.seccomp.allow {
            let nr = sysno(&r.syscall)?;
            if r.reason.trim().is_empty() {
                return Err(format!("allowed syscall `{}` has no reason", r.syscall));
            }
            if let Some(prev_conditional) = seen.insert(nr, !r.when.is_empty()) {
                if !prev_conditional || r.when.is_empty() {
                    return Err(format!("syscall `{}` is allowed twice, once without conditions", r.syscall));
                }
            }
            for c in &r.when {
                if c.arg > 5 {
                    return Err(format!("`{}`: argument index {} > 5", r.syscall, c.arg));
                }
                let values = c.equals.iter().chain(c.mask.iter()).chain(&c.one_of);
                if values.clone().any(|v| *v > u64::from(u32::MAX)) {
                    return Err(format!(
                        "`{}`: argument values are compared on their low 32 bits; {:#x} is wider",
                        r.syscall,
                        values.max().copied().unwrap_or(0)
                    ));
                }
                match (c.equals.is_some(), c.one_of.is_empty()) {
                    (true, true) => {}
                    (false, false) if c.mask.is_none() => {}
                    _ => {
                        return Err(format!(
                            "`{}`: a condition needs either `equals` (with an optional `mask`) or `in`",
                            r.syscall
                        ))
                    }
                }
            }
        }
        for r in &self.seccomp.errno {
            let nr = sysno(&r.syscall)?;
            if seen.contains_key(&nr) {
                return Err(format!("syscall `{}` is both allowed and answered with an errno", r.syscall));
            }
            errno_value(&r.errno)?;
        }
        for required in ["execve", "read", "write"] {
            if !self.seccomp.allow.iter().any(|r| r.syscall == required && r.when.is_empty()) {
                return Err(format!(
                    "the allow list must include `{required}` without conditions (the sandbox hands over its seccomp listener and starts the tool with it)"
                ));
            }
        }
        for c in &self.capabilities {
            crate::sys::capability_number(c).ok_or_else(|| format!("unknown capability `{c}`"))?;
        }
        for p in &self.filesystem.ro {
            if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
                return Err(format!("read-only path `{p}` must be absolute, without `..`"));
            }
        }
        for d in &self.filesystem.dev {
            if d.is_empty() || d.contains('/') {
                return Err(format!("device `{d}` must be a plain name under /dev"));
            }
        }
        Ok(())
    }

    /// Syscall numbers the profile allows (with or without conditions).
    pub fn allowed(&self) -> Vec<Sysno> {
        let mut v: Vec<Sysno> = self.seccomp.allow.iter().filter_map(|r| r.syscall.parse().ok()).collect();
        v.sort_by_key(|s: &Sysno| s.id());
        v.dedup();
        v
    }

    /// How many x86_64 syscalls the profile blocks (neither allowed nor
    /// answered by a fixed errno rule counts as blocked; errno rules count
    /// as blocked too, since the call never runs).
    pub fn blocked_count(&self) -> usize {
        Sysno::iter().count() - self.allowed().len()
    }
}

/// Resolves an x86_64 syscall name.
pub(crate) fn sysno(name: &str) -> Result<Sysno, String> {
    name.parse::<Sysno>().map_err(|_| format!("`{name}` is not an x86_64 syscall name"))
}

/// Resolves an errno name (the ones a profile may use).
pub(crate) fn errno_value(name: &str) -> Result<i32, String> {
    Ok(match name {
        "EPERM" => libc::EPERM,
        "ENOSYS" => libc::ENOSYS,
        "EACCES" => libc::EACCES,
        "EINVAL" => libc::EINVAL,
        "ENOTSUP" | "EOPNOTSUPP" => libc::EOPNOTSUPP,
        other => return Err(format!("unknown errno `{other}` (EPERM, ENOSYS, EACCES, EINVAL, EOPNOTSUPP)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profile_parses_and_blocks_at_least_300() {
        let p = Profile::load(DEFAULT_PROFILE).unwrap();
        let total = Sysno::iter().count();
        assert!(total > 360, "x86_64 table has {total} syscalls");
        assert!(p.blocked_count() >= 300, "genomics-tools blocks only {} of {total}", p.blocked_count());
        for r in &p.seccomp.allow {
            assert!(r.reason.len() > 10, "{}: reason too short", r.syscall);
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let base = Profile::load(DEFAULT_PROFILE).unwrap();
        let mut text = toml::to_string(&base).unwrap();
        text.push('\n'); // still valid
        Profile::parse(&text, "t").unwrap();

        let bad = text.replacen("syscall = \"read\"", "syscall = \"raed\"", 1);
        let e = Profile::parse(&bad, "t").unwrap_err().to_string();
        assert!(e.contains("`raed` is not an x86_64 syscall"), "{e}");

        let unknown_key = format!("bogus = 1\n{text}");
        let e = Profile::parse(&unknown_key, "t").unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");

        let mut no_exec = base.clone();
        no_exec.seccomp.allow.retain(|r| r.syscall != "execve");
        let e = Profile::parse(&toml::to_string(&no_exec).unwrap(), "t").unwrap_err().to_string();
        assert!(e.contains("must include `execve`"), "{e}");

        let mut dup = base.clone();
        dup.seccomp.allow.push(dup.seccomp.allow[0].clone());
        let e = Profile::parse(&toml::to_string(&dup).unwrap(), "t").unwrap_err().to_string();
        assert!(e.contains("allowed twice"), "{e}");

        let mut wide = base.clone();
        wide.seccomp.allow.push(AllowRule {
            syscall: "personality".into(),
            reason: "testing a wide value".into(),
            when: vec![ArgCondition { arg: 0, mask: None, equals: Some(1 << 40), one_of: vec![] }],
        });
        let e = Profile::parse(&toml::to_string(&wide).unwrap(), "t").unwrap_err().to_string();
        assert!(e.contains("low 32 bits"), "{e}");

        assert!(Profile::load("no-such-profile").unwrap_err().to_string().contains("built in: genomics-tools"));
    }
}
