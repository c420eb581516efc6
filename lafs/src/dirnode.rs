//! Bodies of immutable directories (`dirnode.py: pack_children` with `deep_immutable=True`), byte
//! for byte as the node packs them, so a directory made here gets the node's cap.
//!
//! Per child, sorted by NFC name: `netstring(netstring(name) + netstring(ro_uri) + "0:," +
//! netstring(json.dumps(metadata)))`. Nothing is encrypted; the body is then an ordinary CHK file
//! (`URI:DIR2-CHK:`) or, at 55 bytes or less, a literal (`URI:DIR2-LIT:`). The metadata must be
//! written exactly as Python's `json.dumps` does: `", "` and `": "` separators, `\uXXXX` escapes
//! for everything outside printable ASCII, floats as `repr`, keys in the order given.

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_normalization::UnicodeNormalization;

use crate::base32;
use crate::chk::{encode_bytes, ChkError, EncodingParams, LIT_SIZE_THRESHOLD};
use crate::netstring::{netstring, write_netstring};

/// A JSON value as Python holds it after `json.loads`: objects keep their keys' order, and
/// integers and floats stay apart (`5` and `5.0` are written differently).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float, written as Python's `repr`.
    Float(f64),
    /// A string.
    String(String),
    /// A list.
    Array(Vec<JsonValue>),
    /// An object, in this key order.
    Object(Vec<(String, JsonValue)>),
}

/// Python's `json.dumps(value)` with default arguments.
pub fn python_json_dumps(value: &JsonValue) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &JsonValue) {
    match value {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(true) => out.push_str("true"),
        JsonValue::Bool(false) => out.push_str("false"),
        JsonValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        JsonValue::Float(f) => out.push_str(&json_float(*f)),
        JsonValue::String(s) => write_json_string(out, s),
        JsonValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item);
            }
            out.push(']');
        }
        JsonValue::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json_string(out, key);
                out.push_str(": ");
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// `json.dumps` of a float: `repr`, except the three values JSON has no syntax for.
fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        python_float_repr(f)
    }
}

/// Python's `repr` of a finite float: the shortest digits that read back to it, in positional
/// form when the decimal exponent is in -4..16 (`1e-05`, `0.0001`, `1e+16`, `1000000000000000.0`).
pub fn python_float_repr(f: f64) -> String {
    // Rust's `{:e}` gives a shortest round-trip digit string ("d.ddde<exp>"), but where several
    // strings of that length read back to `f` it may not pick the one Python does (the nearest to
    // `f`). The correctly rounded string of the same length is that one whenever it reads back.
    let shortest = format!("{:e}", f.abs());
    let len = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.replace('.', "").len());
    let nearest = format!("{:.*e}", len - 1, f.abs());
    let sci = if nearest.parse::<f64>() == Ok(f.abs()) {
        nearest
    } else {
        shortest
    };
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs())
    }
}

/// A JSON string as `json.dumps` writes it (`ensure_ascii=True`).
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// One child of an immutable directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ImmutableChild {
    /// Its name (normalized to NFC when packed).
    pub name: String,
    /// Its read cap: an immutable file or directory (a secret).
    pub ro_uri: String,
    /// Its metadata object, in the key order the node would have received.
    pub metadata: Vec<(String, JsonValue)>,
}

/// Children that cannot go into an immutable directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirnodeError {
    /// Two names equal after NFC normalization.
    #[error("two children are both named {name:?} (after Unicode NFC normalization)")]
    DuplicateName {
        /// The normalized name.
        name: String,
    },
    /// A child that is mutable (or of an unknown kind).
    #[error(
        "child {name:?} is not immutable: an immutable directory holds only CHK/LIT files and \
         immutable directories"
    )]
    NotImmutable {
        /// The child's name.
        name: String,
    },
}

const IMMUTABLE_PREFIXES: [&str; 4] = ["URI:CHK:", "URI:LIT:", "URI:DIR2-CHK:", "URI:DIR2-LIT:"];

/// The body of an immutable directory holding `children`.
pub fn pack_immutable_children(children: &[ImmutableChild]) -> Result<Vec<u8>, DirnodeError> {
    let order = nfc_order(children.iter().map(|c| c.name.as_str()))?;
    let mut body = Vec::new();
    for (name, i) in order {
        let child = &children[i];
        push_immutable_child(&mut body, &name, &child.ro_uri, &child.metadata)?;
    }
    Ok(body)
}

