//! MX patterns of a policy (RFC 8461 §3.2 `sts-policy-mx-value`, §4.1).

use std::fmt;
use std::str::FromStr;

use crate::error::{ParseError, ParseErrorKind, quote};
use crate::name::{DomainName, Invalid, MAX_LABEL_LEN, parse_name};

/// One `mx` value of a policy: a host name, or `*.` and a domain, which
/// matches any host exactly one label below that domain (RFC 8461 §4.1).
///
/// Parsing accepts upper case, one trailing dot and U-labels (converted to
/// A-labels); the `*` may only be the whole left-most label. Matching is
/// case-insensitive and ignores one trailing dot of the host.
///
/// ```
/// use smtp_tls_policy::sts::MxPattern;
/// let p = MxPattern::parse("*.Example.com").unwrap();
/// assert!(p.matches("mail.example.com"));
/// assert!(p.matches("MAIL.EXAMPLE.COM."));
/// assert!(!p.matches("example.com"));
/// assert!(!p.matches("a.b.example.com"));
/// assert_eq!(p.to_string(), "*.example.com");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MxPattern {
    wildcard: bool,
    base: DomainName,
}

impl MxPattern {
    /// Parses an `mx` value: `["*."] Domain` (RFC 8461 §3.2).
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let (wildcard, rest, base_at) = match input.as_bytes() {
            [b'*', b'.', ..] => (true, &input[2..], 2),
            _ => (false, input, 0),
        };
        // A `*` is never part of a name, so it is looked for only once the
        // name is refused: its own error says where a wildcard may stand.
        let base = parse_name(rest).map_err(|Invalid { kind, offset, reason }| {
            if let Some(at) = rest.bytes().position(|b| b == b'*') {
                let at = at + base_at;
                return ParseError::new(
                    ParseErrorKind::MisplacedWildcard,
                    None,
                    at,
                    format!(
                        "{}: \"*\" at byte {at} is not allowed; a wildcard must be the whole left-most label, as in \"*.example.com\"",
                        quote(input)
                    ),
                );
            }
            ParseError::new(kind, None, offset + base_at, format!("{}: {reason}", quote(input)))
        })?;
        Ok(Self { wildcard, base })
    }

    /// A pattern whose name [`crate::name::scan_name_into`] writes next,
    /// in place; one it does not fill must be dropped.
    pub(crate) const fn unfilled(wildcard: bool) -> Self {
        Self { wildcard, base: DomainName::EMPTY_INLINE }
    }

    /// The name, for [`unfilled`](Self::unfilled) patterns to be filled.
    pub(crate) fn base_mut(&mut self) -> &mut DomainName {
        &mut self.base
    }

    /// A pattern that matches exactly `host`.
    pub fn exact(host: DomainName) -> Self {
        Self { wildcard: false, base: host }
    }

    /// A pattern that matches any host exactly one label below `base`.
    pub fn wildcard(base: DomainName) -> Self {
        Self { wildcard: true, base }
    }

    /// Whether this is a `*.` pattern.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The name after `*.`, or the whole host name of an exact pattern.
    pub fn base(&self) -> &DomainName {
        &self.base
    }

    /// Whether the MX host `host` matches (RFC 8461 §4.1): case-insensitive,
    /// one trailing dot ignored; `*.example.com` matches `mail.example.com`
    /// but neither `example.com` nor `a.b.example.com`. A host given with
    /// U-labels is converted to A-labels first.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_ascii() {
            return self.matches_ascii(host);
        }
        DomainName::parse(host).is_ok_and(|h| self.matches_ascii(h.as_str()))
    }

    fn matches_ascii(&self, host: &str) -> bool {
        let base = self.base.as_bytes();
        if !self.wildcard {
            return host.as_bytes().eq_ignore_ascii_case(base);
        }
        // host = label "." base, with one non-empty label.
        let Some(label_len) = host.len().checked_sub(base.len() + 1) else {
            return false;
        };
        let (head, tail) = host.as_bytes().split_at(label_len);
        (1..=MAX_LABEL_LEN).contains(&label_len)
            && tail[0] == b'.'
            && tail[1..].eq_ignore_ascii_case(base)
            && !head.contains(&b'.')
    }
}

