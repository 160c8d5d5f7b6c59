//! The MTA-STS policy body (RFC 8461 §3.2).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{Extension, MaxAge, Mode, MxPattern, is_field_name, is_wsp, keep_first};
use crate::error::{ParseError, ParseErrorKind, quote};
use crate::name::{NAME_WINDOW, scan_name_into};

/// The largest policy body, in bytes. RFC 8461 §3.3: "senders SHOULD impose
/// a limit on the maximum size of the response body"; 64 KiB holds any real
/// policy with room to spare and keeps a hostile server from filling memory.
pub const MAX_POLICY_BYTES: usize = 65_536;

/// The largest policy text accepted from the crate's own storage (cache
/// snapshots, shared stores), in bytes: the [`Display`](fmt::Display) form
/// of a policy parsed from at most [`MAX_POLICY_BYTES`] can be longer than
/// its body (CRLF line ends, a space after each colon, U-label `mx`
/// patterns written as A-labels: at most about 3× for the worst line), so
/// stored policies are read with [`Policy::parse_stored`] under this
/// larger bound and always round-trip.
pub const MAX_STORED_POLICY_BYTES: usize = 4 * MAX_POLICY_BYTES;

/// The largest `max_age`, in seconds (RFC 8461 §3.2: "values MUST be less
/// than or equal to 31557600"). Larger published values are clamped.
pub const MAX_AGE_CAP: u32 = 31_557_600;

/// The most digits a `max_age` value may have (RFC 8461 §3.2
/// `sts-policy-max-age-value = 1*10(DIGIT)`).
pub const MAX_AGE_DIGITS: usize = 10;

/// An MTA-STS policy (RFC 8461 §3.2): its mode, lifetime and MX patterns.
///
/// The body is `key: value` lines ending in LF or CRLF:
///
/// ```text
/// version: STSv1
/// mode: enforce
/// mx: mail.example.com
/// mx: *.example.net
/// max_age: 604800
/// ```
///
/// - keys are case-sensitive; `version: STSv1`, `mode` and `max_age` are
///   required, and at least one `mx` unless the mode is `none`;
/// - a duplicated key other than `mx` keeps its first value (later ones must
///   still be well-formed lines); every `mx` counts;
/// - `max_age` is 1 to 10 digits; a value above [`MAX_AGE_CAP`] is clamped
///   to it, not refused;
/// - other keys are extensions, kept (first occurrence) but not
///   interpreted; their values may be UTF-8;
/// - blank lines and a last line without a terminator are accepted; nothing
///   else outside the RFC 8461 §3.2 ABNF is;
/// - a body over [`MAX_POLICY_BYTES`] is refused.
///
/// The crate's `manual` module gives the reasoning for each choice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    mode: Mode,
    max_age: MaxAge,
    mx: Vec<MxPattern>,
    extensions: Vec<Extension>,
}

impl Policy {
    /// A policy built from its parts. `mx` may be empty only for
    /// [`Mode::None`] (RFC 8461 §3.2).
    pub fn new(mode: Mode, max_age: MaxAge, mx: Vec<MxPattern>) -> Result<Self, ParseError> {
        if mx.is_empty() && mode != Mode::None {
            return Err(missing_mx(mode, 0));
        }
        Ok(Self { mode, max_age, mx, extensions: Vec::new() })
    }

    /// Parses a policy body (RFC 8461 §3.2).
    pub fn parse(body: &str) -> Result<Self, ParseError> {
        check_size(body.len(), MAX_POLICY_BYTES)?;
        parse_lines(body)
    }

    /// Parses a policy body as fetched over HTTPS: at most
    /// [`MAX_POLICY_BYTES`] of UTF-8 (RFC 8461 §3.2, §3.3).
    pub fn parse_bytes(body: &[u8]) -> Result<Self, ParseError> {
        check_size(body.len(), MAX_POLICY_BYTES)?;
        utf8_lines(body)
    }

    /// Parses a policy as the crate stores it (its `Display` form, in a
    /// snapshot or a shared store): as [`parse_bytes`](Self::parse_bytes)
    /// with the bound [`MAX_STORED_POLICY_BYTES`].
    pub fn parse_stored(text: &[u8]) -> Result<Self, ParseError> {
        check_size(text.len(), MAX_STORED_POLICY_BYTES)?;
        utf8_lines(text)
    }
}

