//! Data classification labels carried in every header.

use std::fmt;
use std::str::FromStr;

/// How sensitive the content of an object is. Ordered from least to most
/// sensitive, so policy can compare labels with `>=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// May be published.
    Public,
    /// Inside the institution only.
    Internal,
    /// Named projects only (e.g. pseudonymised patient data).
    Restricted,
    /// Identifiable human genomic data under a data-access agreement.
    Controlled,
}

impl Classification {
    /// All labels, least sensitive first.
    pub const ALL: [Classification; 4] = [Self::Public, Self::Internal, Self::Restricted, Self::Controlled];

    /// The label's wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Public => 0,
            Self::Internal => 1,
            Self::Restricted => 2,
            Self::Controlled => 3,
        }
    }

    /// The label for a wire code, if the code is known.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The label's name as written in policy files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Restricted => "restricted",
            Self::Controlled => "controlled",
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classification name that is not one of the four labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown classification {0:?}: expected public, internal, restricted or controlled")]
pub struct UnknownClassification(pub String);

impl FromStr for Classification {
    type Err = UnknownClassification;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownClassification(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_order_by_sensitivity() {
        for c in Classification::ALL {
            assert_eq!(Classification::from_code(c.code()), Some(c));
            assert_eq!(c.as_str().parse::<Classification>().unwrap(), c);
        }
        assert!(Classification::Controlled > Classification::Public);
        assert_eq!(Classification::from_code(4), None);
        assert!("secret".parse::<Classification>().is_err());
    }
}
