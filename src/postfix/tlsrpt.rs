//! Postfix's TLSRPT events (Postfix ≥ 3.10 with `smtp_tlsrpt_enable`):
//! the datagrams libtlsrpt sends to a collector, read into TLS-RPT
//! sessions, so that one daemon gives Postfix both its TLS policy and its
//! reports.
//!
//! A datagram (libtlsrpt's datagram protocol version 1) is one JSON object
//! per delivery request:
//!
//! ```text
//! {"dpv": "1","d": "example.com","pr": "v=TLSRPTv1; rua=…","policies":[
//!   {"policy-type":2,"policy-domain": "example.com","policy-string":["version: STSv1",…],
//!    "mx-host":["*.example.com"],"failure-details":[{"c":204,"s": "192.0.2.1","n": "mx1.example.com",…}],
//!    "t":1,"f":1}]}
//! ```
//!
//! `policy-type` is 1 (TLSA), 2 (STS) or 9 (no policy found); `f` the
//! final result (0 success, 1 failure); `t` the number of failure details;
//! a detail's `c` the result type by number (201–205, 301–306), `s` the
//! sending IP, `n` the receiving MX, `h` its HELO name, `r` its IP, `a`
//! additional information and `f` the failure reason code.
//!
//! How a policy entry becomes sessions (what sys4's tlsrpt-collectd does
//! differs only where noted): a successful entry is one successful session
//! (details of a successful entry are not counted — tlsrpt-collectd counts
//! them, and its report then lists more failures than failed sessions); a
//! failed entry is one failed session per failure detail, or, without
//! details, one `validation-failure` session saying that the MTA gave none
//! (tlsrpt-collectd counts the failure without a detail). Postfix sends one
//! detail per failed entry, where both agree.

use std::net::IpAddr;

use serde::Deserialize;

use crate::name::DomainName;
use crate::report::{FailureDetail, PolicyType, ReportPolicy, ResultType, Session};

/// The largest datagram read (libtlsrpt's collector reads up to 16 KiB).
pub const MAX_DATAGRAM: usize = 65_536;

/// Why a datagram was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatagramError {
    /// Not JSON of the expected shape.
    #[error("TLSRPT datagram is not valid: {0}")]
    Malformed(String),
    /// Another protocol version than 1.
    #[error("TLSRPT datagram protocol version {0:?} is not supported (expected \"1\")")]
    Version(String),
    /// A domain that is not a host name.
    #[error("TLSRPT datagram names the domain {0:?}, which is not a valid domain name")]
    Domain(String),
    /// A `policy-type` other than 1, 2 or 9.
    #[error("TLSRPT datagram policy type {0} is unknown")]
    PolicyType(i64),
    /// A result type number libtlsrpt does not define.
    #[error("TLSRPT datagram result type {0} is unknown")]
    ResultType(i64),
}

#[derive(Deserialize)]
struct Datagram {
    dpv: Option<String>,
    d: String,
    #[serde(default)]
    policies: Vec<DatagramPolicy>,
}

#[derive(Deserialize)]
struct DatagramPolicy {
    #[serde(rename = "policy-type")]
    policy_type: i64,
    #[serde(rename = "policy-domain")]
    policy_domain: Option<String>,
    #[serde(rename = "policy-string", default)]
    policy_string: Vec<String>,
    #[serde(rename = "mx-host", default)]
    mx_host: Vec<String>,
    #[serde(rename = "failure-details", default)]
    failure_details: Vec<DatagramFailure>,
    f: i64,
}

#[derive(Deserialize)]
struct DatagramFailure {
    c: i64,
    s: Option<String>,
    n: Option<String>,
    h: Option<String>,
    r: Option<String>,
    a: Option<String>,
    f: Option<String>,
}

/// The result type of libtlsrpt's number (its `tlsrpt_failure_t`).
pub fn result_type_of(code: i64) -> Option<ResultType> {
    Some(match code {
        201 => ResultType::StarttlsNotSupported,
        202 => ResultType::CertificateHostMismatch,
        203 => ResultType::CertificateNotTrusted,
        204 => ResultType::CertificateExpired,
        205 => ResultType::ValidationFailure,
        301 => ResultType::StsPolicyFetchError,
        302 => ResultType::StsPolicyInvalid,
        303 => ResultType::StsWebpkiInvalid,
        304 => ResultType::TlsaInvalid,
        305 => ResultType::DnssecInvalid,
        306 => ResultType::DaneRequired,
        _ => return None,
    })
}

