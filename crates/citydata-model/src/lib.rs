//! The types every part of citydata shares: slugs, language maps, Frictionless table schemas, cell
//! values and dataset metadata.
//!
//! **Architecture Invariant:** this crate does no I/O and knows no database, format or protocol. It is
//! pure data with the checks that make a value valid once it exists ("parse, don't validate").

mod meta;
mod schema;
pub mod text;

pub use meta::{reading_order, DatasetMeta, GeometrySpec, LangText, ResourceMeta, LANGUAGES};
pub use schema::{Field, FieldType, Schema, NULL_MARKERS};

use std::borrow::Cow;
use std::fmt;

/// A dataset or organisation identifier as it appears in URLs: 1 to 100 characters of lower-case
/// ASCII letters, digits, `-` and `_`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Slug(String);

/// Why a string is not a [`Slug`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{value:?} is not a valid slug: use 1 to 100 lower-case letters, digits, '-' or '_', starting with a letter or digit")]
pub struct SlugError {
    /// The rejected text.
    pub value: String,
}

impl Slug {
    /// Parses `s` into a slug.
    ///
    /// # Errors
    /// When `s` is empty, longer than 100 bytes, or holds anything but `[a-z0-9_-]`.
    pub fn parse(s: &str) -> Result<Self, SlugError> {
        let ok = !s.is_empty()
            && s.len() <= 100
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(SlugError { value: s.to_owned() })
        }
    }

    /// Makes a slug from any text: lower-cases ASCII, turns every other run of characters into `-`,
    /// and falls back to `fallback` when nothing is left.
    #[must_use]
    pub fn from_text(s: &str, fallback: &str) -> Self {
        let mut out = String::new();
        for c in s.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let mut out = out.trim_end_matches('-').to_owned();
        out.truncate(100);
        let out = out.trim_end_matches('-').to_owned();
        Self::parse(&out).unwrap_or_else(|_| Self(fallback.to_owned()))
    }

    /// The slug as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Slug::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One typed cell on its way into or out of a table. Booleans travel as integers 0/1, dates and
/// times as ISO 8601 text, geometries as GeoJSON text: the column's [`FieldType`] gives the meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// No value.
    Null,
    /// A 64-bit integer (also booleans).
    Int(i64),
    /// A double.
    Real(f64),
    /// Text (also dates, times and geometries).
    Text(Cow<'a, str>),
}

impl Value<'_> {
    /// The value with its borrowed text copied, so it can outlive its source.
    #[must_use]
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(i),
            Value::Real(r) => Value::Real(r),
            Value::Text(t) => Value::Text(Cow::Owned(t.into_owned())),
        }
    }
}

/// One value converted to its column's type; a text lives in its [`RowBatch`]'s buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot {
    /// No value.
    Null,
    /// An integer (also a boolean, as 0 or 1).
    Int(i64),
    /// A number.
    Real(f64),
    /// A text: the byte range of the batch's buffer that holds it.
    Text(usize, usize),
}

/// Converted rows, one after the other: values in one flat vector, texts in one buffer, so that a
/// batch of thousands of rows costs a few allocations, not one per cell.
#[derive(Debug, Default, Clone)]
pub struct RowBatch {
    /// The values, row after row.
    pub slots: Vec<Slot>,
    /// The texts the slots point into.
    pub text: String,
}

impl RowBatch {
    /// Appends `t` to the buffer and returns its slot.
    pub fn push_text(&mut self, t: &str) -> Slot {
        let start = self.text.len();
        self.text.push_str(t);
        Slot::Text(start, self.text.len())
    }

    /// The memory its values take, in bytes (what bounds a batch in flight).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>() + self.text.len()
    }

    /// The value in slot `s`.
    #[must_use]
    pub fn value(&self, s: Slot) -> Value<'_> {
        match s {
            Slot::Null => Value::Null,
            Slot::Int(i) => Value::Int(i),
            Slot::Real(r) => Value::Real(r),
            Slot::Text(a, b) => Value::Text(Cow::Borrowed(&self.text[a..b])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "itf-2024", "hk_districts", "0abc"] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a b", "空氣", &"x".repeat(101)] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Slug::from_text("Air Quality (AQHI) 2024!", "x").as_str(), "air-quality-aqhi-2024");
        assert_eq!(Slug::from_text("空氣", "resource-1").as_str(), "resource-1");
    }
}
