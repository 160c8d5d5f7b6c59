//! DESIGN.md: nothing panics on any input, configuration values included.
//! Every duration and count a user can set, at zero and at its largest,
//! through the constructors and one operation each — no unchecked
//! `Instant`/`SystemTime`/`Duration` arithmetic anywhere behind them.
#![cfg(feature = "resolver")]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use smtp_tls_policy::cache::{CacheConfig, PolicyCache, TxtLookup};
use smtp_tls_policy::dns::blocking::DnsResolver;
use smtp_tls_policy::dns::{DnsConfig, DnssecMode};
use smtp_tls_policy::fetch::{FetchConfig, PolicyFetcher};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::postfix::server::{ServerConfig, SocketmapServer};
use smtp_tls_policy::resolver::ResolverConfig;
use smtp_tls_policy::resolver::blocking::PolicyResolver;
use smtp_tls_policy::sts::{Policy, PolicyId};

const EXTREMES: [Duration; 3] = [Duration::ZERO, Duration::from_nanos(1), Duration::MAX];

/// A UDP port on which nothing listens: queries get "connection refused".
fn closed_udp_port() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap()
}

#[test]
fn dns_resolvers_take_any_timeout_and_attempt_count() {
    let server = closed_udp_port();
    for timeout in EXTREMES {
        for attempts in [0, 1, usize::MAX] {
            let config =
                DnsConfig::default().servers([server]).dnssec(DnssecMode::Off).timeout(timeout).attempts(attempts);
            let dns = DnsResolver::new(config).unwrap();
            let started = Instant::now();
            // Nothing listens: an error, soon (the attempts are bounded).
            assert!(dns.txt("_mta-sts.example.com").is_err(), "{timeout:?} {attempts}");
            assert!(started.elapsed() < Duration::from_secs(30), "{timeout:?} {attempts}: {:?}", started.elapsed());
        }
    }
}

#[test]
fn fetchers_take_any_timeout() {
    for timeout in EXTREMES {
        let fetcher = PolicyFetcher::new(
            FetchConfig::default()
                .timeout(timeout)
                .proxy_from_env(false)
                .lookup(|_| vec![SocketAddr::from(([127, 0, 0, 1], 1))]),
        )
        .unwrap();
        assert!(fetcher.fetch(&DomainName::parse("example.com").unwrap()).is_err(), "{timeout:?}");
    }
}

#[test]
fn caches_take_any_durations_and_counts() {
    let d = DomainName::parse("example.com").unwrap();
    let id = PolicyId::parse("1").unwrap();
    let policy = Policy::parse("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 31557600\n").unwrap();
    let times = [SystemTime::UNIX_EPOCH, SystemTime::now(), SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4)];
    for backoff in EXTREMES {
        for refresh in EXTREMES {
            for (capacity, shards) in [(0, 0), (1, usize::MAX), (usize::MAX, 1)] {
                let config = CacheConfig::default()
                    .fetch_backoff(backoff)
                    .refresh_interval(refresh)
                    .refresh_fraction(f64::INFINITY)
                    .capacity(capacity)
                    .shards(shards);
                let cache = PolicyCache::new(config);
                for now in times {
                    let _ = cache.lookup(&d, TxtLookup::Record(id), now, |_| Ok(policy.clone()));
                    let _ = cache.due_for_refresh(now);
                    let _ = cache.refresh(&d, TxtLookup::Failed, now);
                    let _ = cache.restore(&cache.snapshot(now), now);
                }
            }
        }
    }
}

#[test]
fn servers_take_any_timeouts_and_reply_ttl() {
    for d in EXTREMES {
        let dns = DnsConfig::default().servers([closed_udp_port()]).dnssec(DnssecMode::Off).timeout(Duration::ZERO);
        let resolver = PolicyResolver::new(ResolverConfig::default().dns(dns)).unwrap();
        let zone = smtp_tls_policy::postfix::server::Zone { resolver, options: Default::default() };
        let config = ServerConfig::default()
            .inet("127.0.0.1:0".parse().unwrap())
            .idle_timeout(d)
            .request_timeout(d)
            .reply_ttl(d)
            .zone("postfix", zone);
        let server = SocketmapServer::start(config).unwrap();
        let addr = server.local_addrs()[0];
        // `[ip]` keys need no lookup: a NOTFOUND that is kept for reuse,
        // asked twice so that the second comes from the kept replies.
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = smtp_tls_policy::postfix::netstring::encode(b"postfix [192.0.2.1]:25");
        let mut replies = Vec::new();
        for _ in 0..2 {
            if c.write_all(&request).is_err() {
                break;
            }
            let mut reply = [0u8; 64];
            match c.read(&mut reply) {
                Ok(n) if n > 0 => replies.push(String::from_utf8_lossy(&reply[..n]).into_owned()),
                _ => break,
            }
        }
        if d >= Duration::from_secs(1) {
            // Timeouts that leave room: both replies must come (a panic in
            // the connection thread would close the connection instead).
            assert_eq!(replies, ["9:NOTFOUND ,", "9:NOTFOUND ,"], "{d:?}");
        } else {
            // Timeouts of a millisecond may close the connection first.
            assert!(replies.iter().all(|r| r == "9:NOTFOUND ," || r.contains("PERM")), "{d:?}: {replies:?}");
        }
        server.shutdown();
    }
}

#[test]
fn refreshers_take_any_period() {
    let dns = DnsConfig::default().servers([closed_udp_port()]).dnssec(DnssecMode::Off);
    let resolver = PolicyResolver::new(ResolverConfig::default().dns(dns)).unwrap();
    for every in EXTREMES {
        let refresher = resolver.start_refresher(every);
        std::thread::sleep(Duration::from_millis(20));
        refresher.stop();
    }
}