/// UTF-8, then the lines (the size already checked).
fn utf8_lines(body: &[u8]) -> Result<Policy, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        let line = 1 + body[..at].iter().filter(|&&b| b == b'\n').count();
        ParseError::new(
            ParseErrorKind::InvalidUtf8,
            None,
            at,
            format!("invalid UTF-8 at byte {at} (a policy is UTF-8 text)"),
        )
        .with_line(line)
    })?;
    parse_lines(text)
}

impl Policy {
    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How long the policy may be cached, after the clamp to
    /// [`MAX_AGE_CAP`].
    pub fn max_age(&self) -> Duration {
        self.max_age.as_duration()
    }

    /// [`max_age`](Self::max_age) as its value type.
    pub fn max_age_value(&self) -> MaxAge {
        self.max_age
    }

    /// The MX patterns, in the order published (duplicates kept).
    pub fn mx(&self) -> &[MxPattern] {
        &self.mx
    }

    /// The extension keys, in order, first occurrence of each.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// Whether the MX host `host` matches one of the policy's patterns
    /// (RFC 8461 §4.1). This says nothing of the mode: under `testing` or
    /// `none` a non-matching host may still be used.
    pub fn allows_mx(&self, host: &str) -> bool {
        self.mx.iter().any(|p| p.matches(host))
    }
}

fn check_size(len: usize, limit: usize) -> Result<(), ParseError> {
    if len > limit {
        return Err(ParseError::new(
            ParseErrorKind::TooLarge,
            None,
            limit,
            format!("policy body is {len} bytes, over the {limit}-byte limit"),
        ));
    }
    Ok(())
}

fn missing_mx(mode: Mode, offset: usize) -> ParseError {
    ParseError::new(
        ParseErrorKind::MissingField,
        Some("mx"),
        offset,
        format!("missing (at least one mx line is required when the mode is {mode})"),
    )
}

/// The fields seen so far; `None` until the first occurrence.
#[derive(Default)]
struct Fields {
    version: bool,
    mode: Option<Mode>,
    max_age: Option<MaxAge>,
    mx: Vec<MxPattern>,
    extensions: Vec<Extension>,
}

fn parse_lines(body: &str) -> Result<Policy, ParseError> {
    let mut fields = Fields::default();
    let mut start = 0;
    let mut line_no = 1;
    let bytes = body.as_bytes();
    while start < body.len() {
        if let Some(next) = plain_mx_line(bytes, start, &mut fields.mx) {
            start = next;
            line_no += 1;
            continue;
        }
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(body.len(), |i| start + i);
        let line = &body[start..end];
        // LF or CRLF (RFC 8461 §3.2 sts-policy-term); a CR ending the body is
        // a CRLF cut short, not part of a value.
        let line = line.strip_suffix('\r').unwrap_or(line);
        parse_line(&mut fields, line, start).map_err(|e| e.with_line(line_no))?;
        start = end + 1;
        line_no += 1;
    }
    let end = body.len();
    let missing = |field: &'static str, what: &str| {
        ParseError::new(ParseErrorKind::MissingField, Some(field), end, format!("missing ({what})"))
    };
    let nothing = !fields.version && fields.mode.is_none() && fields.max_age.is_none();
    if nothing && fields.mx.is_empty() && fields.extensions.is_empty() {
        return Err(ParseError::new(ParseErrorKind::Empty, None, 0, "policy body is empty"));
    }
    if !fields.version {
        return Err(missing("version", "the policy must contain \"version: STSv1\""));
    }
    let Some(mode) = fields.mode else {
        return Err(missing("mode", "the policy must contain \"mode: enforce\", \"mode: testing\" or \"mode: none\""));
    };
    let Some(max_age) = fields.max_age else {
        return Err(missing("max_age", "the policy must contain \"max_age: <seconds>\""));
    };
    if fields.mx.is_empty() && mode != Mode::None {
        return Err(missing_mx(mode, end));
    }
    keep_first(&mut fields.extensions);
    Ok(Policy { mode, max_age, mx: fields.mx, extensions: fields.extensions })
}

