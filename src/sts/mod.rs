//! MTA-STS (RFC 8461) without the network: the `_mta-sts` TXT record, the
//! policy body and MX patterns.
//!
//! ```
//! use smtp_tls_policy::sts::{Mode, Policy, select_txt};
//!
//! // RFC 8461 §3.1: of the whole RRset, exactly one record must begin with
//! // "v=STSv1"; others are dropped.
//! let txt = select_txt(["v=spf1 -all", "v=STSv1; id=20160831085700Z;"]).unwrap();
//! assert_eq!(txt.id(), "20160831085700Z");
//!
//! // RFC 8461 §3.2: the policy body fetched over HTTPS.
//! let body = b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n\
//!              mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
//! let policy = Policy::parse_bytes(body).unwrap();
//! assert_eq!(policy.mode(), Mode::Enforce);
//! assert_eq!(policy.max_age().as_secs(), 604_800);
//!
//! // RFC 8461 §4.1: which MX hosts the policy allows.
//! assert!(policy.allows_mx("MAIL.example.com."));
//! assert!(policy.allows_mx("mx1.example.net"));
//! assert!(!policy.allows_mx("example.net"));
//! assert!(!policy.allows_mx("a.b.example.net"));
//! ```

pub mod fetch;
mod pattern;
mod policy;
mod txt;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{ParseError, ParseErrorKind, quote};

pub use pattern::MxPattern;
pub use policy::{MAX_AGE_CAP, MAX_AGE_DIGITS, MAX_POLICY_BYTES, MAX_STORED_POLICY_BYTES, Policy};
pub(crate) use txt::exactly_one;
pub use txt::{MAX_ID_LEN, PolicyId, STS_VERSION, TxtError, TxtRecord, select_txt};

/// The longest extension or field name (RFC 8461 §3.1 `sts-ext-name`, §3.2
/// `sts-policy-ext-name`: one letter or digit and up to 31 more characters).
pub const MAX_FIELD_NAME_LEN: usize = 32;

/// The policy mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// `enforce`: deliver only to MX hosts that match the policy, over TLS
    /// with a valid certificate (RFC 8461 §5.1).
    Enforce,
    /// `testing`: deliver as without a policy, and report failures through
    /// TLS-RPT (RFC 8461 §5).
    Testing,
    /// `none`: the domain has no active policy; it is how a domain withdraws
    /// one (RFC 8461 §8.3).
    None,
}

impl Mode {
    /// The keyword as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        }
    }
}