impl FromStr for MxPattern {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(self.base.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> MxPattern {
        MxPattern::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// RFC 8461 §4.1: "*.example.com" matches "mail.example.com" but not
    /// "example.com" nor "foo.bar.example.com"; comparison is case-insensitive.
    #[test]
    fn rfc8461_4_1_matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("mail.example.com", "mail.example.com", true),
            ("mail.example.com", "MAIL.Example.COM", true),
            ("mail.example.com", "mail.example.com.", true),
            ("mail.example.com", "mail.example.com..", false),
            ("mail.example.com", "mail2.example.com", false),
            ("mail.example.com", "xmail.example.com", false),
            ("mail.example.com", "example.com", false),
            ("mail.example.com", "", false),
            ("MAIL.example.com.", "mail.example.com", true),
            ("*.example.com", "mail.example.com", true),
            ("*.example.com", "MX1.EXAMPLE.COM.", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", ".example.com", false),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", "mailexample.com", false),
            ("*.example.com", "mail.example.net", false),
            ("*.example.com", "mail.example.com.evil", false),
            ("*.example.com", "x.notexample.com", false),
            ("*.example.com", &format!("{}.example.com", "a".repeat(63)), true),
            ("*.example.com", &format!("{}.example.com", "a".repeat(64)), false),
            ("*.com", "example.com", true),
            // U-labels on either side meet as A-labels.
            ("*.bücher.example", "mx.xn--bcher-kva.example", true),
            ("mx.xn--bcher-kva.example", "MX.Bücher.example.", true),
            ("mx.example", "mx.ex\u{e4}mple", false),
        ];
        for &(p, host, want) in cases {
            assert_eq!(pattern(p).matches(host), want, "{p:?} vs {host:?}");
        }
    }

    /// RFC 8461 §3.2: sts-policy-mx-value = ["*."] Domain.
    #[test]
    fn rfc8461_3_2_pattern_syntax() {
        let ok = [
            ("mail.example.com", "mail.example.com", false),
            ("*.example.com", "*.example.com", true),
            ("*.Example.COM.", "*.example.com", true),
            ("*.bücher.example", "*.xn--bcher-kva.example", true),
        ];
        for (input, canonical, wildcard) in ok {
            let p = pattern(input);
            assert_eq!(p.to_string(), canonical);
            assert_eq!(p.is_wildcard(), wildcard);
            assert_eq!(pattern(canonical), p);
        }
        use ParseErrorKind::*;
        let bad: &[(&str, ParseErrorKind, usize, &str)] = &[
            ("", Empty, 0, r#""": empty domain name"#),
            ("*.", Empty, 2, r#""*.": empty domain name"#),
            (
                "*",
                MisplacedWildcard,
                0,
                r#""*": "*" at byte 0 is not allowed; a wildcard must be the whole left-most label, as in "*.example.com""#,
            ),
            (
                "mail.*.example.com",
                MisplacedWildcard,
                5,
                r#""mail.*.example.com": "*" at byte 5 is not allowed; a wildcard must be the whole left-most label, as in "*.example.com""#,
            ),
            (
                "*mail.example.com",
                MisplacedWildcard,
                0,
                r#""*mail.example.com": "*" at byte 0 is not allowed; a wildcard must be the whole left-most label, as in "*.example.com""#,
            ),
            (
                "*.*.example.com",
                MisplacedWildcard,
                2,
                r#""*.*.example.com": "*" at byte 2 is not allowed; a wildcard must be the whole left-most label, as in "*.example.com""#,
            ),
            ("*..example.com", EmptyLabel, 2, r#""*..example.com": empty label"#),
            (
                "*.exa_mple.com",
                InvalidCharacter,
                5,
                r#""*.exa_mple.com": '_' is not allowed (letters, digits, hyphens and dots only)"#,
            ),
            (
                "mail.example.com:25",
                InvalidCharacter,
                16,
                r#""mail.example.com:25": ':' is not allowed (letters, digits, hyphens and dots only)"#,
            ),
            (
                "[192.0.2.1]",
                InvalidCharacter,
                0,
                r#""[192.0.2.1]": '[' is not allowed (letters, digits, hyphens and dots only)"#,
            ),
        ];
        for &(input, kind, offset, message) in bad {
            let err = MxPattern::parse(input).expect_err(input);
            assert_eq!((err.kind(), err.offset(), err.to_string().as_str()), (kind, offset, message), "{input:?}");
        }
    }

    #[test]
    fn constructors() {
        let base = DomainName::parse("example.com").unwrap();
        assert_eq!(MxPattern::wildcard(base.clone()), pattern("*.example.com"));
        assert_eq!(MxPattern::exact(base.clone()), pattern("example.com"));
        assert_eq!(MxPattern::exact(base.clone()).base(), &base);
    }
}
