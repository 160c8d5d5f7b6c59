//! A rustls `ServerCertVerifier` that enforces one MX host's plan
//! (feature `rustls`).
//!
//! [`TlsSetup::new`] takes a [`HostPlan`] and gives the rustls client
//! configuration and server name for the STARTTLS handshake with that
//! host; after the handshake, [`TlsSetup::attempt`] says how it went, in
//! the form [`assess`](crate::engine::assess) takes.
//!
//! - **Authentication** as the plan says: none (encryption only); WebPKI
//!   (a chain to the trusted roots, then a DNS subject alternative name
//!   matching one of the plan's names — the subject CN only for the names
//!   the plan allows it for, and only when the certificate has no DNS
//!   SAN); or DANE (the plan's TLSA records and names through
//!   [`dane::verify_chain`](crate::dane::verify_chain), RFC 7672 §3).
//! - **The handshake signature is always verified** against the public key
//!   of the certificate the server presented, read by the crate's own DER
//!   reader, so DANE-EE with a self-signed or X.509 v1 certificate still
//!   makes the server prove that it holds the key (RFC 7672 §3.1.1 does
//!   not waive that).
//! - **SNI** (RFC 7672 §8.1, RFC 8461 §4.2, RFC 6066 §3): the TLSA base
//!   domain under DANE, the MX host name otherwise.
//! - **Versions**: rustls speaks TLS 1.2 and 1.3 only, so the RFC 8461 §4.2
//!   and RFC 7672 floor of TLS 1.2 always holds; a plan asking for TLS 1.3
//!   gets TLS 1.3 only. A server offering only TLS 1.0/1.1 fails the
//!   handshake; under opportunistic TLS an MTA may then retry in plain
//!   text, as [`assess`](crate::engine::assess) describes.
//! - **No session resumption**: a session resumed under one requirement
//!   would skip the certificate check of another, so every setup has
//!   resumption disabled.
//! - **Failures**: when the plan says a failed check stops delivery, the
//!   verifier fails the handshake (so nothing is sent to that server by
//!   mistake) and keeps the outcome for [`TlsSetup::attempt`]; when it says
//!   deliver and report (MTA-STS testing, Preferred-Verify), the handshake
//!   goes on and the outcome is kept for TLS-RPT.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, Resumption};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, PeerMisbehaved, RootCertStore, SignatureScheme};

use crate::dane::verify_chain;
use crate::dane::x509::{parse_certificate, spki_of};
use crate::engine::{
    Attempt, AuthOutcome, Authentication, CertFailure, HostPlan, OnAuthFailure, Requirement, TestingCheck, TlsVersion,
};
use crate::name::DomainName;

pub use crate::roots::{Roots, RootsError};

/// [`Roots::webpki`]: Mozilla's trust anchors, for WebPKI checks.
pub fn webpki_roots() -> Roots {
    Roots::webpki()
}

/// [`Roots::os`]: the operating system's trust anchors.
pub fn os_roots() -> Result<Roots, RootsError> {
    Roots::os()
}

/// [`Roots::custom`]: trust anchors from DER certificates (a private CA, a test world).
pub fn custom_roots(certs: &[CertificateDer<'_>]) -> Result<Roots, RootsError> {
    Roots::custom(certs)
}

/// The TLS side of one connection attempt: the rustls configuration, the
/// server name to send, and the verifier's outcome afterwards.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    verifier: Arc<PlanVerifier>,
}

impl TlsSetup {
    /// The setup for `host`: WebPKI checks chain to `roots`.
    pub fn new(host: &HostPlan, roots: Roots) -> Result<Self, Error> {
        let roots = Arc::clone(roots.store());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let verifier = Arc::new(PlanVerifier {
            requirement: host.requirement.clone(),
            host: host.host.clone(),
            roots,
            algorithms,
            outcome: Mutex::new(None),
            refused: AtomicBool::new(false),
            testing: Mutex::new(None),
        });
        let versions: &[&rustls::SupportedProtocolVersion] = if host.requirement.min_version >= TlsVersion::Tls13 {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        let sni = match &host.requirement.auth {
            Authentication::Dane { names, .. } => names.first().unwrap_or(&host.host),
            _ => &host.host,
        };
        let server_name = ServerName::try_from(sni.as_str().to_owned())
            .map_err(|e| Error::General(format!("server name {sni}: {e}")))?;
        Ok(Self { config: Arc::new(config), server_name, verifier })
    }

    /// The rustls client configuration for this host.
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The server name to connect with (sent as SNI).
    pub fn server_name(&self) -> ServerName<'static> {
        self.server_name.clone()
    }

    /// What the certificate check found ([`AuthOutcome::NotChecked`] before
    /// the handshake reached it, or when the plan asks for no check).
    pub fn outcome(&self) -> AuthOutcome {
        self.verifier.outcome.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or(AuthOutcome::NotChecked)
    }

