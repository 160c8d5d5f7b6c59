//! The `_smtp._tls` TXT record (RFC 8460 §3).

use std::fmt;
use std::str::FromStr;

use crate::error::{ParseError, ParseErrorKind, quote};

/// The version tag a record must begin with (RFC 8460 §3 `%s"v=TLSRPTv1"`).
pub const TLSRPT_VERSION: &str = "v=TLSRPTv1";

/// Where reports go (RFC 8460 §3: senders support `mailto:` and `https:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportUri {
    /// Mail the report to this URI (`mailto:tlsrpt@example.com`).
    Mailto(String),
    /// POST the report to this URI (`https://reports.example.com/tlsrpt`).
    Https(String),
}

impl ReportUri {
    /// The URI as published.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Mailto(u) | Self::Https(u) => u,
        }
    }
}

/// A TLS-RPT policy record (RFC 8460 §3):
///
/// ```text
/// tlsrpt-record  = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
/// field-delim    = *WSP ";" *WSP
/// tlsrpt-field   = tlsrpt-rua / tlsrpt-extension
/// tlsrpt-rua     = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
/// ```
///
/// `rua` is required and must hold at least one `mailto:` or `https:` URI;
/// URIs of other schemes are ignored. Unknown extensions are ignored; of a
/// duplicated field the first wins.
///
/// ```
/// use smtp_tls_policy::report::TlsRptRecord;
/// let r = TlsRptRecord::parse("v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example.com/v1").unwrap();
/// assert_eq!(r.rua().len(), 2);
/// assert_eq!(r.to_string(), "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example.com/v1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsRptRecord {
    rua: Vec<ReportUri>,
}

impl TlsRptRecord {
    /// Parses one record, its strings already joined.
    pub fn parse(record: &str) -> Result<Self, ParseError> {
        let Some(rest) = record.strip_prefix(TLSRPT_VERSION) else {
            return Err(ParseError::new(
                ParseErrorKind::MissingVersion,
                None,
                0,
                format!("record must begin with \"v=TLSRPTv1;\", found {}", quote(record)),
            ));
        };
        let mut rua = None;
        let mut at = TLSRPT_VERSION.len();
        for (i, field) in rest.split(';').enumerate() {
            let offset = at;
            at += field.len() + 1;
            let field = field.trim_matches([' ', '\t']);
            if i == 0 {
                if !field.is_empty() {
                    return Err(ParseError::new(
                        ParseErrorKind::MissingVersion,
                        None,
                        0,
                        format!("record must begin with \"v=TLSRPTv1;\", found {}", quote(record)),
                    ));
                }
                continue;
            }
            if field.is_empty() {
                continue; // an empty last field is the optional trailing ";"
            }
            let Some((name, value)) = field.split_once('=') else {
                return Err(ParseError::new(
                    ParseErrorKind::MalformedField,
                    None,
                    offset,
                    format!("field {} is not name=value", quote(field)),
                ));
            };
            if name == "rua" {
                if rua.is_none() {
                    rua = Some(parse_rua(value).map_err(|e| e.within(None, offset, "rua"))?);
                }
            } else if !crate::sts::is_field_name(name) || !is_ext_value(value) {
                return Err(ParseError::new(
                    ParseErrorKind::InvalidFieldName,
                    None,
                    offset,
                    format!("field {} is not a valid extension", quote(field)),
                ));
            }
        }
        match rua {
            Some(rua) => Ok(Self { rua }),
            None => Err(ParseError::new(
                ParseErrorKind::MissingField,
                Some("rua"),
                record.len(),
                "missing (the record must say where reports go: rua=mailto:… or rua=https://…)",
            )),
        }
    }

    /// The report destinations, in order.
    pub fn rua(&self) -> &[ReportUri] {
        &self.rua
    }
}

/// RFC 8460 §3 `tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)`: visible
/// ASCII but `;` and `=`.
fn is_ext_value(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e))
}

/// RFC 8460 §3 `tlsrpt-uri = URI` (RFC 3986 §2: unreserved, reserved and
/// `%HH` only), with `,` and `!` percent-encoded, as RFC 8460 requires
/// (`;` and `,` delimit fields and URIs).
fn is_uri(uri: &str) -> bool {
    let bytes = uri.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                if !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
                continue;
            }
            b if b.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' => {}
            b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b'=' => {}
            _ => return false,
        }
        i += 1;
    }
    !uri.is_empty()
}

fn parse_rua(value: &str) -> Result<Vec<ReportUri>, ParseError> {
    let mut uris = Vec::new();
    for uri in value.split(',').map(|u| u.trim_matches([' ', '\t'])) {
        if !is_uri(uri) {
            return Err(ParseError::new(
                ParseErrorKind::InvalidFieldValue,
                None,
                0,
                format!("invalid URI {} (RFC 3986 characters only; `,` and `!` must be percent-encoded)", quote(uri)),
            ));
        }
        let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("mailto") if uri.len() > "mailto:".len() => uris.push(ReportUri::Mailto(uri.to_owned())),
            Some("https") if uri.len() > "https://".len() => uris.push(ReportUri::Https(uri.to_owned())),
            Some(_) => {} // other schemes are ignored (RFC 8460 §3)
            None => {
                return Err(ParseError::new(
                    ParseErrorKind::InvalidFieldValue,
                    None,
                    0,
                    format!("{} is not a URI (expected mailto: or https:)", quote(uri)),
                ));
            }
        }
    }
    if uris.is_empty() {
        return Err(ParseError::new(
            ParseErrorKind::InvalidFieldValue,
            None,
            0,
            format!("no mailto: or https: URI in {}", quote(value)),
        ));
    }
    Ok(uris)
}

