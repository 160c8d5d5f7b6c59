//! The MTA-STS policy fetch (RFC 8461 §3.3), with ureq and rustls.
//!
//! `GET https://mta-sts.<domain>/.well-known/mta-sts.txt` with every rule of
//! RFC 8461 §3.3 and DESIGN.md "Policy fetch": a certificate valid for
//! `mta-sts.<domain>` from trusted roots (webpki roots by default; the OS
//! store or custom roots selectable), TLS 1.2 or later, no redirects,
//! HTTP 200 only, `Content-Type: text/plain` (any case, parameters allowed),
//! a body of at most 64 KiB whether or not `Content-Length` is sent, one
//! overall timeout (default 20 s), an HTTPS proxy when configured or taken
//! from `https_proxy`, and a User-Agent naming the crate. Every failure is
//! a [`FetchError`] that maps to a TLS-RPT result type.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::ParseError;
use crate::cache::FetchFailure;
use crate::name::DomainName;
use crate::report::ResultType;
use crate::sts::fetch::{ResponseProblem, check_response, policy_host, policy_url};
use crate::sts::{MAX_POLICY_BYTES, Policy};

/// The User-Agent sent with every fetch.
pub const USER_AGENT: &str = concat!("smtp-tls-policy/", env!("CARGO_PKG_VERSION"), " (MTA-STS, RFC 8461)");

/// The default overall timeout of one fetch.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest fetch timeout used (a longer [`FetchConfig::timeout`] is
/// this): the HTTP client adds the timeout to the current instant, and a
/// policy host that takes an hour is not answering.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Which certificate authorities the policy host's certificate may chain to.
pub use crate::roots::Roots;

/// A name lookup for the fetch: host name to addresses. The resolver
/// façade passes its own DNS here; the default asks the system.
pub type Lookup = Arc<dyn Fn(&str) -> Vec<SocketAddr> + Send + Sync>;

/// How the policy is fetched.
#[derive(Clone)]
#[non_exhaustive]
pub struct FetchConfig {
    /// The overall timeout of one fetch (default 20 s; at most [`MAX_TIMEOUT`]).
    pub(crate) timeout: Duration,
    /// The trusted roots (default webpki roots).
    pub(crate) roots: Roots,
    /// An HTTP CONNECT proxy (`http://host:port`), or `None` to take
    /// `https_proxy`/`HTTPS_PROXY` from the environment when
    /// [`proxy_from_env`](Self::proxy_from_env) is set.
    pub(crate) proxy: Option<String>,
    /// Use `https_proxy` from the environment when no proxy is configured
    /// (default true).
    pub(crate) proxy_from_env: bool,
    /// Name lookups; `None` uses the system resolver.
    pub(crate) lookup: Option<Lookup>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self { timeout: DEFAULT_TIMEOUT, roots: Roots::default(), proxy: None, proxy_from_env: true, lookup: None }
    }
}

