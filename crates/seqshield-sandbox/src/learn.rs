//! Turning what a learning run saw into a profile draft.

use std::collections::BTreeMap;

use crate::profile::{AllowRule, ErrnoRule, Profile, SeccompPolicy};

/// A profile draft that allows exactly the syscalls seen (`counts`, by
/// name), based on `base` for everything but the allow list. Calls that
/// must keep their argument conditions (`clone`, `ioctl`, `chmod`,
/// `fchmodat`) keep the base profile's conditions when it has them.
pub fn draft_profile(base: &Profile, counts: &BTreeMap<String, u64>, command: &str) -> Profile {
    let mut allow = Vec::new();
    let mut names: Vec<&String> = counts.keys().collect();
    names.sort();
    for name in names {
        if name == "clone3" {
            continue; // answered ENOSYS below, so glibc uses clone(2)
        }
        let base_rules: Vec<&AllowRule> = base.seccomp.allow.iter().filter(|r| &r.syscall == name).collect();
        if !base_rules.is_empty() {
            allow.extend(base_rules.into_iter().cloned());
        } else {
            allow.push(AllowRule {
                syscall: name.clone(),
                reason: format!(
                    "LEARNED: called {} times by `{command}`; say why it is needed or remove it",
                    counts[name]
                ),
                when: Vec::new(),
            });
        }
    }
    for required in ["execve", "read", "write"] {
        if !allow.iter().any(|r| r.syscall == required) {
            allow.push(AllowRule {
                syscall: required.into(),
                reason: "required by the sandbox to start the tool".into(),
                when: Vec::new(),
            });
        }
    }
    let errno = vec![ErrnoRule {
        syscall: "clone3".into(),
        errno: "ENOSYS".into(),
        reason: "glibc falls back to clone(2), whose flags the filter can inspect".into(),
    }];
    Profile {
        name: format!("{}-learned", base.name),
        description: format!("DRAFT learned from `{command}`; review every entry before use"),
        network: base.network,
        capabilities: Vec::new(),
        limits: base.limits.clone(),
        filesystem: base.filesystem.clone(),
        seccomp: SeccompPolicy { action: base.seccomp.action, allow, errno },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::DEFAULT_PROFILE;

    #[test]
    fn draft_keeps_conditions_and_marks_new_calls() {
        let base = Profile::load(DEFAULT_PROFILE).unwrap();
        let counts: BTreeMap<String, u64> =
            [("read", 10), ("clone", 2), ("clone3", 2), ("socket", 1), ("execve", 1), ("write", 3)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let d = draft_profile(&base, &counts, "tool --x");
        let text = toml::to_string(&d).unwrap();
        let back = Profile::parse(&text, "draft").unwrap();
        assert!(back.seccomp.allow.iter().any(|r| r.syscall == "clone" && !r.when.is_empty()));
        let sock = back.seccomp.allow.iter().find(|r| r.syscall == "socket").unwrap();
        assert!(sock.reason.starts_with("LEARNED: called 1 times"));
        assert!(!back.seccomp.allow.iter().any(|r| r.syscall == "clone3"));
        assert_eq!(back.seccomp.errno[0].syscall, "clone3");
    }
}
