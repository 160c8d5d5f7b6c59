//! The zones of a configuration as the library's resolvers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smtp_tls_policy::dns::{DnsConfig, DnsErrorKind, DnssecMode, TrustAnchor};
use smtp_tls_policy::engine::{DaneSupport, DestinationControls, Options, Profile, StsSupport, TlsSupport};
use smtp_tls_policy::fetch::{FetchConfig, Roots};
use smtp_tls_policy::postfix::server::Zone;
use smtp_tls_policy::postfix::{Level, ZoneOptions};
use smtp_tls_policy::resolver::ResolverConfig;
use smtp_tls_policy::resolver::blocking::PolicyResolver;
use toml::Spanned;

use crate::config::{Config, ConfigError, Dane, Dnssec, DnssecBroken, Source, ZoneConfig};

/// A zone and what the checker needs of it (its DNS and fetch settings).
#[derive(Clone)]
pub struct Built {
    pub zone: Zone,
    pub fetch: FetchConfig,
}

/// Every zone of `config`, or the first error at its place. `previous`:
/// the zones served until now, whose cached policies the zones of the same
/// name take over (a reload keeps the cache).
pub fn build(
    source: &Source,
    config: &Config,
    previous: Option<&HashMap<String, Zone>>,
) -> Result<HashMap<String, Built>, ConfigError> {
    let mut zones = HashMap::new();
    for (name, spanned) in &config.zones {
        let built = zone(source, name, spanned)?;
        if let Some(old) = previous.and_then(|p| p.get(name)) {
            let now = SystemTime::now();
            let snapshot = old.resolver.cache().snapshot(now);
            if let Err(e) = built.zone.resolver.cache().restore(&snapshot, now) {
                tracing::warn!(zone = %name, "cached policies not carried over: {e}");
            }
        }
        zones.insert(name.clone(), built);
    }
    Ok(zones)
}

fn at<T>(source: &Source, spanned: &Spanned<T>, message: String) -> ConfigError {
    let span = spanned.span();
    source.error((span.end > 0).then_some(span), message)
}

fn zone(source: &Source, name: &str, spanned: &Spanned<ZoneConfig>) -> Result<Built, ConfigError> {
    let z = spanned.get_ref();
    let whole = |message: String| at(source, spanned, format!("zones.{name}: {message}"));
    let mut dns = DnsConfig::default().timeout(z.timeout.min(Duration::from_secs(5)));
    if !z.dns.is_empty() {
        dns = dns.servers(z.dns.clone());
    }
    let mut fetch = FetchConfig::default().timeout(z.timeout);
    let anchor = match &z.anchor {
        Some(path) => {
            let shown = path.get_ref().display();
            let text = std::fs::read_to_string(path.get_ref())
                .map_err(|e| at(source, path, format!("zones.{name}.anchor = {shown:?}: {e}")))?;
            Some(
                TrustAnchor::parse(&text)
                    .map_err(|e| at(source, path, format!("zones.{name}.anchor = {shown:?}: {e}")))?,
            )
        }
        None => None,
    };
    fetch = fetch.roots(match z.roots.get_ref().as_str() {
        "webpki" => Roots::webpki(),
        "os" => Roots::os().map_err(|e| at(source, &z.roots, format!("zones.{name}.roots = \"os\": {e}")))?,
        path => {
            let bad = |e: String| at(source, &z.roots, format!("zones.{name}.roots = {path:?}: {e}"));
            Roots::custom(&pem_certificates(std::path::Path::new(path)).map_err(bad)?)
                .map_err(|e| bad(e.to_string()))?
        }
    });
    if let Some(proxy) = &z.proxy {
        fetch = fetch.proxy(proxy);
    }
    let degrade = z.dnssec_broken == DnssecBroken::Degrade;
    dns = dns
        .dnssec(match (z.dnssec, anchor) {
            (Dnssec::Off, _) => DnssecMode::Off,
            (Dnssec::TrustAd, _) => DnssecMode::TrustAd,
            (Dnssec::Validate, Some(anchor)) => DnssecMode::Validate(anchor),
            (Dnssec::Validate, None) => DnssecMode::default(),
        })
        .degraded(degrade);
    let dane = match z.dane {
        Dane::None => DaneSupport::None,
        Dane::Opportunistic => DaneSupport::Opportunistic,
        Dane::Mandatory => DaneSupport::Mandatory,
    };
    // Postfix applies its own TLS settings when the map says NOTFOUND, so
    // the TLS support here only shapes the plan; MTA-STS is always on.
    let controls = DestinationControls::new(Profile::new(TlsSupport::Preferred, dane, StsSupport::On))
        .with_options(Options::default().testing_as_enforce(z.strict_testing));
    let mut config = ResolverConfig::default().dns(dns).fetch(fetch.clone()).controls(controls);
    if let Some(url) = &z.store {
        config = config.cache_store(cache_store(url.get_ref()).map_err(|e| at(source, url, e))?);
    }
    let resolver = PolicyResolver::new(config).map_err(|e| whole(e.to_string()))?;
    // At start: can these servers validate at all? (A resolver path that
    // strips DNSSEC would otherwise make every MX lookup fail.)
    if z.dnssec == Dnssec::Validate {
        match resolver.dns().probe() {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), DnsErrorKind::CannotValidate(_)) && !degrade => {
                return Err(whole(format!("{e} (or set dnssec-broken = \"degrade\" to run with DANE unavailable)")));
            }
            Err(e) => tracing::warn!(zone = %name, "DNS check at start: {e}"),
        }
    }
    let unavailable = Level::parse(z.sts_unavailable.get_ref());
    let options = ZoneOptions::default().tlsrpt(z.tlsrpt).unavailable(unavailable);
    Ok(Built { zone: Zone { resolver, options }, fetch })
}

/// The certificates of a PEM file (at least one).
pub fn pem_certificates(path: &std::path::Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the file".into());
    }
    Ok(certs)
}

/// `store = "redis://…"`: the policy cache shared by the nodes of a
/// cluster.
#[cfg(feature = "redis")]
fn cache_store(url: &str) -> Result<Arc<dyn smtp_tls_policy::cache::CacheStore>, String> {
    let prefix = smtp_tls_policy::report::DEFAULT_PREFIX;
    let store = smtp_tls_policy::cache::RedisStore::open(url, prefix, Duration::from_millis(250))
        .map_err(|e| format!("store = {url:?}: {e}"))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
fn cache_store(url: &str) -> Result<Arc<dyn smtp_tls_policy::cache::CacheStore>, String> {
    Err(format!("store = {url:?}: this build has no Redis support (build with --features redis)"))
}