impl fmt::Debug for FetchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchConfig")
            .field("timeout", &self.timeout)
            .field("roots", &self.roots)
            .field("proxy", &self.proxy)
            .field("proxy_from_env", &self.proxy_from_env)
            .field("lookup", &self.lookup.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl FetchConfig {
    /// Sets the overall timeout (at most [`MAX_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the trusted roots.
    pub fn roots(mut self, roots: Roots) -> Self {
        self.roots = roots;
        self
    }

    /// Sets an HTTP CONNECT proxy, `http://host:port`.
    pub fn proxy(mut self, proxy: impl Into<String>) -> Self {
        self.proxy = Some(proxy.into());
        self
    }

    /// Whether to take `https_proxy` from the environment.
    pub fn proxy_from_env(mut self, on: bool) -> Self {
        self.proxy_from_env = on;
        self
    }

    /// Sets the name lookup.
    pub fn lookup(mut self, lookup: impl Fn(&str) -> Vec<SocketAddr> + Send + Sync + 'static) -> Self {
        self.lookup = Some(Arc::new(lookup));
        self
    }
}

/// Why a policy could not be fetched. Each maps to a TLS-RPT result type
/// ([`result_type`](Self::result_type)) and says whether trying later may
/// help ([`is_temporary`](Self::is_temporary)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The proxy setting is not a proxy URL.
    #[error("policy fetch configuration: proxy {proxy:?}: {source} (expected http://host:port)")]
    BadProxy {
        /// The setting.
        proxy: String,
        /// What the HTTP client said.
        #[source]
        source: ureq::Error,
    },
    /// The policy host's name did not resolve.
    #[error("{host}: the policy host does not resolve; the domain must publish an address for it")]
    HostNotFound {
        /// The policy host.
        host: String,
    },
    /// No connection could be made.
    #[error("{host}: cannot connect to the policy host: {source}")]
    Connect {
        /// The policy host.
        host: String,
        /// What the HTTP client said.
        #[source]
        source: ureq::Error,
    },
    /// The whole fetch took longer than the timeout.
    #[error("{host}: the policy fetch timed out after {timeout:?} ({source})")]
    Timeout {
        /// The policy host.
        host: String,
        /// The configured timeout.
        timeout: Duration,
        /// Which phase timed out, as the HTTP client says.
        #[source]
        source: ureq::Error,
    },
    /// The proxy refused or failed the CONNECT.
    #[error("{host}: the HTTPS proxy failed: {source}; check the proxy setting or https_proxy")]
    Proxy {
        /// The policy host.
        host: String,
        /// What the proxy said.
        #[source]
        source: ureq::Error,
    },
    /// The TLS handshake or the certificate check failed (RFC 8461 §3.3:
    /// the certificate must be valid for `mta-sts.<domain>`).
    #[error("{host}: TLS or certificate failure: {source}; the policy host needs a valid certificate for its name")]
    Tls {
        /// The policy host.
        host: String,
        /// What rustls said (through the HTTP client).
        #[source]
        source: ureq::Error,
    },
    /// The response cannot carry a policy (a redirect, a status other than
    /// 200, not `text/plain`, too large: RFC 8461 §3.2, §3.3).
    #[error("{host}: {problem}")]
    Response {
        /// The policy host.
        host: String,
        /// What is wrong with it.
        problem: ResponseProblem,
    },
    /// Reading the response failed.
    #[error("{host}: reading the response failed: {source}")]
    Read {
        /// The policy host.
        host: String,
        /// What the HTTP client said.
        #[source]
        source: ureq::Error,
    },
    /// The body is not a valid policy (RFC 8461 §3.2).
    #[error("{host}: the policy is invalid: {source}")]
    Invalid {
        /// The policy host.
        host: String,
        /// The parse error.
        #[source]
        source: ParseError,
    },
}

impl FetchError {
    /// The TLS-RPT result type (RFC 8460 §4.3.2.2).
    pub fn result_type(&self) -> ResultType {
        match self {
            Self::Tls { .. } => ResultType::StsWebpkiInvalid,
            Self::Invalid { .. }
            | Self::Response { problem: ResponseProblem::ContentType(_) | ResponseProblem::TooLarge { .. }, .. } => {
                ResultType::StsPolicyInvalid
            }
            _ => ResultType::StsPolicyFetchError,
        }
    }

    /// Whether the same fetch may succeed later (network trouble) rather
    /// than needing the domain owner to change something.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Self::HostNotFound { .. }
                | Self::Connect { .. }
                | Self::Timeout { .. }
                | Self::Proxy { .. }
                | Self::Read { .. }
                | Self::Response { problem: ResponseProblem::Status(500..=599), .. }
        )
    }
}

impl From<FetchError> for FetchFailure {
    fn from(e: FetchError) -> Self {
        FetchFailure::new(e.result_type(), e)
    }
}

/// Fetches MTA-STS policies. Thread-safe; connections are not reused
/// across fetches of different hosts beyond what ureq pools.
#[derive(Debug, Clone)]
pub struct PolicyFetcher {
    agent: ureq::Agent,
    timeout: Duration,
    has_lookup: bool,
}

thread_local! {
    /// The addresses [`PolicyFetcher::fetch_at`] pins for one host while
    /// its request runs on this thread (ureq resolves on the calling thread).
    static PINNED: std::cell::RefCell<Option<(String, Vec<SocketAddr>)>> = const { std::cell::RefCell::new(None) };
}

