//! The few CBOR shapes the storage protocol uses, over `ciborium::Value`: sets are tag 258 around
//! an array; the `/version` answer has byte-string keys.

use std::collections::BTreeSet;

use ciborium::value::Value;

/// IANA's tag for a mathematical finite set.
pub const SET_TAG: u64 = 258;

/// Encodes a value.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("writing CBOR to memory cannot fail");
    out
}

/// Decodes one value.
pub fn decode(bytes: &[u8]) -> Result<Value, String> {
    ciborium::de::from_reader(bytes).map_err(|e| format!("not CBOR: {e}"))
}

/// A set of share numbers as the protocol writes it.
pub fn share_set(shares: &BTreeSet<u16>) -> Value {
    let items = shares.iter().map(|&n| Value::Integer(n.into())).collect();
    Value::Tag(SET_TAG, Box::new(Value::Array(items)))
}

/// Reads a set of share numbers (tag 258, or a bare array, which the server would accept too).
pub fn to_share_set(value: &Value) -> Result<BTreeSet<u16>, String> {
    let items = match value {
        Value::Tag(SET_TAG, inner) => match inner.as_ref() {
            Value::Array(items) => items,
            _ => return Err("tag 258 around something other than an array".into()),
        },
        Value::Array(items) => items,
        _ => return Err("not a set of share numbers".into()),
    };
    items
        .iter()
        .map(|item| match item {
            Value::Integer(i) => u16::try_from(i128::from(*i))
                .ok()
                .filter(|&n| n < 256)
                .ok_or_else(|| "a share number outside 0..=255".to_string()),
            _ => Err("a share number that is not an integer".into()),
        })
        .collect()
}

/// The entry of a map whose key is the text or byte string `key`.
pub fn lookup<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Map(entries) = map else {
        return None;
    };
    entries.iter().find_map(|(k, v)| {
        let matches = match k {
            Value::Bytes(b) => b == key.as_bytes(),
            Value::Text(t) => t == key,
            _ => false,
        };
        matches.then_some(v)
    })
}

/// An unsigned integer value.
pub fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Integer(i) => u64::try_from(i128::from(*i)).ok(),
        _ => None,
    }
}

/// A text or byte-string value as text.
pub fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Text(t) => Some(t.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_round_trip_with_tag_258() {
        let set: BTreeSet<u16> = [0, 3, 255].into();
        let bytes = encode(&share_set(&set));
        // d9 0102 = tag 258; 83 = array of 3; 00 03 18ff (cbor2.dumps({0, 3, 255}) gives the same).
        assert_eq!(bytes, [0xd9, 0x01, 0x02, 0x83, 0x00, 0x03, 0x18, 0xff]);
        assert_eq!(to_share_set(&decode(&bytes).unwrap()).unwrap(), set);
        assert!(to_share_set(&Value::Integer(3.into())).is_err());
        assert!(to_share_set(&Value::Array(vec![Value::Integer(256.into())])).is_err());
    }

    #[test]
    fn byte_string_keys_are_found() {
        let map = Value::Map(vec![(
            Value::Bytes(b"application-version".to_vec()),
            Value::Bytes(b"tahoe-lafs/1.20.0".to_vec()),
        )]);
        let v = lookup(&map, "application-version").and_then(as_text);
        assert_eq!(v.as_deref(), Some("tahoe-lafs/1.20.0"));
        assert!(lookup(&map, "other").is_none());
    }
}
