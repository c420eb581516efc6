//! A serde deserializer over the text of a job's keys, so a task type's keys are an ordinary
//! `#[derive(Deserialize)]` struct although every source (INI, environment, `--set`) gives text.
//!
//! Booleans read as configparser's `getboolean` does, numbers are parsed from their digits,
//! sequences are comma lists, and an `Option` is `Some` whenever the key is set. Errors keep
//! apart a bad value, an unknown key and a missing key, so the loader can report each its way.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::{MapDeserializer, StrDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::values::parse_bool;

/// Why a job's keys did not deserialize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TextError {
    /// A value is not of the accepted form: the parser's own words.
    Value(String),
    /// A key the task type does not declare.
    UnknownField(String),
    /// A key the task type requires and the job does not set.
    MissingField(&'static str),
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Value(m) => f.write_str(m),
            TextError::UnknownField(k) => write!(f, "unknown key {k}"),
            TextError::MissingField(k) => write!(f, "missing key {k}"),
        }
    }
}

impl std::error::Error for TextError {}

impl de::Error for TextError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TextError::Value(msg.to_string())
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        TextError::UnknownField(field.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        TextError::MissingField(field)
    }
}

/// Deserializes `T` from key/value text.
pub(crate) fn from_text<T: DeserializeOwned>(
    entries: &BTreeMap<String, String>,
) -> Result<T, TextError> {
    let map = MapDeserializer::new(
        entries
            .iter()
            .map(|(k, v)| (StrKey(k.as_str()), Text(v.as_str()))),
    );
    let value = T::deserialize(map)?;
    Ok(value)
}

struct StrKey<'a>(&'a str);

impl<'a> IntoDeserializer<'a, TextError> for StrKey<'a> {
    type Deserializer = StrDeserializer<'a, TextError>;

    fn into_deserializer(self) -> Self::Deserializer {
        self.0.into_deserializer()
    }
}

/// One value as written.
#[derive(Clone, Copy)]
pub(crate) struct Text<'a>(pub &'a str);

impl<'a> IntoDeserializer<'a, TextError> for Text<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl Text<'_> {
    fn number<N: std::str::FromStr>(&self) -> Result<N, TextError> {
        self.0
            .trim()
            .parse()
            .map_err(|_| TextError::Value(format!("{:?} is not a number", self.0)))
    }
}

macro_rules! numbers {
    ($($method:ident $visit:ident $ty:ty),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            visitor.$visit(self.number::<$ty>()?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Text<'de> {
    type Error = TextError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_bool(parse_bool(self.0).map_err(TextError::Value)?)
    }

    numbers! {
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
        deserialize_f32 visit_f32 f32, deserialize_f64 visit_f64 f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TextError> {
        visitor.visit_newtype_struct(self)
    }

    /// A comma list: `*.tmp, .DS_Store`; empty items are dropped.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        let items = self
            .0
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Text);
        visitor.visit_seq(de::value::SeqDeserializer::new(items))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TextError> {
        let s: StrDeserializer<'de, TextError> = self.0.trim().into_deserializer();
        visitor.visit_enum(s)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Keys {
        name: String,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        loud: bool,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        limit: Option<u64>,
    }

    fn text(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_text_as_typed_fields() {
        let keys: Keys = from_text(&text(&[
            ("name", "x"),
            ("count", " 3 "),
            ("loud", "yes"),
            ("tags", "a, b,,c"),
            ("limit", "7"),
        ]))
        .unwrap();
        assert_eq!(
            keys,
            Keys {
                name: "x".into(),
                count: 3,
                loud: true,
                tags: vec!["a".into(), "b".into(), "c".into()],
                limit: Some(7),
            }
        );
    }

    #[test]
    fn tells_bad_values_unknown_and_missing_keys_apart() {
        let err = from_text::<Keys>(&text(&[("name", "x"), ("count", "many")])).unwrap_err();
        assert_eq!(err, TextError::Value("\"many\" is not a number".into()));
        let err = from_text::<Keys>(&text(&[("name", "x"), ("cuont", "1")])).unwrap_err();
        assert_eq!(err, TextError::UnknownField("cuont".into()));
        let err = from_text::<Keys>(&text(&[("count", "1")])).unwrap_err();
        assert_eq!(err, TextError::MissingField("name"));
        let err = from_text::<Keys>(&text(&[("name", "x"), ("loud", "maybe")])).unwrap_err();
        assert!(matches!(err, TextError::Value(m) if m.contains("not a boolean")));
    }
}