/// The line at `start` when it is an `mx` line in its common form —
/// `mx:`, white space, an optional `*.`, a plain name (see
/// [`scan_name_into`]) and LF or CRLF — parsed in place, with where the
/// next line starts; the pattern is pushed onto `mx`. Any other line (or
/// one too near the end of the body for the name's window) is `None` and
/// goes through [`parse_line`], which gives the same pattern or the error.
#[inline]
fn plain_mx_line(body: &[u8], start: usize, mx: &mut Vec<MxPattern>) -> Option<usize> {
    let line = body.get(start..)?.strip_prefix(b"mx:")?;
    let lead = line.iter().take_while(|&&b| is_wsp(b)).count();
    let wildcard = line[lead..].starts_with(b"*.");
    let name_at = lead + 2 * usize::from(wildcard);
    let window = line.get(name_at..name_at + NAME_WINDOW)?.try_into().ok()?;
    // The name is written straight into its place in the vector (no copy
    // of the pattern); a line that does not qualify takes it back.
    mx.push(MxPattern::unfilled(wildcard));
    let scanned = mx.last_mut().and_then(|slot| scan_name_into(window, slot.base_mut()));
    // The name and its line end.
    let taken = scanned.and_then(|len| match &line[name_at + len..] {
        [b'\n', ..] => Some(len + 1),
        [b'\r', b'\n', ..] => Some(len + 2),
        _ => None,
    });
    let Some(taken) = taken else {
        mx.pop();
        return None;
    };
    Some(start + 3 + name_at + taken)
}

/// Parses one line (without its terminator) that starts at byte `at`.
fn parse_line(fields: &mut Fields, line: &str, at: usize) -> Result<(), ParseError> {
    // Most lines of a long policy are `mx` lines: the key needs no search.
    if let Some(rest) = line.strip_prefix("mx:") {
        let (value, lead) = trim_wsp(rest);
        let pattern = MxPattern::parse(value).map_err(|e| e.within(None, at + 3 + lead, "mx"))?;
        fields.mx.push(pattern);
        return Ok(());
    }
    if line.bytes().all(is_wsp) {
        return Ok(());
    }
    let colon = line.bytes().position(|b| b == b':');
    let Some((key, rest)) = colon.map(|i| (&line[..i], &line[i + 1..])) else {
        return Err(ParseError::new(
            ParseErrorKind::MalformedLine,
            None,
            at,
            format!("expected \"key: value\", found {}", quote(line)),
        ));
    };
    if !is_field_name(key) {
        let hint = if key.bytes().last().is_some_and(is_wsp) {
            " (no white space is allowed before \":\")"
        } else if key.bytes().next().is_some_and(is_wsp) {
            " (a line may not begin with white space)"
        } else {
            ""
        };
        return Err(ParseError::new(
            ParseErrorKind::InvalidFieldName,
            None,
            at,
            format!(
                "key {} is not valid: a letter or digit, then up to 31 letters, digits, \"_\", \"-\" or \".\"{hint}",
                quote(key)
            ),
        ));
    }
    // sts-policy-field-delim = ":" *WSP, and *WSP may follow any value.
    // WSP is ASCII: trimming bytes keeps UTF-8 boundaries.
    let (value, lead) = trim_wsp(rest);
    let value_at = at + key.len() + 1 + lead;
    let known = |e: ParseError, field: &'static str| e.within(None, value_at, field);
    match key {
        "version" if !fields.version => {
            if value != "STSv1" {
                return Err(ParseError::new(
                    ParseErrorKind::UnsupportedVersion,
                    Some("version"),
                    value_at,
                    format!("unsupported value {} (expected STSv1)", quote(value)),
                ));
            }
            fields.version = true;
        }
        "mode" if fields.mode.is_none() => {
            fields.mode = Some(value.parse().map_err(|e| known(e, "mode"))?);
        }
        "max_age" if fields.max_age.is_none() => {
            fields.max_age = Some(parse_max_age(value).map_err(|e| known(e, "max_age"))?);
        }
        "mx" => fields.mx.push(MxPattern::parse(value).map_err(|e| known(e, "mx"))?),
        _ => {
            check_value(value).map_err(|e| e.within(None, value_at, key.to_owned()))?;
            if !matches!(key, "version" | "mode" | "max_age") {
                fields.extensions.push(Extension::new(key, value));
            }
        }
    }
    Ok(())
}

/// `value` without white space around it, and how many bytes went before.
/// WSP is ASCII: trimming bytes keeps UTF-8 boundaries.
#[inline]
fn trim_wsp(value: &str) -> (&str, usize) {
    let b = value.as_bytes();
    let lead = b.iter().take_while(|&&c| is_wsp(c)).count();
    let trail = b[lead..].iter().rev().take_while(|&&c| is_wsp(c)).count();
    (&value[lead..value.len() - trail], lead)
}