    /// The MTA-STS testing check's result ([`TestingCheck::WebPki`]), when
    /// the requirement asked for one and the handshake reached it.
    pub fn testing(&self) -> Option<Result<String, CertFailure>> {
        self.verifier.testing.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The attempt, for [`assess`](crate::engine::assess), from the
    /// connection and the handshake's result: TLS with the version and the
    /// check's outcome when the handshake completed, or when it failed
    /// because the certificate check refused the certificate (so the
    /// report names the certificate failure); any other failed handshake —
    /// one that fails after the certificate checked out (a bad Finished, a
    /// bad handshake signature) included — is
    /// [`Attempt::HandshakeFailed`], with the certificate's outcome in the
    /// reason.
    pub fn attempt(&self, connection: &rustls::CommonState, handshake: Result<(), &Error>) -> Attempt {
        let version = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => Some(TlsVersion::Tls13),
            Some(rustls::ProtocolVersion::TLSv1_2) => Some(TlsVersion::Tls12),
            _ => None,
        };
        let checked = self.verifier.outcome.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let refused = self.verifier.refused.load(Ordering::Acquire);
        match (handshake, checked, version) {
            (Ok(()), outcome, Some(version)) => {
                Attempt::Tls { version, auth: outcome.unwrap_or(AuthOutcome::NotChecked), testing: self.testing() }
            }
            (Ok(()), _, None) => Attempt::HandshakeFailed { reason: "no TLS version was negotiated".into() },
            // The check refused the certificate: that is why the handshake failed.
            (Err(_), Some(outcome), Some(version)) if refused => {
                Attempt::Tls { version, auth: outcome, testing: self.testing() }
            }
            (Err(_), checked, _) if is_signature_error(handshake) => Attempt::HandshakeFailed {
                reason: format!(
                    "the handshake signature does not verify with the presented certificate's key \
                     (the server does not prove it holds the key){}",
                    after_check(checked.as_ref())
                ),
            },
            (Err(e), checked, _) => {
                Attempt::HandshakeFailed { reason: format!("{e}{}", after_check(checked.as_ref())) }
            }
        }
    }
}

impl TlsSetup {
    /// [`attempt`](Self::attempt) for a handshake driven through
    /// `std::io` (`complete_io`, `StreamOwned`), whose errors wrap the
    /// rustls error.
    pub fn attempt_io(&self, connection: &rustls::CommonState, handshake: Result<(), &std::io::Error>) -> Attempt {
        match handshake {
            Ok(()) => self.attempt(connection, Ok(())),
            Err(io) => match io.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
                Some(tls) => self.attempt(connection, Err(tls)),
                None => Attempt::HandshakeFailed { reason: io.to_string() },
            },
        }
    }
}

/// What the certificate check said, for the reason of a failed handshake.
fn after_check(checked: Option<&AuthOutcome>) -> String {
    match checked {
        Some(AuthOutcome::WebPki(Ok(name))) => format!(" (after the certificate was verified for {name})"),
        Some(AuthOutcome::WebPki(Err(failure))) => format!(" (the certificate check had failed: {failure})"),
        Some(AuthOutcome::Dane(o)) if o.is_authenticated() => " (after DANE authenticated the certificate)".into(),
        Some(AuthOutcome::Dane(o)) => {
            format!(" (DANE had failed: {})", o.failure().map(ToString::to_string).unwrap_or_default())
        }
        _ => String::new(),
    }
}

/// A failed handshake signature is a failed handshake, whatever the
/// certificate check said: the peer did not prove it holds the key.
fn is_signature_error(handshake: Result<(), &Error>) -> bool {
    matches!(
        handshake,
        Err(Error::InvalidCertificate(CertificateError::BadSignature))
            | Err(Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme))
    )
}

/// The verifier behind a [`TlsSetup`].
struct PlanVerifier {
    requirement: Requirement,
    host: DomainName,
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    outcome: Mutex<Option<AuthOutcome>>,
    /// Whether the check refused the certificate (failing the handshake).
    refused: AtomicBool,
    /// The MTA-STS testing check ([`TestingCheck::WebPki`]), when asked for.
    testing: Mutex<Option<Result<String, CertFailure>>>,
}

impl fmt::Debug for PlanVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanVerifier").field("host", &self.host).field("requirement", &self.requirement).finish()
    }
}

impl PlanVerifier {
    fn record(&self, outcome: AuthOutcome) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// Refuses the certificate: the handshake fails because of the check.
    fn refuse(&self, error: Error) -> Result<ServerCertVerified, Error> {
        self.refused.store(true, Ordering::Release);
        Err(error)
    }

