//! The failure result types of RFC 8460 §4.3: the vocabulary every
//! failure of the crate maps to. A leaf: it uses nothing of the crate, so
//! `dane`, `cache` and `engine` name result types without depending on
//! `report`.

use std::fmt;
use std::str::FromStr;

/// A failure result type of an RFC 8460 aggregate report (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResultType {
    /// `starttls-not-supported` (§4.3.1): the receiving MTA did not offer STARTTLS.
    StarttlsNotSupported,
    /// `certificate-host-mismatch` (§4.3.1): the certificate does not name the host.
    CertificateHostMismatch,
    /// `certificate-expired` (§4.3.1): a certificate is outside its validity period.
    CertificateExpired,
    /// `certificate-not-trusted` (§4.3.1): the certificate does not chain to a
    /// trusted anchor (a WebPKI root, or for DANE a matching TLSA record).
    CertificateNotTrusted,
    /// `validation-failure` (§4.3.1): a general failure not covered by another type.
    ValidationFailure,
    /// `tlsa-invalid` (§4.3.2.1): none of the TLSA records was usable.
    TlsaInvalid,
    /// `dnssec-invalid` (§4.3.2.1): DNSSEC validation of a record failed.
    DnssecInvalid,
    /// `dane-required` (§4.3.2.1): DANE was required but no TLSA record was found.
    DaneRequired,
    /// `sts-policy-fetch-error` (§4.3.2.2): the MTA-STS policy could not be fetched.
    StsPolicyFetchError,
    /// `sts-policy-invalid` (§4.3.2.2): the MTA-STS policy did not parse.
    StsPolicyInvalid,
    /// `sts-webpki-invalid` (§4.3.2.2): the policy host's certificate failed validation.
    StsWebpkiInvalid,
}

impl ResultType {
    /// Every result type, in the order of RFC 8460 §4.3.
    pub const ALL: [Self; 11] = [
        Self::StarttlsNotSupported,
        Self::CertificateHostMismatch,
        Self::CertificateExpired,
        Self::CertificateNotTrusted,
        Self::ValidationFailure,
        Self::TlsaInvalid,
        Self::DnssecInvalid,
        Self::DaneRequired,
        Self::StsPolicyFetchError,
        Self::StsPolicyInvalid,
        Self::StsWebpkiInvalid,
    ];

    /// The name used in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StarttlsNotSupported => "starttls-not-supported",
            Self::CertificateHostMismatch => "certificate-host-mismatch",
            Self::CertificateExpired => "certificate-expired",
            Self::CertificateNotTrusted => "certificate-not-trusted",
            Self::ValidationFailure => "validation-failure",
            Self::TlsaInvalid => "tlsa-invalid",
            Self::DnssecInvalid => "dnssec-invalid",
            Self::DaneRequired => "dane-required",
            Self::StsPolicyFetchError => "sts-policy-fetch-error",
            Self::StsPolicyInvalid => "sts-policy-invalid",
            Self::StsWebpkiInvalid => "sts-webpki-invalid",
        }
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResultType {
    type Err = UnknownResultType;

    /// The RFC 8460 §4.3 name (`certificate-expired`, …).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| UnknownResultType(s.to_owned()))
    }
}

/// A name that is not an RFC 8460 §4.3 result type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TLS-RPT result type {0:?} (RFC 8460 §4.3)")]
pub struct UnknownResultType(pub String);

impl serde::Serialize for ResultType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ResultType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_4_3_names() {
        for t in ResultType::ALL {
            assert_eq!(t.as_str().parse::<ResultType>(), Ok(t));
        }
        assert!("certificate-fine".parse::<ResultType>().is_err());
        let names: Vec<_> = ResultType::ALL.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            names,
            [
                "starttls-not-supported",
                "certificate-host-mismatch",
                "certificate-expired",
                "certificate-not-trusted",
                "validation-failure",
                "tlsa-invalid",
                "dnssec-invalid",
                "dane-required",
                "sts-policy-fetch-error",
                "sts-policy-invalid",
                "sts-webpki-invalid",
            ]
        );
    }
}
