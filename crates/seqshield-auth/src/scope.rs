//! OAuth scopes (RFC 6749 §3.3): a set of space-separated tokens.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Most scopes one request or token may carry.
pub const MAX_SCOPES: usize = 64;
/// Longest single scope token, in bytes.
pub const MAX_SCOPE_LEN: usize = 128;

/// A set of scope tokens, kept sorted so its text form is canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<String>);

/// A scope string that is not a valid RFC 6749 §3.3 scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// A token has a character outside `%x21 / %x23-5B / %x5D-7E`.
    #[error("scope token {0:?} has a character that RFC 6749 §3.3 does not allow")]
    BadCharacter(String),
    /// A token is longer than [`MAX_SCOPE_LEN`].
    #[error("a scope token is longer than {MAX_SCOPE_LEN} bytes")]
    TooLong,
    /// More than [`MAX_SCOPES`] tokens.
    #[error("more than {MAX_SCOPES} scopes")]
    TooMany,
}

fn valid_token(t: &str) -> Result<(), ScopeError> {
    if t.len() > MAX_SCOPE_LEN {
        return Err(ScopeError::TooLong);
    }
    if t.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) {
        Ok(())
    } else {
        Err(ScopeError::BadCharacter(t.chars().take(MAX_SCOPE_LEN).collect()))
    }
}

impl ScopeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-separated scope string (empty string: empty set).
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        Self::try_from_iter(s.split(' ').filter(|t| !t.is_empty()))
    }

    /// Parses a comma-separated list, as given on the command line.
    pub fn parse_comma(s: &str) -> Result<Self, ScopeError> {
        Self::try_from_iter(s.split(',').map(str::trim).filter(|t| !t.is_empty()))
    }

    /// Builds a set from tokens, validating each.
    pub fn try_from_iter<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for t in tokens {
            valid_token(t)?;
            set.insert(t.to_owned());
            if set.len() > MAX_SCOPES {
                return Err(ScopeError::TooMany);
            }
        }
        Ok(Self(set))
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Scopes in both sets.
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Whether every scope here is also in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(s)?;
        }
        Ok(())
    }
}

impl FromStr for ScopeSet {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_dedups() {
        let s = ScopeSet::parse("b a  b openid").unwrap();
        assert_eq!(s.to_string(), "a b openid");
        assert_eq!(ScopeSet::parse("").unwrap(), ScopeSet::new());
        assert_eq!(ScopeSet::parse_comma("x, y,x").unwrap().to_string(), "x y");
    }

    #[test]
    fn refuses_characters_outside_rfc6749() {
        assert!(matches!(ScopeSet::parse("ok bad\"quote"), Err(ScopeError::BadCharacter(_))));
        assert!(matches!(ScopeSet::parse("back\\slash"), Err(ScopeError::BadCharacter(_))));
        assert!(ScopeSet::parse("é").is_err());
        assert_eq!(ScopeSet::parse(&"a".repeat(MAX_SCOPE_LEN + 1)), Err(ScopeError::TooLong));
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert_eq!(ScopeSet::parse(&many.join(" ")), Err(ScopeError::TooMany));
    }

    #[test]
    fn intersection_never_widens() {
        let a = ScopeSet::parse("read write admin").unwrap();
        let b = ScopeSet::parse("read admin other").unwrap();
        let i = a.intersection(&b);
        assert_eq!(i.to_string(), "admin read");
        assert!(i.is_subset(&a) && i.is_subset(&b));
    }

    #[test]
    fn serde_is_a_space_separated_string() {
        let s = ScopeSet::parse("read write").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"read write\"");
        let back: ScopeSet = serde_json::from_str("\"write read\"").unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<ScopeSet>("\"bad\\\"\"").is_err());
    }
}
