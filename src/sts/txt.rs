//! The `_mta-sts` TXT record (RFC 8461 §3.1).

use std::fmt;
use std::str::FromStr;

use super::{Extension, is_field_name, is_wsp, keep_first};
use crate::error::{ParseError, ParseErrorKind, quote};

/// The version tag a record must begin with, case-sensitively (RFC 8461
/// §3.1 `sts-version = %s"v=STSv1"`).
pub const STS_VERSION: &str = "v=STSv1";

/// The longest policy id (RFC 8461 §3.1 `sts-id = %s"id=" 1*32(ALPHA / DIGIT)`).
pub const MAX_ID_LEN: usize = 32;

/// A policy id: 1 to [`MAX_ID_LEN`] ASCII letters and digits, compared
/// byte for byte (case-sensitively).
///
/// Held inline, without allocation: a cache entry keeps one per domain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    bytes: [u8; MAX_ID_LEN],
    len: u8,
}

impl PolicyId {
    /// Validates an id (RFC 8461 §3.1).
    pub fn parse(id: &str) -> Result<Self, ParseError> {
        let invalid = |what: &str| {
            ParseError::new(ParseErrorKind::InvalidId, Some("id"), 0, format!("invalid value {}: {what}", quote(id)))
        };
        if id.is_empty() {
            return Err(invalid("empty (1 to 32 letters and digits required)"));
        }
        if let Some(at) = id.bytes().position(|b| !b.is_ascii_alphanumeric()) {
            let c = id[at..].chars().next().unwrap_or_default();
            return Err(invalid(&format!("{c:?} is not allowed (letters and digits only)")).within(None, at, "id"));
        }
        if id.len() > MAX_ID_LEN {
            return Err(invalid(&format!("{} characters, over the limit of {MAX_ID_LEN}", id.len())));
        }
        let mut bytes = [0; MAX_ID_LEN];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        // At most MAX_ID_LEN (32), so it fits.
        Ok(Self { bytes, len: id.len() as u8 })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl FromStr for PolicyId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyId({:?})", self.as_str())
    }
}

/// One `_mta-sts` TXT record, its strings already joined (RFC 8461 §3.1).
///
/// Grammar, as RFC 8461 §3.1 gives it:
///
/// ```text
/// sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
/// sts-field       = sts-id / sts-extension
/// sts-field-delim = *WSP ";" *WSP
/// sts-version     = %s"v=STSv1"
/// sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
/// sts-extension   = sts-ext-name "=" sts-ext-value
/// sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
/// sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
/// ```
///
/// `id` is required; unknown extensions are kept but not interpreted; of a
/// duplicated field the first wins (later ones must still be well-formed).
/// White space after the last field is allowed only around a final `;`.
///
/// ```
/// use smtp_tls_policy::sts::TxtRecord;
/// let txt = TxtRecord::parse("v=STSv1; id=20160831085700Z;").unwrap();
/// assert_eq!(txt.id(), "20160831085700Z");
/// assert_eq!(txt.to_string(), "v=STSv1; id=20160831085700Z");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxtRecord {
    id: PolicyId,
    extensions: Vec<Extension>,
}

impl TxtRecord {
    /// A record with this id and no extensions.
    pub fn new(id: PolicyId) -> Self {
        Self { id, extensions: Vec::new() }
    }

    /// Parses one record (RFC 8461 §3.1).
    pub fn parse(record: &str) -> Result<Self, ParseError> {
        match plain_record(record.as_bytes()) {
            Some(id) => Ok(Self::new(id)),
            None => Self::parse_fields(record),
        }
    }