/// The order children are packed in: each name normalized to NFC, with the index it came
/// from, sorted as Python sorts `str` (by code point, which is UTF-8 byte order). Two names
/// equal after NFC are refused. With [`push_immutable_child`] this lets a caller write a wide
/// directory child by child, without a second copy of every child's metadata. A name that is
/// already NFC (every ASCII name) is borrowed, not copied.
pub fn nfc_order<'a>(
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<(Cow<'a, str>, usize)>, DirnodeError> {
    let mut entries: Vec<(Cow<'a, str>, usize)> = names
        .enumerate()
        .map(|(i, name)| {
            let nfc = if unicode_normalization::is_nfc(name) {
                Cow::Borrowed(name)
            } else {
                Cow::Owned(name.nfc().collect::<String>())
            };
            (nfc, i)
        })
        .collect();
    entries.sort();
    if let Some(pair) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(DirnodeError::DuplicateName {
            name: pair[0].0.to_string(),
        });
    }
    Ok(entries)
}

/// Appends one child (its name already NFC, children in [`nfc_order`]) to a directory body.
pub fn push_immutable_child(
    body: &mut Vec<u8>,
    nfc_name: &str,
    ro_uri: &str,
    metadata: &[(String, JsonValue)],
) -> Result<(), DirnodeError> {
    // `strip_prefix_for_ro`: the prefixes are implied by an immutable directory.
    let ro_uri = ro_uri
        .strip_prefix("imm.")
        .or_else(|| ro_uri.strip_prefix("ro."))
        .unwrap_or(ro_uri);
    if !IMMUTABLE_PREFIXES.iter().any(|p| ro_uri.starts_with(p)) {
        return Err(DirnodeError::NotImmutable {
            name: nfc_name.to_string(),
        });
    }
    let metadata = python_json_dumps(&JsonValue::Object(metadata.to_vec()));
    let mut entry = netstring(nfc_name.as_bytes());
    write_netstring(&mut entry, ro_uri.as_bytes());
    entry.extend_from_slice(b"0:,");
    write_netstring(&mut entry, metadata.as_bytes());
    write_netstring(body, &entry);
    Ok(())
}

/// The cap of an immutable directory with this body, as the node makes it: a `URI:DIR2-LIT:`
/// for 55 bytes or less, else `URI:DIR2-CHK:` of the body encoded under the node's convergence
/// secret and parameters. (The shares are made by [`crate::chk::ChkEncoder`] for an upload.)
pub fn immutable_directory_cap(
    body: &[u8],
    convergence: &[u8],
    params: &EncodingParams,
) -> Result<String, ChkError> {
    if body.len() as u64 <= LIT_SIZE_THRESHOLD {
        return Ok(format!("URI:DIR2-LIT:{}", base32::encode(body)));
    }
    let (file, _shares) = encode_bytes(body, convergence, params)?;
    Ok(file.cap.to_dir_uri())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_like_python() {
        // Each right-hand side is Python 3.11's repr of the left.
        for (f, text) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234567e16, "1.2345678901234568e+16"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
            (1700000000.123456, "1700000000.123456"),
            (123456789012345.6, "123456789012345.6"),
        ] {
            assert_eq!(python_float_repr(f), text, "{f:?}");
        }
    }

    #[test]
    fn json_like_python() {
        let value = JsonValue::Object(vec![
            ("b".into(), JsonValue::Int(-3)),
            (
                "a".into(),
                JsonValue::Array(vec![
                    JsonValue::Null,
                    JsonValue::Bool(true),
                    JsonValue::Float(f64::NAN),
                    JsonValue::String("é\"\\\n\u{7f}😀".into()),
                ]),
            ),
            ("e".into(), JsonValue::Object(vec![])),
        ]);
        assert_eq!(
            python_json_dumps(&value),
            r#"{"b": -3, "a": [null, true, NaN, "\u00e9\"\\\n\u007f\ud83d\ude00"], "e": {}}"#
        );
    }

    #[test]
    fn refuses_mutable_children_and_duplicate_names() {
        let child = |name: &str, cap: &str| ImmutableChild {
            name: name.into(),
            ro_uri: cap.into(),
            metadata: vec![],
        };
        assert!(matches!(
            pack_immutable_children(&[child("a", "URI:DIR2-RO:x:y")]),
            Err(DirnodeError::NotImmutable { .. })
        ));
        // "e" + combining acute is "é" after NFC.
        assert!(matches!(
            pack_immutable_children(&[
                child("\u{e9}", "URI:LIT:aa"),
                child("e\u{301}", "URI:LIT:aa")
            ]),
            Err(DirnodeError::DuplicateName { .. })
        ));
    }
}
