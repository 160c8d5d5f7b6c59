//! The trust anchors of WebPKI checks, one type for the policy fetch
//! (RFC 8461 §3.3: the policy host's certificate) and the SMTP verifier
//! (RFC 8461 §4.2: the MX host's): Mozilla's roots (default), the
//! operating system's store, or certificates of your own. Loaded once,
//! cheap to clone.

use std::fmt;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

/// Trust anchors (see the [module docs](self)).
#[derive(Clone)]
pub struct Roots {
    store: Arc<RootCertStore>,
    /// The certificates themselves, for clients that take certificates
    /// (the fetch's HTTP client); `None` for Mozilla's roots.
    certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// Why roots could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootsError {
    /// The operating system's store holds no usable certificate.
    #[error(
        "no usable certificate in the operating system's store ({errors} errors); install the CA bundle or use the webpki roots"
    )]
    NoOsRoots {
        /// Errors met while loading it.
        errors: usize,
    },
    /// A certificate given is not a usable trust anchor.
    #[error("a root certificate is not usable as a trust anchor: {0}")]
    Certificate(#[source] rustls::Error),
}

impl Roots {
    /// Mozilla's roots, as the webpki-roots crate ships them.
    pub fn webpki() -> Self {
        Self { store: Arc::new(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }), certificates: None }
    }

    /// The operating system's store, loaded now.
    pub fn os() -> Result<Self, RootsError> {
        let loaded = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let mut kept = Vec::new();
        for cert in loaded.certs {
            if store.add(cert.clone()).is_ok() {
                kept.push(cert);
            }
        }
        if kept.is_empty() {
            return Err(RootsError::NoOsRoots { errors: loaded.errors.len() });
        }
        Ok(Self { store: Arc::new(store), certificates: Some(Arc::new(kept)) })
    }

    /// These certificates only (a private CA, a test world).
    pub fn custom(certs: &[CertificateDer<'_>]) -> Result<Self, RootsError> {
        let mut store = RootCertStore::empty();
        let mut kept = Vec::with_capacity(certs.len());
        for cert in certs {
            let cert = cert.clone().into_owned();
            store.add(cert.clone()).map_err(RootsError::Certificate)?;
            kept.push(cert);
        }
        Ok(Self { store: Arc::new(store), certificates: Some(Arc::new(kept)) })
    }

    /// The anchors as rustls holds them.
    pub fn store(&self) -> &Arc<RootCertStore> {
        &self.store
    }

    /// The certificates, `None` for Mozilla's roots.
    pub fn certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.certificates.as_deref().map(Vec::as_slice)
    }
}

impl Default for Roots {
    fn default() -> Self {
        Self::webpki()
    }
}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.certificates {
            None => f.write_str("Roots(webpki)"),
            Some(c) => write!(f, "Roots({} certificates)", c.len()),
        }
    }
}
