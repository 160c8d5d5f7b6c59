//! The rules of the policy fetch (RFC 8461 §3.2, §3.3), without the HTTP
//! client: where the policy is, and which responses may carry one. The
//! `fetch` module (feature `fetch`) does the IO and applies these.

use std::fmt;

use super::MAX_POLICY_BYTES;
use crate::name::DomainName;

/// `_mta-sts.<domain>`: where the TXT record is (RFC 8461 §3.1).
pub fn txt_name(domain: &DomainName) -> String {
    format!("_mta-sts.{domain}")
}

/// `mta-sts.<domain>`: the policy host (RFC 8461 §3.3); its certificate
/// must be valid for this name.
pub fn policy_host(domain: &DomainName) -> String {
    format!("mta-sts.{domain}")
}

/// `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.3).
pub fn policy_url(domain: &DomainName) -> String {
    format!("https://mta-sts.{domain}/.well-known/mta-sts.txt")
}

/// Why a response cannot carry a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// A redirect (RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed").
    Redirect {
        /// The status code.
        status: u16,
        /// The Location header.
        location: Option<String>,
    },
    /// A status other than 200 (RFC 8461 §3.3).
    Status(u16),
    /// The media type is not `text/plain` (RFC 8461 §3.2); what was sent,
    /// empty when nothing was.
    ContentType(String),
    /// A body larger than [`MAX_POLICY_BYTES`]: declared so by
    /// Content-Length, or found so while reading (`declared` is `None`).
    TooLarge {
        /// The declared Content-Length, if any.
        declared: Option<u64>,
    },
}

impl fmt::Display for ResponseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redirect { status, location } => {
                write!(f, "HTTP {status} redirect to {location:?}; RFC 8461 §3.3 forbids following redirects")
            }
            Self::Status(status) => write!(f, "HTTP status {status} (only 200 serves a policy)"),
            Self::ContentType(found) => write!(f, "Content-Type {found:?} is not text/plain (RFC 8461 §3.2)"),
            Self::TooLarge { declared: Some(n) } => {
                write!(f, "the policy body is larger than {MAX_POLICY_BYTES} bytes (Content-Length {n})")
            }
            Self::TooLarge { declared: None } => write!(f, "the policy body is larger than {MAX_POLICY_BYTES} bytes"),
        }
    }
}

impl std::error::Error for ResponseProblem {}

/// The headers of a policy response, checked before the body is read
/// (RFC 8461 §3.2, §3.3): status 200 only, no redirect followed, media
/// type `text/plain` (parameters such as `charset` allowed, case
/// insensitive), a declared length no larger than [`MAX_POLICY_BYTES`].
/// The body itself is read with that limit whatever was declared.
pub fn check_response(
    status: u16,
    location: Option<&str>,
    content_type: Option<&str>,
    content_length: Option<u64>,
) -> Result<(), ResponseProblem> {
    if (300..400).contains(&status) {
        return Err(ResponseProblem::Redirect { status, location: location.map(str::to_owned) });
    }
    if status != 200 {
        return Err(ResponseProblem::Status(status));
    }
    let found = content_type.unwrap_or_default();
    let media = found.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("text/plain") {
        return Err(ResponseProblem::ContentType(found.to_owned()));
    }
    match content_length {
        Some(n) if n > MAX_POLICY_BYTES as u64 => Err(ResponseProblem::TooLarge { declared: Some(n) }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_rfc8461_3() {
        let d = DomainName::parse("Example.COM").unwrap();
        assert_eq!(txt_name(&d), "_mta-sts.example.com");
        assert_eq!(policy_host(&d), "mta-sts.example.com");
        assert_eq!(policy_url(&d), "https://mta-sts.example.com/.well-known/mta-sts.txt");
    }

    #[test]
    fn response_table_rfc8461_3_3() {
        use ResponseProblem::*;
        let max = MAX_POLICY_BYTES as u64;
        type Row<'a> = (u16, Option<&'a str>, Option<&'a str>, Option<u64>, Result<(), ResponseProblem>);
        #[rustfmt::skip]
        let table: &[Row] = &[
            (200, None, Some("text/plain"), None, Ok(())),
            (200, None, Some("text/plain; charset=utf-8"), Some(10), Ok(())),
            (200, None, Some("TEXT/PLAIN"), None, Ok(())),
            (200, None, Some(" text/plain ;charset=us-ascii"), None, Ok(())),
            (200, None, Some("text/plain"), Some(max), Ok(())),
            (200, None, Some("text/plain"), Some(max + 1), Err(TooLarge { declared: Some(max + 1) })),
            (200, None, Some("text/html"), None, Err(ContentType("text/html".into()))),
            (200, None, Some("text/plainx"), None, Err(ContentType("text/plainx".into()))),
            (200, None, Some("application/octet-stream"), Some(1), Err(ContentType("application/octet-stream".into()))),
            (200, None, None, None, Err(ContentType(String::new()))),
            (301, Some("https://elsewhere.example/p"), Some("text/plain"), None,
                Err(Redirect { status: 301, location: Some("https://elsewhere.example/p".into()) })),
            (302, None, None, None, Err(Redirect { status: 302, location: None })),
            (307, None, Some("text/plain"), None, Err(Redirect { status: 307, location: None })),
            (308, None, Some("text/plain"), None, Err(Redirect { status: 308, location: None })),
            (204, None, Some("text/plain"), None, Err(Status(204))),
            (404, None, Some("text/plain"), None, Err(Status(404))),
            (500, None, Some("text/plain"), None, Err(Status(500))),
            (503, None, None, None, Err(Status(503))),
        ];
        for (status, location, content_type, length, want) in table {
            assert_eq!(&check_response(*status, *location, *content_type, *length), want, "{status} {content_type:?}");
        }
    }
}