    /// [`parse`](Self::parse) by the whole grammar.
    fn parse_fields(record: &str) -> Result<Self, ParseError> {
        let b = record.as_bytes();
        if !has_version(record, STS_VERSION) {
            let found = record.get(..STS_VERSION.len() + 1).unwrap_or(record);
            let hint = if record.len() >= STS_VERSION.len()
                && record.as_bytes()[..STS_VERSION.len()].eq_ignore_ascii_case(STS_VERSION.as_bytes())
                && !record.starts_with(STS_VERSION)
            {
                " (the tag is case-sensitive)"
            } else {
                ""
            };
            return Err(ParseError::new(
                ParseErrorKind::MissingVersion,
                None,
                0,
                format!("record must begin with \"v=STSv1;\", found {}{hint}", quote(found)),
            ));
        }
        let mut id = None;
        let mut extensions = Vec::new();
        let mut pos = STS_VERSION.len();
        loop {
            let delimiter = pos;
            while pos < b.len() && is_wsp(b[pos]) {
                pos += 1;
            }
            if pos == b.len() {
                if pos > delimiter {
                    return Err(malformed(
                        delimiter,
                        "white space after the last field (only \";\" may end the record)",
                    ));
                }
                break;
            }
            if b[pos] != b';' {
                return Err(malformed(pos, "fields must be separated by \";\""));
            }
            pos += 1;
            while pos < b.len() && is_wsp(b[pos]) {
                pos += 1;
            }
            if pos == b.len() {
                break;
            }
            let start = pos;
            while pos < b.len() && b[pos] != b';' && !is_wsp(b[pos]) {
                pos += 1;
            }
            // The field ends at an ASCII delimiter, so these are char boundaries.
            let field = &record[start..pos];
            let Some((name, value)) = field.split_once('=') else {
                return Err(if field.is_empty() {
                    malformed(start, "empty field between two \";\"")
                } else {
                    malformed(start, &format!("field {} is not name=value", quote(field)))
                });
            };
            if !is_field_name(name) {
                return Err(ParseError::new(
                    ParseErrorKind::InvalidFieldName,
                    None,
                    start,
                    format!(
                        "field name {} is not valid (a letter or digit, then up to 31 letters, digits, \"_\", \"-\" or \".\")",
                        quote(name)
                    ),
                ));
            }
            let value_at = start + name.len() + 1;
            if name == "id" && id.is_none() {
                id = Some(PolicyId::parse(value).map_err(|e| e.within(None, value_at, "id"))?);
                continue;
            }
            check_ext_value(name, value, value_at)?;
            if name != "id" {
                extensions.push(Extension::new(name, value));
            }
        }
        let Some(id) = id else {
            return Err(ParseError::new(
                ParseErrorKind::MissingId,
                Some("id"),
                b.len(),
                "missing (the record must carry id=<1 to 32 letters and digits>)",
            ));
        };
        keep_first(&mut extensions);
        Ok(Self { id, extensions })
    }

    /// The policy id, which changes whenever the policy does.
    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The policy id as a value.
    pub fn policy_id(&self) -> PolicyId {
        self.id
    }

    /// The extension fields, in order, first occurrence of each name.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }
}

/// RFC 8461 §3.1 `sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)`: visible
/// ASCII except `;` and `=`.
fn check_ext_value(name: &str, value: &str, offset: usize) -> Result<(), ParseError> {
    let bad = value.bytes().position(|c| !(0x21..=0x7e).contains(&c) || c == b';' || c == b'=');
    if value.is_empty() || bad.is_some() {
        let what = match bad {
            Some(at) => format!(
                "{:?} is not allowed (visible ASCII except \";\" and \"=\")",
                value[at..].chars().next().unwrap_or_default()
            ),
            None => "empty value".to_owned(),
        };
        return Err(ParseError::new(
            ParseErrorKind::InvalidFieldValue,
            None,
            offset + bad.unwrap_or(0),
            format!("{name}: invalid value {}: {what}", quote(value)),
        ));
    }
    Ok(())
}

fn malformed(offset: usize, what: &str) -> ParseError {
    ParseError::new(ParseErrorKind::MalformedField, None, offset, format!("byte {offset}: {what}"))
}

/// Whether a record begins with the version `tag` for the purpose of record
/// selection (RFC 8461 §3.1, RFC 8460 §3): the tag followed by `;`, white
/// space or nothing. (`v=STSv10;…` is some other version and is dropped;
/// the RFCs' "records that do not begin with "v=STSv1;" are discarded"
/// would also drop `v=STSv1 ;…`, which their ABNF allows, so white space
/// is accepted too.)
/// The id of the record nearly every domain publishes, `v=STSv1;` and
/// white space, `id=` and 1 to 32 letters and digits, then an optional
/// `;`, found without the field loop. Anything else is `None` and takes the
/// full parse, which accepts it with the same result or gives the error:
/// this accepts a subset of the grammar.
fn plain_record(record: &[u8]) -> Option<PolicyId> {
    let rest = record.strip_prefix(b"v=STSv1;")?;
    let lead = rest.iter().take_while(|&&b| is_wsp(b)).count();
    let id = rest[lead..].strip_prefix(b"id=")?;
    let id = id.strip_suffix(b";").unwrap_or(id);
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut bytes = [0; MAX_ID_LEN];
    bytes[..id.len()].copy_from_slice(id);
    // At most MAX_ID_LEN (32), so it fits.
    Some(PolicyId { bytes, len: id.len() as u8 })
}

fn has_version(record: &str, tag: &str) -> bool {
    record.starts_with(tag) && record.as_bytes().get(tag.len()).is_none_or(|&b| b == b';' || is_wsp(b))
}