/// RFC 8461 §3.2 `sts-policy-max-age-value = 1*10(DIGIT)`, clamped to
/// [`MAX_AGE_CAP`].
fn parse_max_age(value: &str) -> Result<MaxAge, ParseError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(
            ParseErrorKind::InvalidMaxAge,
            None,
            0,
            format!("invalid value {} (expected a number of seconds, 1 to 10 digits)", quote(value)),
        ));
    }
    if value.len() > MAX_AGE_DIGITS {
        return Err(ParseError::new(
            ParseErrorKind::MaxAgeTooLong,
            None,
            0,
            format!("value {} has {} digits, over the limit of {MAX_AGE_DIGITS}", quote(value), value.len()),
        ));
    }
    // At most 10 digits: fits in u64.
    let secs = value.bytes().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Ok(MaxAge::from_secs_clamped(secs))
}

/// RFC 8461 §3.2 `sts-policy-ext-value = sts-policy-vchar *(*WSP
/// sts-policy-vchar)`: visible characters (UTF-8 allowed) and inner white
/// space, no control characters. `value` is already trimmed.
fn check_value(value: &str) -> Result<(), ParseError> {
    let bad = value.char_indices().find(|&(_, c)| c.is_ascii_control() && c != '\t');
    match (value.is_empty(), bad) {
        (true, _) => Err(ParseError::new(ParseErrorKind::InvalidFieldValue, None, 0, "empty value")),
        (false, Some((at, c))) => Err(ParseError::new(
            ParseErrorKind::InvalidFieldValue,
            None,
            at,
            format!("control character {c:?} in {}", quote(value)),
        )),
        (false, None) => Ok(()),
    }
}