impl FromStr for Mode {
    type Err = ParseError;
    /// Parses `enforce`, `testing` or `none`, case-sensitively (RFC 8461
    /// §3.2 uses `%s` strings).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Self::Enforce),
            "testing" => Ok(Self::Testing),
            "none" => Ok(Self::None),
            _ => Err(ParseError::new(
                ParseErrorKind::UnknownMode,
                Some("mode"),
                0,
                format!("unknown value {} (expected enforce, testing or none)", quote(s)),
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy lifetime in seconds, at most [`MAX_AGE_CAP`] (RFC 8461 §3.2:
/// "values MUST be less than or equal to 31557600").
///
/// A larger published value is clamped rather than refused: refusing it
/// would turn an enforcing domain into one with no policy at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaxAge(u32);

impl MaxAge {
    /// The largest lifetime, [`MAX_AGE_CAP`] seconds (about one year).
    pub const MAX: Self = Self(MAX_AGE_CAP);

    /// A lifetime of `secs` seconds, clamped to [`MAX_AGE_CAP`].
    pub fn from_secs_clamped(secs: u64) -> Self {
        // The clamp makes the value fit in u32.
        Self(u32::try_from(secs.min(u64::from(MAX_AGE_CAP))).unwrap_or(MAX_AGE_CAP))
    }

    /// The lifetime in seconds.
    pub fn as_secs(self) -> u32 {
        self.0
    }

    /// The lifetime as a [`Duration`].
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

impl fmt::Display for MaxAge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An extension field the crate does not interpret: a TXT record field
/// other than `id` (RFC 8461 §3.1) or a policy key other than `version`,
/// `mode`, `max_age` and `mx` (RFC 8461 §3.2). They are kept, in order and
/// first occurrence only, so that a checker can show them and
/// [`Display`](fmt::Display) can render them back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Extension {
    /// `name` followed by `value`; `split` is the length of the name.
    text: Box<str>,
    split: u8,
}

impl Extension {
    /// Both parts must already be valid for their grammar; a name is at most
    /// [`MAX_FIELD_NAME_LEN`] bytes, so its length fits in a `u8`.
    fn new(name: &str, value: &str) -> Self {
        let mut text = String::with_capacity(name.len() + value.len());
        text.push_str(name);
        text.push_str(value);
        Self { text: text.into_boxed_str(), split: u8::try_from(name.len()).unwrap_or(u8::MAX) }
    }

    /// The field name, case preserved.
    pub fn name(&self) -> &str {
        self.text.get(..usize::from(self.split)).unwrap_or_default()
    }

    /// The value, without surrounding white space.
    pub fn value(&self) -> &str {
        self.text.get(usize::from(self.split)..).unwrap_or_default()
    }
}

/// Keeps the first occurrence of each extension name, in order: RFC 8461
/// leaves a duplicated field undefined, and DESIGN.md takes the first.
///
/// Linear in the number of extensions: a hostile body of thousands of
/// distinct keys must not cost a quadratic scan.
fn keep_first(extensions: &mut Vec<Extension>) {
    const SCAN_LIMIT: usize = 8;
    if extensions.len() <= SCAN_LIMIT {
        let mut i = 1;
        while i < extensions.len() {
            if extensions[..i].iter().any(|e| e.name() == extensions[i].name()) {
                extensions.remove(i);
            } else {
                i += 1;
            }
        }
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity(extensions.len());
    let keep: Vec<bool> = extensions.iter().map(|e| seen.insert(e.name())).collect();
    drop(seen);
    let mut flags = keep.into_iter();
    extensions.retain(|_| flags.next().unwrap_or(false));
}

/// RFC 8461 §3.1 `sts-ext-name` and §3.2 `sts-policy-ext-name`: a letter or
/// digit, then up to 31 letters, digits, `_`, `-` or `.`.
pub(crate) fn is_field_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_FIELD_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// RFC 5234 `WSP`.
fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_keywords_are_case_sensitive() {
        // RFC 8461 §3.2: sts-policy-mode-value = %s"testing" / %s"enforce" / %s"none".
        for mode in [Mode::Enforce, Mode::Testing, Mode::None] {
            assert_eq!(mode.as_str().parse::<Mode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.as_str());
        }
        let err = "Enforce".parse::<Mode>().unwrap_err();
        assert_eq!(err.to_string(), r#"mode: unknown value "Enforce" (expected enforce, testing or none)"#);
    }

    #[test]
    fn max_age_clamps() {
        // RFC 8461 §3.2: max_age is at most 31557600.
        assert_eq!(MaxAge::from_secs_clamped(0).as_secs(), 0);
        assert_eq!(MaxAge::from_secs_clamped(86_400).as_duration(), Duration::from_secs(86_400));
        assert_eq!(MaxAge::from_secs_clamped(31_557_600), MaxAge::MAX);
        assert_eq!(MaxAge::from_secs_clamped(31_557_601), MaxAge::MAX);
        assert_eq!(MaxAge::from_secs_clamped(u64::MAX), MaxAge::MAX);
    }

    #[test]
    fn field_names() {
        // RFC 8461 §3.1 sts-ext-name, §3.2 sts-policy-ext-name.
        for ok in ["a", "Z9", "x_y-z.w", &"a".repeat(32)] {
            assert!(is_field_name(ok), "{ok}");
        }
        for bad in ["", "_a", "-a", ".a", "a b", "a:b", "é", &"a".repeat(33)] {
            assert!(!is_field_name(bad), "{bad}");
        }
    }

    #[test]
    fn extension_parts() {
        let e = Extension::new("foo", "bar baz");
        assert_eq!((e.name(), e.value()), ("foo", "bar baz"));
        let mut list = vec![Extension::new("a", "1"), Extension::new("b", "2"), Extension::new("a", "3")];
        keep_first(&mut list);
        assert_eq!(list, [Extension::new("a", "1"), Extension::new("b", "2")]);
        // The hashed path for long lists keeps the same first occurrences.
        let mut long: Vec<_> = (0..40).map(|i| Extension::new(&format!("k{}", i % 20), &i.to_string())).collect();
        keep_first(&mut long);
        let want: Vec<_> = (0..20).map(|i| Extension::new(&format!("k{i}"), &i.to_string())).collect();
        assert_eq!(long, want);
    }
}
