//! JSON lines: one object per line, keys from [`Field`], values read into zeroizing
//! buffers without serde_json error messages that could echo a value.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use zeroize::Zeroizing;

use crate::row::{FIELD_COUNT, Field};

/// The values of one JSON object, or what is wrong with it.
#[derive(Default)]
pub(crate) struct JsonRow {
    pub(crate) values: [Option<Zeroizing<String>>; FIELD_COUNT],
    /// First problem met (unknown key, repeated key, wrong value type): field, message.
    pub(crate) problem: Option<(String, String)>,
}

/// A problem that is not a syntax error: (field, message).
fn note(problem: &mut Option<(String, String)>, field: &str, message: String) {
    if problem.is_none() {
        *problem = Some((field.to_owned(), message));
    }
}

enum Key {
    Known(Field),
    Unknown(String),
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match Field::from_name(v) {
            Some(f) => Key::Known(f),
            None => Key::Unknown(v.to_owned()),
        })
    }
}

impl<'de> DeserializeSeed<'de> for KeyVisitor {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

/// A value: a string (zeroizing copy), an unsigned number (for `mnc_len`), null, or
/// another JSON type (named, never shown).
enum Value {
    Str(Zeroizing<String>),
    Number(u64),
    Null,
    Other(&'static str),
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(Zeroizing::new(v.to_owned())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Other("a negative number"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // An integer beyond u64 arrives here too: a 20-digit ICCID written as a number
        // (89... > u64::MAX) was reported as "a fractional number".
        Ok(Value::Other(if v.fract() == 0.0 {
            "a number (leading zeros would be lost)"
        } else {
            "a fractional number"
        }))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Other("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an object"))
    }
}

impl<'de> DeserializeSeed<'de> for ValueVisitor {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = JsonRow;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonRow, A::Error> {
        let mut row = JsonRow::default();
        while let Some(key) = map.next_key_seed(KeyVisitor)? {
            let value = map.next_value_seed(ValueVisitor)?;
            let field = match key {
                Key::Unknown(name) => {
                    note(&mut row.problem, &name, format!("unknown field {name:?}"));
                    continue;
                }
                Key::Known(f) => f,
            };
            let slot = &mut row.values[field.index()];
            if slot.is_some() {
                note(&mut row.problem, field.name(), "field given twice".into());
                continue;
            }
            match value {
                Value::Str(s) => *slot = Some(s),
                Value::Null => {}
                Value::Number(n) if field == Field::MncLen => {
                    *slot = Some(Zeroizing::new(n.to_string()));
                }
                Value::Number(_) => note(
                    &mut row.problem,
                    field.name(),
                    "must be a JSON string, not a number (leading zeros would be lost)".into(),
                ),
                Value::Other(what) => note(
                    &mut row.problem,
                    field.name(),
                    format!("must be a JSON string, not {what}"),
                ),
            }
        }
        Ok(row)
    }
}

/// Parses one line. `Err` is a message without any value from the line.
pub(crate) fn parse_line(line: &[u8]) -> Result<JsonRow, String> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let row = de.deserialize_map(RowVisitor).map_err(|e| describe(&e))?;
    de.end().map_err(|e| describe(&e))?;
    Ok(row)
}

fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => "expected one JSON object per line".to_owned(),
        Category::Eof => "invalid JSON: the line ends inside a value".to_owned(),
        Category::Syntax | Category::Io => format!("invalid JSON at column {}", e.column()),
    }
}