/// Pins `host` to `addrs` on this thread until dropped.
struct Pin;

impl Pin {
    fn new(host: &str, addrs: Vec<SocketAddr>) -> Self {
        PINNED.with(|p| *p.borrow_mut() = Some((host.to_owned(), addrs)));
        Pin
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        PINNED.with(|p| *p.borrow_mut() = None);
    }
}

/// Name lookups of the fetch: address literals as they are, a host pinned
/// by [`PolicyFetcher::fetch_at`], then the configured lookup or the
/// system's.
struct FetchResolver {
    lookup: Option<Lookup>,
    system: DefaultResolver,
}

impl fmt::Debug for FetchResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FetchResolver")
    }
}

impl Resolver for FetchResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let mut out = self.empty();
        // An address literal (a proxy given by address) needs no lookup.
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
            out.push(SocketAddr::new(ip, port));
            return Ok(out);
        }
        let pinned =
            PINNED.with(|p| p.borrow().as_ref().filter(|(h, _)| h.eq_ignore_ascii_case(host)).map(|(_, a)| a.clone()));
        let found = match (pinned, &self.lookup) {
            (Some(addrs), _) => addrs,
            (None, Some(lookup)) => lookup(host),
            (None, None) => return self.system.resolve(uri, config, timeout),
        };
        for addr in found.into_iter().take(16) {
            out.push(addr);
        }
        if out.is_empty() { Err(ureq::Error::HostNotFound) } else { Ok(out) }
    }
}

impl PolicyFetcher {
    /// A fetcher with this configuration.
    pub fn new(config: FetchConfig) -> Result<Self, FetchError> {
        let roots = match config.roots.certificates() {
            None => RootCerts::WebPki,
            Some(certs) => RootCerts::new_with_certs(
                &certs.iter().map(|c| Certificate::from_der(c).to_owned()).collect::<Vec<_>>(),
            ),
        };
        let proxy = match (&config.proxy, config.proxy_from_env) {
            (Some(p), _) => {
                Some(ureq::Proxy::new(p).map_err(|source| FetchError::BadProxy { proxy: p.clone(), source })?)
            }
            (None, true) => ureq::Proxy::try_from_env(),
            (None, false) => None,
        };
        let timeout = config.timeout.min(MAX_TIMEOUT);
        let agent_config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            // Every domain has its own policy host and a refresh comes hours
            // later: a kept connection is never reused, only pruned.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .http_status_as_error(false)
            .https_only(true)
            .user_agent(USER_AGENT)
            .proxy(proxy)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        let has_lookup = config.lookup.is_some();
        let resolver = FetchResolver { lookup: config.lookup, system: DefaultResolver::default() };
        let agent = ureq::Agent::with_parts(agent_config, DefaultConnector::new(), resolver);
        Ok(Self { agent, timeout, has_lookup })
    }

    /// Fetches and parses the policy of `domain` from
    /// `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.3).
    ///
    /// Logs, with the `tracing` crate, "Successfully fetched MTA-STS policy
    /// for the domain (…)" at info with the mode, or "Failed to fetch
    /// MTA-STS policy for the domain (…)" at info with the reason (timeout,
    /// proxy, certificate, status, content type, size).
    pub fn fetch(&self, domain: &DomainName) -> Result<Policy, FetchError> {
        self.logged(domain, self.fetch_inner(domain))
    }

    /// Whether the configuration names its own lookup
    /// ([`FetchConfig::lookup`]), which then decides where the policy host is.
    pub fn has_lookup(&self) -> bool {
        self.has_lookup
    }

    /// [`fetch`](Self::fetch) from the policy host at these addresses
    /// (port 443), found by the caller's DNS: the fetch itself asks no
    /// resolver. No address is [`FetchError::HostNotFound`]. Blocks.
    pub fn fetch_at(&self, domain: &DomainName, addresses: &[std::net::IpAddr]) -> Result<Policy, FetchError> {
        let host = policy_host(domain);
        if addresses.is_empty() {
            return self.logged(domain, Err(FetchError::HostNotFound { host }));
        }
        let _pin = Pin::new(&host, addresses.iter().map(|ip| SocketAddr::new(*ip, 443)).collect());
        self.logged(domain, self.fetch_inner(domain))
    }

