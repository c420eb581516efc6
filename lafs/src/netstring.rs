//! Netstrings as Tahoe-LAFS writes them: `b"%d:%s," % (len(x), x)` (`allmydata/util/netstring.py`).

/// Appends the netstring of `data` to `out`.
pub fn write_netstring(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(data);
    out.push(b',');
}

/// The netstring of `data`.
pub fn netstring(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    write_netstring(&mut out, data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(netstring(b""), b"0:,");
        assert_eq!(netstring(b"abc"), b"3:abc,");
        assert_eq!(netstring(&[b'x'; 12]), b"12:xxxxxxxxxxxx,");
    }
}
