//! A resolver configured for the local world: DNS from the DNS world,
//! validated from its root key; policies fetched from the HTTPS policy
//! server with the local CA; a gateway's usual default profile.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use smtp_tls_policy::dns::{DnsConfig, DnssecMode, TrustAnchor};
use smtp_tls_policy::engine::{DaneSupport, DestinationControls, Profile, StsSupport, TlsSupport};
use smtp_tls_policy::fetch::{FetchConfig, Roots};
use smtp_tls_policy::resolver::ResolverConfig;

use super::dns::{DnsWorld, Zones};
use super::https::{Pki, PolicyServer, Reply, ok};

/// The DNS world, a policy server and the CA its certificates come from.
pub struct LocalWorld {
    pub dns: DnsWorld,
    pub https: PolicyServer,
    pub pki: Arc<Pki>,
}

impl LocalWorld {
    /// Starts the DNS world with `zones` and an empty policy server.
    pub fn start(zones: &Zones) -> Self {
        let pki = Arc::new(Pki::new());
        let https = PolicyServer::start(Arc::clone(&pki));
        Self { dns: DnsWorld::start(zones), https, pki }
    }

    /// [`local_config`] for this world.
    pub fn config(&self) -> ResolverConfig {
        local_config(&self.dns, &self.https, &self.pki)
    }
}

/// A policy body served as `text/plain`, `max_age` one day.
pub fn policy(mode: &str, mx: &str) -> Reply {
    ok(format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n").as_bytes())
}

/// TLS Preferred, DANE Opportunistic, MTA-STS On.
pub fn controls() -> DestinationControls {
    DestinationControls::new(Profile::new(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On))
}

/// The resolver configuration for the local world (short DNS timeouts, one
/// attempt; a 2 s fetch timeout).
pub fn local_config(dns: &DnsWorld, https: &PolicyServer, pki: &Pki) -> ResolverConfig {
    let anchor = TrustAnchor::parse(&dns.root_anchor).expect("the world's root key");
    let dns = DnsConfig::default()
        .servers([dns.addr])
        .dnssec(DnssecMode::Validate(anchor))
        .timeout(Duration::from_millis(400))
        .attempts(1);
    config_with_dns(dns, https, pki)
}

/// A resolver configuration with these DNS settings and the local policy
/// server (a 2 s fetch timeout).
pub fn config_with_dns(dns: DnsConfig, https: &PolicyServer, pki: &Pki) -> ResolverConfig {
    let target = https.addr;
    let fetch = FetchConfig::default()
        .roots(Roots::custom(std::slice::from_ref(&pki.ca_der)).unwrap())
        .proxy_from_env(false)
        .timeout(Duration::from_secs(2))
        .lookup(move |_| vec![target]);
    ResolverConfig::default().dns(dns).fetch(fetch).controls(controls())
}