/// The one record of `rrset` that begins with the version `tag`, or how
/// many there were when not exactly one (RFC 8461 §3.1, RFC 8460 §3).
pub(crate) fn exactly_one<'a>(rrset: impl IntoIterator<Item = &'a str>, tag: &str) -> Result<&'a str, usize> {
    let mut found = None;
    let mut count = 0;
    for record in rrset.into_iter().filter(|r| has_version(r, tag)) {
        count += 1;
        found.get_or_insert(record);
    }
    found.filter(|_| count == 1).ok_or(count)
}

impl FromStr for TxtRecord {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TxtRecord {
    /// Renders `v=STSv1; id=…` followed by `; name=value` for each extension.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STS_VERSION}; id={}", self.id)?;
        for e in &self.extensions {
            write!(f, "; {}={}", e.name(), e.value())?;
        }
        Ok(())
    }
}

/// Why a `_mta-sts` TXT RRset yields no record (RFC 8461 §3.1). In every
/// case the sender must assume the domain has no available policy; a live
/// cached policy still applies (RFC 8461 §5.1, DESIGN.md "Cache").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxtError {
    /// No record begins with `v=STSv1`.
    #[error("no _mta-sts TXT record begins with \"v=STSv1\": the domain publishes no MTA-STS policy")]
    NoRecord,
    /// More than one record begins with `v=STSv1`.
    #[error(
        "{count} _mta-sts TXT records begin with \"v=STSv1\"; RFC 8461 §3.1 requires exactly one, so no policy applies (the domain owner must remove all but one)"
    )]
    Several {
        /// How many records begin with `v=STSv1`.
        count: usize,
    },
    /// The one record beginning with `v=STSv1` does not parse.
    #[error("the _mta-sts TXT record is invalid, so no policy applies: {0}")]
    Invalid(#[source] ParseError),
}

impl TxtError {
    /// Always `false`: the RRset itself is at fault, not the lookup.
    pub fn is_temporary(&self) -> bool {
        false
    }
}

