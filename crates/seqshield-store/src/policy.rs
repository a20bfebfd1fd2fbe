//! The storage policy: what each data classification gets at rest.
//!
//! A TOML data file (the embedded default is `policy/default.toml`): for
//! every [`Classification`], whether objects are encrypted or stored in the
//! clear with the format's integrity proof only, and whether the KEK must
//! be held by an HSM. Unknown keys, missing classes and a class protected
//! less than a lower one are refused.

use std::collections::BTreeMap;
use std::path::Path;

use seqshield_format::Classification;
use serde::Deserialize;

/// Where the KEK wrapping a class's data keys must live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KekRequirement {
    /// The gateway's KEK, file or HSM.
    Any,
    /// A KEK in a PKCS#11 token.
    Hsm,
}

impl KekRequirement {
    /// `any` or `hsm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Hsm => "hsm",
        }
    }
}

/// What one classification gets.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassRule {
    /// Encrypt the payload (else: integrity-only, stored in the clear).
    pub encrypt: bool,
    /// Where the KEK must live.
    pub kek: KekRequirement,
    /// Whether copies may go to replica (cloud) stores.
    pub replicate: bool,
    /// Why, in words (shown in errors and audit events).
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u32,
    class: BTreeMap<String, ClassRule>,
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not valid TOML for the schema.
    #[error("invalid storage policy: {0}")]
    Parse(String),
    /// A version other than 1.
    #[error("storage policy version {0} is not supported (expected 1)")]
    Version(u32),
    /// A class name that is not a classification.
    #[error("storage policy names an unknown class {0:?} (expected public, internal, restricted, controlled)")]
    UnknownClass(String),
    /// A classification without a rule.
    #[error("storage policy has no rule for class {0}")]
    MissingClass(&'static str),
    /// A rule without a reason.
    #[error("storage policy rule for class {0} has an empty reason")]
    NoReason(&'static str),
    /// A class protected less than a lower one.
    #[error("storage policy protects {higher} less than {lower} ({what})")]
    NotMonotonic {
        /// The lower class.
        lower: &'static str,
        /// The higher class.
        higher: &'static str,
        /// What is weaker.
        what: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read storage policy {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The storage policy: one [`ClassRule`] per classification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoragePolicy {
    rules: [ClassRule; 4],
}

const DEFAULT: &str = include_str!("../policy/default.toml");

impl StoragePolicy {
    /// The policy compiled into the binary.
    pub fn embedded_default() -> Self {
        Self::from_toml(DEFAULT).expect("the embedded storage policy is valid")
    }

    /// The text of the embedded default, for operators to copy.
    pub fn embedded_default_text() -> &'static str {
        DEFAULT
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::Io { path: path.display().to_string(), source })?;
        Self::from_toml(&text)
    }

    /// Parses and checks a policy.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Parse(e.message().to_owned()))?;
        if file.version != 1 {
            return Err(PolicyError::Version(file.version));
        }
        let mut slots: [Option<ClassRule>; 4] = Default::default();
        for (name, rule) in file.class {
            let c: Classification = name.parse().map_err(|_| PolicyError::UnknownClass(name.clone()))?;
            if rule.reason.trim().is_empty() {
                return Err(PolicyError::NoReason(c.as_str()));
            }
            slots[usize::from(c.code())] = Some(rule);
        }
        let mut rules = Vec::with_capacity(4);
        for (i, slot) in slots.into_iter().enumerate() {
            let c = Classification::ALL[i];
            rules.push(slot.ok_or(PolicyError::MissingClass(c.as_str()))?);
        }
        for i in 1..4 {
            let (lo, hi) = (&rules[i - 1], &rules[i]);
            let (lower, higher) = (Classification::ALL[i - 1].as_str(), Classification::ALL[i].as_str());
            if lo.encrypt && !hi.encrypt {
                return Err(PolicyError::NotMonotonic { lower, higher, what: "encryption" });
            }
            if lo.kek > hi.kek {
                return Err(PolicyError::NotMonotonic { lower, higher, what: "KEK custody" });
            }
            if !lo.replicate && hi.replicate {
                return Err(PolicyError::NotMonotonic { lower, higher, what: "replication" });
            }
        }
        let rules: [ClassRule; 4] = rules.try_into().expect("four classes");
        Ok(Self { rules })
    }

    /// The rule for `c`.
    pub fn rule(&self, c: Classification) -> &ClassRule {
        &self.rules[usize::from(c.code())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_encrypts_all_but_public_and_needs_an_hsm_for_controlled() {
        let p = StoragePolicy::embedded_default();
        assert!(!p.rule(Classification::Public).encrypt);
        assert!(p.rule(Classification::Internal).encrypt);
        assert!(p.rule(Classification::Restricted).encrypt);
        assert_eq!(p.rule(Classification::Restricted).kek, KekRequirement::Any);
        assert_eq!(p.rule(Classification::Controlled).kek, KekRequirement::Hsm);
    }

    fn with(public: &str, controlled: &str) -> String {
        format!(
            "version = 1\n[class.public]\n{public}\nreplicate = true\nreason = \"r\"\n\
             [class.internal]\nencrypt = true\nkek = \"any\"\nreplicate = true\nreason = \"r\"\n\
             [class.restricted]\nencrypt = true\nkek = \"any\"\nreplicate = false\nreason = \"r\"\n\
             [class.controlled]\n{controlled}\nreplicate = false\nreason = \"r\"\n"
        )
    }

    #[test]
    fn weaker_higher_classes_missing_classes_and_unknown_keys_are_refused() {
        let ok = with("encrypt = false\nkek = \"any\"", "encrypt = true\nkek = \"hsm\"");
        StoragePolicy::from_toml(&ok).unwrap();
        let e = StoragePolicy::from_toml(&with("encrypt = false\nkek = \"any\"", "encrypt = false\nkek = \"hsm\""));
        assert!(matches!(e, Err(PolicyError::NotMonotonic { what: "encryption", .. })), "{e:?}");
        let e = StoragePolicy::from_toml(&with("encrypt = true\nkek = \"hsm\"", "encrypt = true\nkek = \"hsm\""));
        assert!(matches!(e, Err(PolicyError::NotMonotonic { what: "KEK custody", .. })), "{e:?}");
        let e = StoragePolicy::from_toml(&ok.replace("[class.internal]", "[class.secret]"));
        assert!(matches!(e, Err(PolicyError::UnknownClass(_))), "{e:?}");
        let e = StoragePolicy::from_toml(&ok.replace("encrypt = false", "encrypt = false\nzip = true"));
        assert!(matches!(e, Err(PolicyError::Parse(_))), "{e:?}");
        let e = StoragePolicy::from_toml(&ok.replace("replicate = false", "replicate = true").replacen(
            "replicate = true",
            "replicate = false",
            1,
        ));
        assert!(matches!(e, Err(PolicyError::NotMonotonic { what: "replication", .. })), "{e:?}");
        let e = StoragePolicy::from_toml(&ok.replace("version = 1", "version = 2"));
        assert!(matches!(e, Err(PolicyError::Version(2))), "{e:?}");
        let cut: String = ok.split("[class.controlled]").next().unwrap().to_owned();
        assert!(matches!(StoragePolicy::from_toml(&cut), Err(PolicyError::MissingClass("controlled"))));
        let e = StoragePolicy::from_toml(&ok.replacen("reason = \"r\"", "reason = \" \"", 1));
        assert!(matches!(e, Err(PolicyError::NoReason("public"))), "{e:?}");
    }
}