/// Reads one datagram into the sessions it stands for (see the module
/// docs). Bad input is an error, never a panic.
pub fn datagram_sessions(datagram: &[u8]) -> Result<Vec<Session>, DatagramError> {
    let parsed: Datagram = serde_json::from_slice(datagram).map_err(|e| DatagramError::Malformed(e.to_string()))?;
    if let Some(v) = parsed.dpv.as_deref().filter(|v| *v != "1") {
        return Err(DatagramError::Version(v.to_owned()));
    }
    let recipient = DomainName::parse(&parsed.d).map_err(|_| DatagramError::Domain(parsed.d.clone()))?;
    let mut sessions = Vec::new();
    for p in parsed.policies {
        let domain = match &p.policy_domain {
            Some(d) => DomainName::parse(d).map_err(|_| DatagramError::Domain(d.clone()))?,
            None => recipient.clone(),
        };
        let mut policy = ReportPolicy::none(&domain);
        policy.policy_type = match p.policy_type {
            1 => PolicyType::Tlsa,
            2 => PolicyType::Sts,
            9 => PolicyType::NoPolicyFound,
            other => return Err(DatagramError::PolicyType(other)),
        };
        policy.policy_string = p.policy_string;
        policy.mx_host = p.mx_host;
        if p.f == 0 {
            sessions.push(Session::success(policy));
            continue;
        }
        if p.failure_details.is_empty() {
            let mut detail = FailureDetail::new(ResultType::ValidationFailure, None);
            detail.additional_information = Some("the MTA reported a failure without details".into());
            sessions.push(Session::failure(policy, detail));
            continue;
        }
        for f in p.failure_details {
            let result_type = result_type_of(f.c).ok_or(DatagramError::ResultType(f.c))?;
            let ip = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
            let mut detail = FailureDetail::new(result_type, None).with_ips(ip(&f.s), ip(&f.r));
            detail.receiving_mx_hostname = f.n;
            detail.receiving_mx_helo = f.h;
            detail.additional_information = f.a;
            detail.failure_reason_code = f.f;
            sessions.push(Session::failure(policy.clone(), detail));
        }
    }
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams as libtlsrpt writes them (its separators and spacing).
    #[test]
    fn reads_libtlsrpt_datagrams() {
        let sts = concat!(
            r#"{"dpv": "1","d": "company-y.example","pr": "v=TLSRPTv1; rua=mailto:t@company-y.example","policies":[{"policy-type":2"#,
            r#","policy-domain": "company-y.example","policy-string":["version: STSv1","mode: testing","mx: *.mail.company-y.example","max_age: 86400"]"#,
            r#","mx-host":["*.mail.company-y.example"],"failure-details":[{"c":204,"s": "2001:db8:abcd:0012::1","n": "mx1.mail.company-y.example""#,
            r#","h": "mx1.example","r": "192.0.2.7","a": "expired","f": "X509_V_ERR_CERT_HAS_EXPIRED"}],"t":1,"f":1}]}"#
        );
        let sessions = datagram_sessions(sts.as_bytes()).unwrap();
        assert_eq!(sessions.len(), 1);
        let s = &sessions[0];
        assert_eq!(s.policy.policy_type, PolicyType::Sts);
        assert_eq!(s.policy.policy_domain.as_str(), "company-y.example");
        assert_eq!(s.policy.policy_string.len(), 4);
        assert_eq!(s.policy.mx_host, ["*.mail.company-y.example"]);
        let f = s.failure.as_ref().unwrap();
        assert_eq!(f.result_type, ResultType::CertificateExpired);
        assert_eq!(f.sending_mta_ip, Some("2001:db8:abcd:12::1".parse().unwrap()));
        assert_eq!(f.receiving_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(f.receiving_mx_hostname.as_deref(), Some("mx1.mail.company-y.example"));
        assert_eq!(f.failure_reason_code.as_deref(), Some("X509_V_ERR_CERT_HAS_EXPIRED"));

        let none = r#"{"dpv": "1","d": "example.net","pr": "","policies":[{"policy-type":9,"t":0,"f":0}]}"#;
        let sessions = datagram_sessions(none.as_bytes()).unwrap();
        assert!(sessions[0].is_success());
        assert_eq!(sessions[0].policy.policy_type, PolicyType::NoPolicyFound);
        assert_eq!(
            sessions[0].policy.policy_domain.as_str(),
            "example.net",
            "the recipient domain without policy-domain"
        );

        let bare = r#"{"dpv": "1","d": "example.net","pr": "","policies":[{"policy-type":1,"policy-domain": "example.net","t":0,"f":1}]}"#;
        let f = datagram_sessions(bare.as_bytes()).unwrap()[0].failure.clone().unwrap();
        assert_eq!(f.result_type, ResultType::ValidationFailure);
    }

    #[test]
    fn refuses_bad_datagrams_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "not valid"),
            ("{", "not valid"),
            (r#"{"dpv": "2","d": "a.example","policies":[]}"#, "version \"2\""),
            (r#"{"dpv": "1","d": "bad_name","policies":[]}"#, "not a valid domain name"),
            (r#"{"dpv": "1","d": "a.example","policies":[{"policy-type":5,"f":0}]}"#, "policy type 5"),
            (
                r#"{"dpv": "1","d": "a.example","policies":[{"policy-type":2,"failure-details":[{"c":999}],"f":1}]}"#,
                "result type 999",
            ),
        ];
        for (datagram, want) in cases {
            let e = datagram_sessions(datagram.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{datagram:?}: {e}");
        }
        for code in 0..1000 {
            let _ = result_type_of(code);
        }
    }
}