impl FromStr for Policy {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Policy {
    /// Renders the canonical body: `version`, `mode`, each `mx`, `max_age`,
    /// then the extensions, each line ending in CRLF (RFC 8461 §3.2).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "version: STSv1\r\nmode: {}\r\n", self.mode)?;
        for mx in &self.mx {
            write!(f, "mx: {mx}\r\n")?;
        }
        write!(f, "max_age: {}\r\n", self.max_age)?;
        for e in &self.extensions {
            write!(f, "{}: {}\r\n", e.name(), e.value())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mx` lines parsed in place give the policy (or the error kind) that
    /// the line-by-line path gives; white space before each line end takes
    /// every line through `parse_line` without changing its meaning
    /// (RFC 8461 §3.2 `*WSP` after a value).
    #[test]
    fn plain_mx_lines_agree_with_parse_line() {
        use proptest::prelude::*;
        let line = proptest::string::string_regex("mx:[ \t]{0,2}(\\*\\.)?[a-zA-Z0-9.\\-*_]{0,50}").unwrap();
        let lines = proptest::collection::vec((line, any::<bool>()), 1..12);
        proptest!(ProptestConfig::with_cases(3000), |(lines in lines, tail in "[a-z ]{0,60}")| {
            let mut body = String::from("version: STSv1\nmode: enforce\nmax_age: 86400\n");
            let mut slow = body.clone();
            for (line, crlf) in &lines {
                let end = if *crlf { "\r\n" } else { "\n" };
                body.push_str(&format!("{line}{end}"));
                slow.push_str(&format!("{line} {end}"));
            }
            // Short tails put the last lines' windows past the end of the body.
            body.push_str(&format!("x-tail: {tail}"));
            slow.push_str(&format!("x-tail: {tail}"));
            match (Policy::parse(&body), Policy::parse(&slow)) {
                (Ok(fast), Ok(slow)) => prop_assert_eq!(fast, slow),
                (Err(fast), Err(slow)) => {
                    prop_assert_eq!(fast.kind(), slow.kind());
                    prop_assert_eq!(fast.line(), slow.line());
                }
                (fast, slow) => prop_assert!(false, "{:?}: {:?} but {:?}", body, fast, slow),
            }
        });
    }
    use ParseErrorKind::*;

    const HEAD: &str = "version: STSv1\nmode: enforce\nmax_age: 86400\n";

    fn policy(body: &str) -> Policy {
        Policy::parse(body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
    }

    fn mx_of(p: &Policy) -> Vec<String> {
        p.mx().iter().map(ToString::to_string).collect()
    }

    /// RFC 8461 §3.2: the RFC's own example policy.
    #[test]
    fn rfc8461_3_2_example() {
        let p = policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
        );
        assert_eq!(p.mode(), Mode::Enforce);
        assert_eq!(p.max_age(), Duration::from_secs(604_800));
        assert_eq!(mx_of(&p), ["mail.example.com", "*.example.net", "backupmx.example.com"]);
        assert!(p.extensions().is_empty());
    }

    /// RFC 8461 §3.2 sts-policy-term = LF / CRLF; a last line without a
    /// terminator is allowed ([sts-policy-term]); blank lines are accepted.
    #[test]
    fn rfc8461_3_2_line_endings() {
        let want = policy("version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 5\n");
        for body in [
            "version: STSv1\r\nmode: testing\r\nmx: mx.example\r\nmax_age: 5\r\n",
            "version: STSv1\nmode: testing\r\nmx: mx.example\nmax_age: 5",
            "version: STSv1\r\nmode: testing\r\nmx: mx.example\r\nmax_age: 5\r",
            "\n\nversion: STSv1\n\n \t\nmode: testing\r\n\r\nmx: mx.example\nmax_age: 5\n\n",
            "version:STSv1\nmode:\ttesting \nmx:   mx.example\t\nmax_age:5",
        ] {
            assert_eq!(policy(body), want, "{body:?}");
        }
    }

    /// RFC 8461 §3.2: field order is free; keys are case-sensitive; a
    /// duplicated key other than mx keeps its first value; unknown keys are
    /// extensions whose values may be UTF-8.
    #[test]
    fn rfc8461_3_2_fields() {
        let p = policy("max_age: 60\nmx: b.example\nmode: testing\nversion: STSv1\nmx: a.example\n");
        assert_eq!((p.mode(), p.max_age().as_secs()), (Mode::Testing, 60));
        assert_eq!(mx_of(&p), ["b.example", "a.example"]);

        let p = policy(&format!("{HEAD}mode: testing\nmax_age: 1\nversion: STSv2\nmx: a.example\nmx: a.example\n"));
        assert_eq!((p.mode(), p.max_age().as_secs()), (Mode::Enforce, 86_400));
        assert_eq!(mx_of(&p), ["a.example", "a.example"]);

        let p = policy(&format!("{HEAD}mx: a.example\nMode: none\nx-note: café ☕ policy\tv2\nx-note: later\n"));
        assert_eq!(p.mode(), Mode::Enforce);
        let ext: Vec<_> = p.extensions().iter().map(|e| (e.name(), e.value())).collect();
        assert_eq!(ext, [("Mode", "none"), ("x-note", "café ☕ policy\tv2")]);
    }

    /// RFC 8461 §3.2: mx is required unless the mode is none.
    #[test]
    fn rfc8461_3_2_mx_required_unless_none() {
        let p = policy("version: STSv1\nmode: none\nmax_age: 86400\n");
        assert_eq!((p.mode(), p.mx().len()), (Mode::None, 0));
        let p = policy("version: STSv1\nmode: none\nmx: mx.example\nmax_age: 86400\n");
        assert_eq!(mx_of(&p), ["mx.example"]);
        for mode in ["enforce", "testing"] {
            let err = Policy::parse(&format!("version: STSv1\nmode: {mode}\nmax_age: 86400\n")).unwrap_err();
            assert_eq!(err.kind(), MissingField);
            assert_eq!(
                err.to_string(),
                format!("mx: missing (at least one mx line is required when the mode is {mode})")
            );
            assert_eq!((err.line(), err.offset()), (None, 37 + mode.len()));
        }
        assert_eq!(Policy::new(Mode::Enforce, MaxAge::MAX, vec![]).unwrap_err().kind(), MissingField);
        assert!(Policy::new(Mode::None, MaxAge::MAX, vec![]).is_ok());
    }

    /// RFC 8461 §3.2 sts-policy-max-age-value = 1*10(DIGIT), at most
    /// 31557600; DESIGN.md: a larger value is clamped, not refused.
    #[test]
    fn rfc8461_3_2_max_age() {
        let cases = [
            ("0", 0),
            ("1", 1),
            ("0000086400", 86_400),
            ("31557600", 31_557_600),
            ("31557601", 31_557_600),
            ("9999999999", 31_557_600),
        ];
        for (value, secs) in cases {
            let p = policy(&format!("version: STSv1\nmode: none\nmax_age: {value}\n"));
            assert_eq!(p.max_age().as_secs(), secs, "{value}");
        }
        let bad: &[(&str, ParseErrorKind, &str)] = &[
            ("", InvalidMaxAge, r#"invalid value "" (expected a number of seconds, 1 to 10 digits)"#),
            ("-1", InvalidMaxAge, r#"invalid value "-1" (expected a number of seconds, 1 to 10 digits)"#),
            ("+5", InvalidMaxAge, r#"invalid value "+5" (expected a number of seconds, 1 to 10 digits)"#),
            ("1.5", InvalidMaxAge, r#"invalid value "1.5" (expected a number of seconds, 1 to 10 digits)"#),
            ("1 d", InvalidMaxAge, r#"invalid value "1 d" (expected a number of seconds, 1 to 10 digits)"#),
            ("８", InvalidMaxAge, r#"invalid value "８" (expected a number of seconds, 1 to 10 digits)"#),
            ("10000000000", MaxAgeTooLong, r#"value "10000000000" has 11 digits, over the limit of 10"#),
        ];
        for &(value, kind, message) in bad {
            let err = Policy::parse(&format!("version: STSv1\nmode: none\nmax_age: {value}\n")).unwrap_err();
            assert_eq!((err.kind(), err.to_string()), (kind, format!("line 3: max_age: {message}")), "{value:?}");
            assert_eq!(err.offset(), 35);
        }
    }

    /// RFC 8461 §3.2: every failure with its kind, line, offset and message.
    #[test]
    fn rfc8461_3_2_invalid_bodies() {
        let cases: &[(&str, ParseErrorKind, Option<usize>, usize, &str)] = &[
            ("", Empty, None, 0, "policy body is empty"),
            ("\r\n\n  \n", Empty, None, 0, "policy body is empty"),
            (
                "mode: enforce\nmx: a.example\nmax_age: 1\n",
                MissingField,
                None,
                39,
                r#"version: missing (the policy must contain "version: STSv1")"#,
            ),
            (
                "version: STSv1\nmx: a.example\nmax_age: 1\n",
                MissingField,
                None,
                40,
                r#"mode: missing (the policy must contain "mode: enforce", "mode: testing" or "mode: none")"#,
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\n",
                MissingField,
                None,
                43,
                r#"max_age: missing (the policy must contain "max_age: <seconds>")"#,
            ),
            (
                "version: STSv2\nmode: none\nmax_age: 1\n",
                UnsupportedVersion,
                Some(1),
                9,
                r#"line 1: version: unsupported value "STSv2" (expected STSv1)"#,
            ),
            (
                "version: stsv1\nmode: none\nmax_age: 1\n",
                UnsupportedVersion,
                Some(1),
                9,
                r#"line 1: version: unsupported value "stsv1" (expected STSv1)"#,
            ),
            (
                "version: STSv1\nmax_age: 86400\nmode: enforced\n",
                UnknownMode,
                Some(3),
                36,
                r#"line 3: mode: unknown value "enforced" (expected enforce, testing or none)"#,
            ),
            (
                "version: STSv1\nmode: ENFORCE\n",
                UnknownMode,
                Some(2),
                21,
                r#"line 2: mode: unknown value "ENFORCE" (expected enforce, testing or none)"#,
            ),
            (
                "version: STSv1\nmode: none\nmax_age: 1\nthis is not a field\n",
                MalformedLine,
                Some(4),
                37,
                r#"line 4: expected "key: value", found "this is not a field""#,
            ),
            (
                "version: STSv1\nmode : none\n",
                InvalidFieldName,
                Some(2),
                15,
                r#"line 2: key "mode " is not valid: a letter or digit, then up to 31 letters, digits, "_", "-" or "." (no white space is allowed before ":")"#,
            ),
            (
                "version: STSv1\n mode: none\n",
                InvalidFieldName,
                Some(2),
                15,
                r#"line 2: key " mode" is not valid: a letter or digit, then up to 31 letters, digits, "_", "-" or "." (a line may not begin with white space)"#,
            ),
            (
                "version: STSv1\n: none\n",
                InvalidFieldName,
                Some(2),
                15,
                r#"line 2: key "" is not valid: a letter or digit, then up to 31 letters, digits, "_", "-" or ".""#,
            ),
            (
                "version: STSv1\nmode: none\nmax_age: 1\nnote:\n",
                InvalidFieldValue,
                Some(4),
                42,
                "line 4: note: empty value",
            ),
            (
                "version: STSv1\nmode: none\nmax_age: 1\nnote: a\u{7f}b\n",
                InvalidFieldValue,
                Some(4),
                44,
                r#"line 4: note: control character '\u{7f}' in "a\u{7f}b""#,
            ),
            (
                "version: STSv1\nmode: none\nmax_age: 1\nnote: a\rb\n",
                InvalidFieldValue,
                Some(4),
                44,
                r#"line 4: note: control character '\r' in "a\rb""#,
            ),
            (
                "version: STSv1\nmode: none\nmode:\nmax_age: 1\n",
                InvalidFieldValue,
                Some(3),
                31,
                "line 3: mode: empty value",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail.example.com:25\nmax_age: 1\n",
                InvalidCharacter,
                Some(3),
                49,
                r#"line 3: mx: "mail.example.com:25": ':' is not allowed (letters, digits, hyphens and dots only)"#,
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail.*.example.com\nmax_age: 1\n",
                MisplacedWildcard,
                Some(3),
                38,
                r#"line 3: mx: "mail.*.example.com": "*" at byte 5 is not allowed; a wildcard must be the whole left-most label, as in "*.example.com""#,
            ),
            (
                "version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n",
                Empty,
                Some(3),
                32,
                r#"line 3: mx: "": empty domain name"#,
            ),
        ];
        for &(body, kind, line, offset, message) in cases {
            let err = Policy::parse(body).expect_err(body);
            assert_eq!(
                (err.kind(), err.line(), err.offset(), err.to_string().as_str()),
                (kind, line, offset, message),
                "{body:?}"
            );
            assert_eq!(Policy::parse_bytes(body.as_bytes()), Err(err));
        }
    }

    /// RFC 8461 §3.2 (UTF-8 text) and §3.3 (a limit on the body size).
    #[test]
    fn rfc8461_3_3_bytes_and_size() {
        let mut body = format!("{HEAD}mx: a.example\n").into_bytes();
        body.extend_from_slice(b"note: \xff\xfe\n");
        let err = Policy::parse_bytes(&body).unwrap_err();
        assert_eq!((err.kind(), err.line(), err.offset()), (InvalidUtf8, Some(5), 64));
        assert_eq!(err.to_string(), "line 5: invalid UTF-8 at byte 64 (a policy is UTF-8 text)");

        let mut at_limit = format!("{HEAD}mx: a.example\n");
        let pad = MAX_POLICY_BYTES - at_limit.len() - "\n".len();
        at_limit.push_str(&" ".repeat(pad));
        at_limit.push('\n');
        assert_eq!(at_limit.len(), MAX_POLICY_BYTES);
        assert!(Policy::parse(&at_limit).is_ok());
        assert!(Policy::parse_bytes(at_limit.as_bytes()).is_ok());
        at_limit.push('\n');
        for err in [Policy::parse(&at_limit).unwrap_err(), Policy::parse_bytes(at_limit.as_bytes()).unwrap_err()] {
            assert_eq!(err.kind(), TooLarge);
            assert_eq!(err.to_string(), "policy body is 65537 bytes, over the 65536-byte limit");
        }
    }

    #[test]
    fn display_is_canonical() {
        let p = policy("max_age: 99999999\nmx: *.Example.NET.\nmode: testing\nversion: STSv1\nb: 2\na:  x  y \n");
        let text = p.to_string();
        assert_eq!(
            text,
            "version: STSv1\r\nmode: testing\r\nmx: *.example.net\r\nmax_age: 31557600\r\nb: 2\r\na: x  y\r\n"
        );
        assert_eq!(policy(&text), p);
        assert_eq!(text.parse::<Policy>().unwrap(), p);
    }

    #[test]
    fn allows_mx_uses_every_pattern() {
        let p = policy(&format!("{HEAD}mx: mail.example.com\nmx: *.example.net\n"));
        assert!(p.allows_mx("mail.example.com"));
        assert!(p.allows_mx("x.example.net."));
        assert!(!p.allows_mx("example.net"));
        assert!(!p.allows_mx("mail.example.org"));
    }
}
