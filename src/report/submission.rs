//! Handing report mails to a submission server over SMTP (feature
//! `submission`, with `lettre`): for an MTA or daemon that has no queue of
//! its own to put them in.

use std::time::Duration;

use lettre::Transport;
use lettre::address::Envelope;
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use rustls_pki_types::CertificateDer;

use super::{MailSubmitter, SendOutcome};

/// How the connection to the submission server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmissionSecurity {
    /// STARTTLS required (port 587, RFC 6409; the default).
    StartTls,
    /// TLS from the first byte (port 465, RFC 8314).
    ImplicitTls,
    /// No TLS: only for a server on the same host (e.g. Postfix on
    /// 127.0.0.1:25).
    Plain,
}

/// Where and how to submit report mails.
#[derive(Debug, Clone)]
pub struct SubmissionConfig {
    host: String,
    port: u16,
    security: SubmissionSecurity,
    credentials: Option<(String, String)>,
    timeout: Duration,
    roots: Vec<CertificateDer<'static>>,
}

impl SubmissionConfig {
    /// Submission to `host` on port 587 with STARTTLS, the certificate
    /// checked against the webpki roots, a 60-second timeout.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: 587,
            security: SubmissionSecurity::StartTls,
            credentials: None,
            timeout: Duration::from_secs(60),
            roots: Vec::new(),
        }
    }

    /// The port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How the connection is protected.
    pub fn security(mut self, security: SubmissionSecurity) -> Self {
        self.security = security;
        self
    }

    /// Authenticates with this user name and password (SMTP AUTH).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// The timeout of each SMTP step.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts these roots (DER) in addition to the webpki roots.
    pub fn roots(mut self, roots: Vec<CertificateDer<'static>>) -> Self {
        self.roots = roots;
        self
    }
}

/// Why a submitter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("SMTP submission to {host}: {source}")]
pub struct SubmissionError {
    host: String,
    #[source]
    source: lettre::transport::smtp::Error,
}

/// A [`MailSubmitter`] that submits each report mail over SMTP. A 4xx
/// reply, a timeout or a connection failure is temporary (retried by the
/// outbox); a 5xx reply is permanent.
#[derive(Debug, Clone)]
pub struct SmtpSubmitter {
    transport: SmtpTransport,
}

impl SmtpSubmitter {
    /// A submitter with this configuration (nothing is connected yet).
    pub fn new(config: SubmissionConfig) -> Result<Self, SubmissionError> {
        let err = |source| SubmissionError { host: config.host.clone(), source };
        let tls = match config.security {
            SubmissionSecurity::Plain => None,
            SubmissionSecurity::StartTls | SubmissionSecurity::ImplicitTls => {
                let mut params = TlsParameters::builder(config.host.clone());
                for root in &config.roots {
                    params = params.add_root_certificate(Certificate::from_der(root.to_vec()).map_err(err)?);
                }
                Some(params.build_rustls().map_err(err)?)
            }
        };
        let tls = match (config.security, tls) {
            (SubmissionSecurity::ImplicitTls, Some(p)) => Tls::Wrapper(p),
            (_, Some(p)) => Tls::Required(p),
            (_, None) => Tls::None,
        };
        let mut builder = SmtpTransport::builder_dangerous(config.host.clone())
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build() })
    }
}

impl MailSubmitter for SmtpSubmitter {
    fn submit(&self, from: &str, to: &str, message: &[u8]) -> SendOutcome {
        let (Ok(from), Ok(to)) = (from.parse(), to.parse()) else {
            return SendOutcome::Permanent(format!("{from} → {to}: not a valid address"));
        };
        let envelope = match Envelope::new(Some(from), vec![to]) {
            Ok(e) => e,
            Err(e) => return SendOutcome::Permanent(e.to_string()),
        };
        match self.transport.send_raw(&envelope, message) {
            Ok(_) => SendOutcome::Delivered,
            Err(e) if e.is_permanent() => SendOutcome::Permanent(e.to_string()),
            Err(e) => SendOutcome::Temporary(e.to_string()),
        }
    }
}