    fn logged(&self, domain: &DomainName, result: Result<Policy, FetchError>) -> Result<Policy, FetchError> {
        match &result {
            Ok(policy) => tracing::info!(
                domain = %domain, mode = %policy.mode(), max_age = policy.max_age().as_secs(),
                "Successfully fetched MTA-STS policy for the domain ({domain})"
            ),
            Err(e) => tracing::info!(
                domain = %domain, reason = %e, result_type = %e.result_type(),
                "Failed to fetch MTA-STS policy for the domain ({domain})"
            ),
        }
        result
    }

    fn fetch_inner(&self, domain: &DomainName) -> Result<Policy, FetchError> {
        let host = policy_host(domain);
        let mut response = self.agent.get(&policy_url(domain)).call().map_err(|e| self.error(&host, e))?;
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let declared = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        check_response(response.status().as_u16(), header("location"), header("content-type"), declared)
            .map_err(|problem| FetchError::Response { host: host.clone(), problem })?;
        let body =
            response.body_mut().with_config().limit(MAX_POLICY_BYTES as u64).read_to_vec().map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    FetchError::Response { host: host.clone(), problem: ResponseProblem::TooLarge { declared } }
                }
                other => self.error(&host, other),
            })?;
        Policy::parse_bytes(&body).map_err(|source| FetchError::Invalid { host, source })
    }

    fn error(&self, host: &str, e: ureq::Error) -> FetchError {
        let host = host.to_owned();
        match e {
            ureq::Error::HostNotFound => FetchError::HostNotFound { host },
            source @ ureq::Error::Timeout(_) => FetchError::Timeout { host, timeout: self.timeout, source },
            source @ (ureq::Error::Tls(_) | ureq::Error::Rustls(_)) => FetchError::Tls { host, source },
            source @ ureq::Error::ConnectProxyFailed(_) => FetchError::Proxy { host, source },
            source @ ureq::Error::ConnectionFailed => FetchError::Connect { host, source },
            ureq::Error::Io(io) => {
                let tls = io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
                let kind = io.kind();
                let source = ureq::Error::Io(io);
                match kind {
                    _ if tls => FetchError::Tls { host, source },
                    std::io::ErrorKind::TimedOut => FetchError::Timeout { host, timeout: self.timeout, source },
                    std::io::ErrorKind::ConnectionRefused => FetchError::Connect { host, source },
                    _ => FetchError::Read { host, source },
                }
            }
            source => FetchError::Read { host, source },
        }
    }
}

/// POSTs TLS-RPT reports to `https:` `rua` URIs (RFC 8460 §5.4): body the
/// gzipped JSON, `Content-Type: application/tlsrpt+gzip`, the certificate
/// checked against the configured roots, no redirects, one overall
/// timeout. A 2xx answer is delivered; another 4xx is refused for good;
/// a 5xx, a timeout or a network error is retried by the outbox.
#[derive(Debug)]
pub struct HttpsReportPoster {
    fetcher: PolicyFetcher,
}

impl HttpsReportPoster {
    /// A poster with the fetch configuration's roots, proxy, timeout and
    /// address lookup.
    pub fn new(config: FetchConfig) -> Result<Self, FetchError> {
        Ok(Self { fetcher: PolicyFetcher::new(config)? })
    }
}

impl crate::report::ReportPoster for HttpsReportPoster {
    fn post(&self, uri: &str, gzip: &[u8]) -> crate::report::SendOutcome {
        use crate::report::SendOutcome;
        let sent = self.fetcher.agent.post(uri).header("Content-Type", crate::report::TLSRPT_GZIP).send(gzip);
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                match status {
                    200..=299 => SendOutcome::Delivered,
                    500..=599 => SendOutcome::Temporary(format!("{uri}: HTTP {status}")),
                    // RFC 8460 §5.4 asks for 2xx; a redirect is not followed.
                    _ => SendOutcome::Permanent(format!("{uri}: HTTP {status}")),
                }
            }
            Err(e) => SendOutcome::Temporary(format!("{uri}: {e}")),
        }
    }
}