/// Selects the MTA-STS record from a whole `_mta-sts` TXT RRset, each
/// record's strings already joined without spaces (RFC 8461 §3.1): records
/// not beginning with `v=STSv1` (followed by `;`, white space or nothing)
/// are dropped; exactly one must remain, and it must parse.
///
/// ```
/// use smtp_tls_policy::sts::{TxtError, select_txt};
/// assert_eq!(select_txt(["v=STSv1; id=a1"]).unwrap().id(), "a1");
/// assert_eq!(select_txt(["v=spf1 -all"]), Err(TxtError::NoRecord));
/// assert_eq!(select_txt(["v=STSv1; id=a", "v=STSv1; id=b"]), Err(TxtError::Several { count: 2 }));
/// ```
pub fn select_txt<'a>(rrset: impl IntoIterator<Item = &'a str>) -> Result<TxtRecord, TxtError> {
    match exactly_one(rrset, STS_VERSION) {
        Ok(record) => TxtRecord::parse(record).map_err(TxtError::Invalid),
        Err(0) => Err(TxtError::NoRecord),
        Err(count) => Err(TxtError::Several { count }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut for the common record accepts only what the whole
    /// grammar accepts, with the same record (RFC 8461 §3.1).
    #[test]
    fn plain_record_agrees_with_the_grammar() {
        use proptest::prelude::*;
        let records = proptest::string::string_regex("v=STSv1;[ \t;]{0,2}(id|ID|i)=[A-Za-z0-9_= ;]{0,35}").unwrap();
        proptest!(ProptestConfig::with_cases(4000), |(record in records)| {
            if let Some(id) = plain_record(record.as_bytes()) {
                let full = TxtRecord::parse_fields(&record);
                prop_assert_eq!(full.map(|r| r.policy_id()).ok(), Some(id), "{:?}", record);
            }
        });
        for record in
            ["v=STSv1; id=1", "v=STSv1;id=abc;", "v=STSv1;\t id=abc", &format!("v=STSv1; id={}", "a".repeat(32))]
        {
            assert!(plain_record(record.as_bytes()).is_some(), "{record:?}");
        }
        for record in ["v=STSv1; id=", "v=STSv1; id=a b", "v=STSv1; id=abc;;", "v=STSv1 ; id=abc", "v=STSv1; id=abc; "]
        {
            assert!(plain_record(record.as_bytes()).is_none(), "{record:?}");
        }
    }

    fn id_of(record: &str) -> Result<String, ParseError> {
        TxtRecord::parse(record).map(|t| t.id().to_owned())
    }

    /// RFC 8461 §3.1: records that parse, and the id each yields.
    #[test]
    fn rfc8461_3_1_valid_records() {
        let cases = [
            // The RFC's own example.
            ("v=STSv1; id=20160831085700Z;", "20160831085700Z"),
            ("v=STSv1;id=abc", "abc"),
            ("v=STSv1; id=abc", "abc"),
            ("v=STSv1 ;\tid=abc\t; ", "abc"),
            ("v=STSv1; id=abc;", "abc"),
            ("v=STSv1; id=abc ;", "abc"),
            // Extensions before and after id; unknown ones are ignored.
            ("v=STSv1; foo=bar; id=x1", "x1"),
            ("v=STSv1; id=x1; a_b-c.d=!\"#$%&'()*+,-./0123456789:<>?@[\\]^_`{|}~", "x1"),
            // A duplicated field: the first wins.
            ("v=STSv1; id=first; id=second", "first"),
            ("v=STSv1; id=first; id=not-an-id", "first"),
            // 32 characters is the longest id.
            ("v=STSv1; id=0123456789abcdefABCDEF0123456789", "0123456789abcdefABCDEF0123456789"),
            // "ID" is not "id" (%s), so it is an extension.
            ("v=STSv1; ID=zz; id=yy", "yy"),
        ];
        for (record, id) in cases {
            assert_eq!(id_of(record).unwrap_or_else(|e| panic!("{record:?}: {e}")), id, "{record:?}");
        }
    }

    /// RFC 8461 §3.1: records that must not parse, with kind, offset and
    /// the exact message.
    #[test]
    fn rfc8461_3_1_invalid_records() {
        use ParseErrorKind::*;
        let cases: &[(&str, ParseErrorKind, usize, &str)] = &[
            ("", MissingVersion, 0, r#"record must begin with "v=STSv1;", found """#),
            ("v=STSv1", MissingId, 7, "id: missing (the record must carry id=<1 to 32 letters and digits>)"),
            ("v=STSv1;", MissingId, 8, "id: missing (the record must carry id=<1 to 32 letters and digits>)"),
            ("v=STSv1; foo=bar", MissingId, 16, "id: missing (the record must carry id=<1 to 32 letters and digits>)"),
            (
                "v=stsv1; id=abc",
                MissingVersion,
                0,
                r#"record must begin with "v=STSv1;", found "v=stsv1;" (the tag is case-sensitive)"#,
            ),
            ("v=STSv10; id=abc", MissingVersion, 0, r#"record must begin with "v=STSv1;", found "v=STSv10""#),
            (" v=STSv1; id=abc", MissingVersion, 0, r#"record must begin with "v=STSv1;", found " v=STSv1""#),
            ("id=abc; v=STSv1", MissingVersion, 0, r#"record must begin with "v=STSv1;", found "id=abc; ""#),
            ("v=STSv1; id=abc def", MalformedField, 16, r#"byte 16: fields must be separated by ";""#),
            ("v=STSv1 id=abc", MalformedField, 8, r#"byte 8: fields must be separated by ";""#),
            (
                "v=STSv1; id=abc ",
                MalformedField,
                15,
                r#"byte 15: white space after the last field (only ";" may end the record)"#,
            ),
            ("v=STSv1;; id=abc", MalformedField, 8, r#"byte 8: empty field between two ";""#),
            ("v=STSv1; id=abc;;", MalformedField, 16, r#"byte 16: empty field between two ";""#),
            ("v=STSv1; id", MalformedField, 9, r#"byte 9: field "id" is not name=value"#),
            ("v=STSv1; id=", InvalidId, 12, r#"id: invalid value "": empty (1 to 32 letters and digits required)"#),
            (
                "v=STSv1; id=2016-08-31",
                InvalidId,
                16,
                r#"id: invalid value "2016-08-31": '-' is not allowed (letters and digits only)"#,
            ),
            (
                "v=STSv1; id=0123456789abcdefABCDEF0123456789X",
                InvalidId,
                12,
                r#"id: invalid value "0123456789abcdefABCDEF0123456789X": 33 characters, over the limit of 32"#,
            ),
            (
                "v=STSv1; id=abc; =x",
                InvalidFieldName,
                17,
                r#"field name "" is not valid (a letter or digit, then up to 31 letters, digits, "_", "-" or ".")"#,
            ),
            (
                "v=STSv1; id=abc; _x=1",
                InvalidFieldName,
                17,
                r#"field name "_x" is not valid (a letter or digit, then up to 31 letters, digits, "_", "-" or ".")"#,
            ),
            ("v=STSv1; id=abc; x=", InvalidFieldValue, 19, r#"x: invalid value "": empty value"#),
            (
                "v=STSv1; id=abc; x=a=b",
                InvalidFieldValue,
                20,
                r#"x: invalid value "a=b": '=' is not allowed (visible ASCII except ";" and "=")"#,
            ),
            (
                "v=STSv1; id=abc; x=é",
                InvalidFieldValue,
                19,
                r#"x: invalid value "é": 'é' is not allowed (visible ASCII except ";" and "=")"#,
            ),
            (
                "v=STSv1; id=abc; id=a\u{1}",
                InvalidFieldValue,
                21,
                r#"id: invalid value "a\u{1}": '\u{1}' is not allowed (visible ASCII except ";" and "=")"#,
            ),
        ];
        for &(record, kind, offset, message) in cases {
            let err = TxtRecord::parse(record).expect_err(record);
            assert_eq!((err.kind(), err.to_string().as_str(), err.offset()), (kind, message, offset), "{record:?}");
        }
        // 33-character extension name.
        let long = format!("v=STSv1; id=a; {}=1", "n".repeat(33));
        assert_eq!(TxtRecord::parse(&long).unwrap_err().kind(), InvalidFieldName);
    }

    /// RFC 8461 §3.1: "If the number of resulting records is not one, or if
    /// the resulting record is syntactically invalid, senders MUST assume
    /// the recipient domain does not have an available MTA-STS Policy."
    #[test]
    fn rfc8461_3_1_exactly_one_record() {
        let ok = select_txt(["v=spf1 include:_spf.example.com -all", "v=STSv1; id=one", "google-site-verification=x"]);
        assert_eq!(ok.unwrap().id(), "one");
        assert_eq!(select_txt(Vec::<&str>::new()), Err(TxtError::NoRecord));
        assert_eq!(select_txt(["v=STSv10; id=x", "V=STSv1; id=y"]), Err(TxtError::NoRecord));
        // The version check drops a future version that shares the prefix.
        assert_eq!(select_txt(["v=STSv10; id=x", "v=STSv1; id=y"]).unwrap().id(), "y");
        let several = select_txt(["v=STSv1; id=a", "v=STSv1; id=b", "v=STSv1; id=c"]);
        assert_eq!(several, Err(TxtError::Several { count: 3 }));
        // Two identical records are still two records.
        assert_eq!(select_txt(["v=STSv1; id=a", "v=STSv1; id=a"]), Err(TxtError::Several { count: 2 }));
        // An invalid record among them counts as one of the candidates.
        assert_eq!(select_txt(["v=STSv1", "v=STSv1; id=a"]), Err(TxtError::Several { count: 2 }));
        let invalid = select_txt(["v=STSv1; id=bad-id"]).unwrap_err();
        assert!(matches!(&invalid, TxtError::Invalid(e) if e.kind() == ParseErrorKind::InvalidId));
        assert_eq!(
            invalid.to_string(),
            r#"the _mta-sts TXT record is invalid, so no policy applies: id: invalid value "bad-id": '-' is not allowed (letters and digits only)"#
        );
        assert_eq!(
            TxtError::Several { count: 2 }.to_string(),
            r#"2 _mta-sts TXT records begin with "v=STSv1"; RFC 8461 §3.1 requires exactly one, so no policy applies (the domain owner must remove all but one)"#
        );
        assert!(!TxtError::NoRecord.is_temporary());
    }

    #[test]
    fn display_is_canonical() {
        let cases = [
            ("v=STSv1; id=abc;", "v=STSv1; id=abc"),
            ("v=STSv1;id=abc;ext=1;ext=2", "v=STSv1; id=abc; ext=1"),
            ("v=STSv1 ; b=2 ; id=X ; a=1 ;", "v=STSv1; id=X; b=2; a=1"),
        ];
        for (input, canonical) in cases {
            let txt = TxtRecord::parse(input).unwrap();
            assert_eq!(txt.to_string(), canonical);
            assert_eq!(TxtRecord::parse(canonical).unwrap(), txt);
        }
        let txt: TxtRecord = "v=STSv1; id=abc; foo=bar".parse().unwrap();
        let ext: Vec<_> = txt.extensions().iter().map(|e| (e.name(), e.value())).collect();
        assert_eq!(ext, [("foo", "bar")]);
        assert_eq!(TxtRecord::new(PolicyId::parse("z").unwrap()).to_string(), "v=STSv1; id=z");
    }

    #[test]
    fn policy_id_is_case_sensitive() {
        let a = PolicyId::parse("abc").unwrap();
        let b = PolicyId::parse("ABC").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str(), "abc");
        assert_eq!(format!("{a:?}"), "PolicyId(\"abc\")");
    }
}