impl FromStr for TlsRptRecord {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TlsRptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uris: Vec<&str> = self.rua.iter().map(ReportUri::as_str).collect();
        write!(f, "{TLSRPT_VERSION}; rua={}", uris.join(","))
    }
}

/// Why an `_smtp._tls` RRset yields no record (RFC 8460 §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRptError {
    /// No record begins with `v=TLSRPTv1`.
    #[error("no _smtp._tls TXT record begins with \"v=TLSRPTv1\": the domain wants no TLS reports")]
    NoRecord,
    /// Several do.
    #[error(
        "{count} _smtp._tls TXT records begin with \"v=TLSRPTv1\"; RFC 8460 §3 requires exactly one, so no reports are sent"
    )]
    Several {
        /// How many.
        count: usize,
    },
    /// The one record does not parse.
    #[error("the _smtp._tls TXT record is invalid, so no reports are sent: {0}")]
    Invalid(#[source] ParseError),
}

/// Selects the TLS-RPT record from an `_smtp._tls` RRset: records not
/// beginning with `v=TLSRPTv1` are dropped, exactly one must remain and
/// parse (RFC 8460 §3).
pub fn select_tlsrpt<'a>(rrset: impl IntoIterator<Item = &'a str>) -> Result<TlsRptRecord, TlsRptError> {
    match crate::sts::exactly_one(rrset, TLSRPT_VERSION) {
        Ok(record) => TlsRptRecord::parse(record).map_err(TlsRptError::Invalid),
        Err(0) => Err(TlsRptError::NoRecord),
        Err(count) => Err(TlsRptError::Several { count }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8460 §3 and its examples.
    #[test]
    fn rfc8460_3_records() {
        let ok = [
            ("v=TLSRPTv1;rua=mailto:reports@example.com", 1),
            ("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", 1),
            ("v=TLSRPTv1; rua=mailto:a@example.com, https://r.example.com/x ;", 2),
            ("v=TLSRPTv1; ext=1; rua=mailto:a@example.com; rua=mailto:b@example.com", 1),
            ("v=TLSRPTv1; rua=mailto:a@example.com,ftp://x.example/y", 1),
            ("v=TLSRPTv1; rua=mailto:a%21b@example.com?subject=TLS%20report; x-y.z=a:b/c", 1),
            ("v=TLSRPTv1; rua=https://r.example/p?a=1&b=(2)*+$'~_[x]@#f", 1),
        ];
        for (text, n) in ok {
            let r = TlsRptRecord::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.rua().len(), n, "{text}");
            assert_eq!(TlsRptRecord::parse(&r.to_string()), Ok(r));
        }
        let bad: &[(&str, ParseErrorKind)] = &[
            ("", ParseErrorKind::MissingVersion),
            ("v=TLSRPTv2; rua=mailto:a@example.com", ParseErrorKind::MissingVersion),
            ("v=tlsrptv1; rua=mailto:a@example.com", ParseErrorKind::MissingVersion),
            ("v=TLSRPTv1", ParseErrorKind::MissingField),
            ("v=TLSRPTv1; ext=1", ParseErrorKind::MissingField),
            ("v=TLSRPTv1; rua=", ParseErrorKind::InvalidFieldValue),
            ("v=TLSRPTv1; rua=ftp://x.example/y", ParseErrorKind::InvalidFieldValue),
            ("v=TLSRPTv1; rua=reports@example.com", ParseErrorKind::InvalidFieldValue),
            ("v=TLSRPTv1; rua", ParseErrorKind::MalformedField),
            // tlsrpt-ext-value excludes "=" and white space.
            ("v=TLSRPTv1; rua=mailto:x@x.example; test==", ParseErrorKind::InvalidFieldName),
            ("v=TLSRPTv1; rua=mailto:x@x.example; test=a b", ParseErrorKind::InvalidFieldName),
            ("v=TLSRPTv1; rua=mailto:x@x.example; test=é", ParseErrorKind::InvalidFieldName),
            // tlsrpt-uri = URI (RFC 3986), "," and "!" percent-encoded.
            ("v=TLSRPTv1; rua=mailto:admin@${domain}", ParseErrorKind::InvalidFieldValue),
            ("v=TLSRPTv1; rua=https://r.example/a b", ParseErrorKind::InvalidFieldValue),
            ("v=TLSRPTv1; rua=https://r.example/<x>", ParseErrorKind::InvalidFieldValue),
            ("v=TLSRPTv1; rua=https://r.example/%zz", ParseErrorKind::InvalidFieldValue),
            ("v=TLSRPTv1; rua=mailto:a!b@example.com", ParseErrorKind::InvalidFieldValue),
            ("v=TLSRPTv1; rua=mailto:tlsrpt@bücher.example", ParseErrorKind::InvalidFieldValue),
        ];
        for &(text, kind) in bad {
            assert_eq!(TlsRptRecord::parse(text).map_err(|e| e.kind()), Err(kind), "{text}");
        }
        assert_eq!(
            TlsRptRecord::parse("v=TLSRPTv1").unwrap_err().to_string(),
            "rua: missing (the record must say where reports go: rua=mailto:… or rua=https://…)"
        );
    }

    /// RFC 8460 §3: exactly one record beginning with v=TLSRPTv1.
    #[test]
    fn rfc8460_3_exactly_one() {
        assert!(select_tlsrpt(["v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@example.com"]).is_ok());
        assert_eq!(select_tlsrpt(["v=spf1 -all"]), Err(TlsRptError::NoRecord));
        let two = ["v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:b@example.com"];
        assert_eq!(select_tlsrpt(two), Err(TlsRptError::Several { count: 2 }));
        assert!(matches!(select_tlsrpt(["v=TLSRPTv1"]), Err(TlsRptError::Invalid(_))));
    }
}
