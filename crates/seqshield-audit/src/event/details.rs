//! Event-specific fields: a small, bounded map of plain values.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Most detail entries in one event.
pub const MAX_DETAILS: usize = 16;

/// Longest detail key, in bytes.
pub const MAX_DETAIL_KEY_LEN: usize = 64;

/// Largest integer magnitude a detail may hold: `2^53 − 1`, the largest
/// integer every JSON reader represents exactly (RFC 8785 §3.2.2.3,
/// I-JSON RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// One detail value. No floats (their JSON text is not canonical) and no
/// nesting (a detail is a fact, not a document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetailValue {
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer of magnitude at most [`MAX_SAFE_INTEGER`].
    Int(i64),
    /// A string, bounded and privacy-checked like every text field.
    Str(String),
}

impl From<bool> for DetailValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<i64> for DetailValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<i32> for DetailValue {
    fn from(v: i32) -> Self {
        Self::Int(v.into())
    }
}

impl From<u32> for DetailValue {
    fn from(v: u32) -> Self {
        Self::Int(v.into())
    }
}

/// Values above `i64::MAX` become `i64::MAX`, which is then refused as
/// above [`MAX_SAFE_INTEGER`] when the event is built.
impl From<u64> for DetailValue {
    fn from(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<&str> for DetailValue {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}

impl From<String> for DetailValue {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}

impl<T: Into<DetailValue>> From<Option<T>> for DetailValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

impl Serialize for DetailValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Int(i) => s.serialize_i64(*i),
            Self::Str(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for DetailValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DetailValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("null, a boolean, a safe integer or a string")
            }
            fn visit_unit<E: de::Error>(self) -> Result<DetailValue, E> {
                Ok(DetailValue::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<DetailValue, E> {
                Ok(DetailValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DetailValue, E> {
                Ok(DetailValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DetailValue, E> {
                i64::try_from(v).map(DetailValue::Int).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DetailValue, E> {
                Ok(DetailValue::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<DetailValue, E> {
                Ok(DetailValue::Str(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// The details of an event: at most [`MAX_DETAILS`] entries, keys sorted
/// (so the JSON text is canonical).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Details(pub(crate) BTreeMap<String, DetailValue>);

impl Details {
    /// No details.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&DetailValue> {
        self.0.get(key)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DetailValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}
