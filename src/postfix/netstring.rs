//! Netstrings (<http://cr.yp.to/proto/netstrings.txt>): `<length>:<bytes>,`
//! with the length in decimal, as the socketmap protocol frames requests
//! and replies.

use std::fmt;

/// Why bytes are not a netstring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetstringError {
    /// Not `<digits>:<bytes>,` (a non-digit in the length, a leading zero,
    /// no `:`, or no `,` after the payload).
    Malformed(&'static str),
    /// The announced length is over the limit.
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for NetstringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed netstring: {why}"),
            Self::TooLong { limit } => write!(f, "netstring longer than {limit} bytes"),
        }
    }
}

impl std::error::Error for NetstringError {}

/// Decodes the netstring at the front of `buf`: `Ok(Some((payload,
/// consumed)))`, `Ok(None)` when more bytes are needed, or an error as soon
/// as the bytes cannot become a netstring of at most `max` bytes.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, NetstringError> {
    let max_digits = max.checked_ilog10().map_or(1, |d| d as usize + 1);
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > max_digits {
        return Err(NetstringError::TooLong { limit: max });
    }
    if digits == buf.len() {
        return Ok(None); // the length is still arriving
    }
    if digits == 0 {
        return Err(NetstringError::Malformed("the length is not a decimal number"));
    }
    if buf[digits] != b':' {
        return Err(NetstringError::Malformed("no ':' after the length"));
    }
    if digits > 1 && buf[0] == b'0' {
        return Err(NetstringError::Malformed("a leading zero in the length"));
    }
    let len = buf[..digits].iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    if len > max {
        return Err(NetstringError::TooLong { limit: max });
    }
    let start = digits + 1;
    let end = start + len;
    match buf.get(end) {
        None => Ok(None),
        Some(b',') => Ok(Some((&buf[start..end], end + 1))),
        Some(_) => Err(NetstringError::Malformed("no ',' after the payload")),
    }
}

/// Encodes `payload` as a netstring.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        fn ok(b: &[u8]) -> Result<Option<(&[u8], usize)>, NetstringError> {
            decode(b, 1024)
        }
        assert_eq!(ok(b"5:hello,"), Ok(Some((&b"hello"[..], 8))));
        assert_eq!(ok(b"0:,"), Ok(Some((&b""[..], 3))));
        assert_eq!(ok(b"5:hello,3:abc,"), Ok(Some((&b"hello"[..], 8))));
        for partial in [&b""[..], b"1", b"12", b"5:", b"5:hel", b"5:hello"] {
            assert_eq!(ok(partial), Ok(None), "{partial:?}");
        }
        assert_eq!(ok(b"x:"), Err(NetstringError::Malformed("the length is not a decimal number")));
        assert_eq!(ok(b"5;hello,"), Err(NetstringError::Malformed("no ':' after the length")));
        assert_eq!(ok(b"05:hello,"), Err(NetstringError::Malformed("a leading zero in the length")));
        assert_eq!(ok(b"5:hello!"), Err(NetstringError::Malformed("no ',' after the payload")));
        assert_eq!(ok(b"1025:"), Err(NetstringError::TooLong { limit: 1024 }));
        assert_eq!(ok(b"99999"), Err(NetstringError::TooLong { limit: 1024 }));
        assert_eq!(ok(b"99999999999999999999999999"), Err(NetstringError::TooLong { limit: 1024 }));
        assert_eq!(encode(b"OK dane-only"), b"12:OK dane-only,");
        assert_eq!(encode(b""), b"0:,");
    }

    #[test]
    fn every_prefix_of_a_netstring_asks_for_more() {
        let whole = encode(b"postfix example.com");
        for n in 0..whole.len() {
            assert_eq!(decode(&whole[..n], 1024), Ok(None), "{n}");
        }
        assert_eq!(decode(&whole, 1024), Ok(Some((&b"postfix example.com"[..], whole.len()))));
    }
}