    fn webpki(
        &self,
        names: &[DomainName],
        cn_fallback: &[DomainName],
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<String, CertFailure> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|e| CertFailure::Other(e.to_string()))?;
        cert.verify_for_usage(
            self.algorithms.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => CertFailure::Expired,
            webpki::Error::UnknownIssuer => CertFailure::NotTrusted,
            other => CertFailure::Other(other.to_string()),
        })?;
        let san_names = |name: &DomainName| {
            ServerName::try_from(name.as_str()).is_ok_and(|n| cert.verify_is_valid_for_subject_name(&n).is_ok())
        };
        if let Some(name) = names.iter().find(|n| san_names(n)) {
            return Ok(name.to_string());
        }
        // The CN only when no SAN matched, and only where a CN may count:
        // the certificate is read whole only then.
        let parsed = if cn_fallback.is_empty() { None } else { parse_certificate(end_entity) };
        let cn = parsed.as_ref().filter(|c| !c.dns_san).and_then(|c| c.subject_cn);
        let cn_names = |name: &DomainName| {
            cn.is_some_and(|cn| {
                cn.trim_ascii_end().strip_suffix(b".").unwrap_or(cn).eq_ignore_ascii_case(name.as_str().as_bytes())
            })
        };
        if let Some(name) = cn_fallback.iter().find(|n| cn_names(n)) {
            return Ok(name.to_string());
        }
        let names_connected_host = san_names(&self.host) || (!cn_fallback.is_empty() && cn_names(&self.host));
        Err(CertFailure::HostMismatch { names_connected_host })
    }
}

impl ServerCertVerifier for PlanVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Some(TestingCheck::WebPki { names }) = &self.requirement.testing {
            // For the report only: what MTA-STS enforce would have checked.
            let result = self.webpki(names, &[], end_entity, intermediates, now);
            *self.testing.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        }
        match &self.requirement.auth {
            Authentication::Dane { records, names } => {
                let chain: Vec<CertificateDer<'_>> =
                    std::iter::once(end_entity.clone()).chain(intermediates.iter().cloned()).collect();
                let names: Vec<&str> = names.iter().map(DomainName::as_str).collect();
                let outcome = verify_chain(&chain, records, &names, now);
                let authenticated = outcome.is_authenticated();
                let reason = outcome.failure().map(ToString::to_string);
                self.record(AuthOutcome::Dane(outcome));
                match reason {
                    None if authenticated => Ok(ServerCertVerified::assertion()),
                    reason => self.refuse(Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                        Arc::new(Refused(format!("DANE: {}", reason.unwrap_or_default()))),
                    )))),
                }
            }
            Authentication::WebPki { names, cn_fallback } => {
                let result = self.webpki(names, cn_fallback, end_entity, intermediates, now);
                self.record(AuthOutcome::WebPki(result.clone()));
                match (result, self.requirement.on_auth_failure) {
                    (Ok(_), _) | (Err(_), OnAuthFailure::DeliverAndReport) => Ok(ServerCertVerified::assertion()),
                    (Err(failure), _) => self.refuse(Error::InvalidCertificate(match failure {
                        CertFailure::Expired => CertificateError::Expired,
                        CertFailure::NotTrusted => CertificateError::UnknownIssuer,
                        CertFailure::HostMismatch { .. } => CertificateError::NotValidForName,
                        CertFailure::Other(reason) => {
                            CertificateError::Other(rustls::OtherError(Arc::new(Refused(reason))))
                        }
                    })),
                }
            }
            _ => {
                self.record(AuthOutcome::NotChecked);
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(message, cert, dss, &self.algorithms, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(message, cert, dss, &self.algorithms, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The handshake signature, checked with the public key of the presented
/// certificate as the crate's DER reader finds it (any X.509 version: a
/// DANE-EE certificate may be v1, which rustls-webpki refuses to parse as
/// a certificate). TLS 1.3 uses rustls's own raw-key check
/// ([`verify_tls13_signature_with_raw_key`](rustls::crypto::verify_tls13_signature_with_raw_key));
/// TLS 1.2 has none, so its schemes are tried here as rustls does.
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    let spki = spki_of(cert).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let spki = SubjectPublicKeyInfoDer::from(spki);
    if tls13 {
        // RFC 8446 §4.2.3 (no PKCS#1 v1.5 or SHA-1) and one algorithm per scheme.
        // A scheme that does not fit the key cannot verify: a bad signature.
        return rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, algorithms)
            .map_err(unfit_scheme_is_bad_signature);
    }
    let key = webpki::RawPublicKeyEntity::try_from(&spki)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algs)| *algs)
        .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    for alg in candidates {
        match key.verify_signature(*alg, message, dss.signature()) {
            Ok(()) => return Ok(HandshakeSignatureValid::assertion()),
            Err(webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => continue,
            Err(_) => break,
        }
    }
    Err(Error::InvalidCertificate(CertificateError::BadSignature))
}

/// rustls reports a signature scheme that does not fit the key as an
/// unsupported algorithm; for a handshake signature that is a bad one.
#[allow(deprecated)] // rustls 0.23 still returns the context-free variant
fn unfit_scheme_is_bad_signature(e: Error) -> Error {
    match e {
        Error::InvalidCertificate(
            CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
        ) => Error::InvalidCertificate(CertificateError::BadSignature),
        other => other,
    }
}

#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}
