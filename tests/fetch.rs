//! The policy fetch (RFC 8461 §3.3) against real local HTTPS servers with
//! rcgen certificates: every hostile case of DESIGN.md "Failure and hostile
//! input" that concerns the fetch.
#![cfg(feature = "fetch")]

#[path = "../examples/support/mod.rs"]
mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use smtp_tls_policy::fetch::{FetchConfig, FetchError, PolicyFetcher, Roots};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::ResultType;
use smtp_tls_policy::sts::fetch::ResponseProblem;
use smtp_tls_policy::sts::{MAX_POLICY_BYTES, Mode};
use support::https::{POLICY, Pki, Reply, ok, proxy, response, self_signed, serve};

fn fetcher(pki: &Pki, target: SocketAddr, timeout: Duration) -> PolicyFetcher {
    let config = FetchConfig::default()
        .roots(Roots::custom(std::slice::from_ref(&pki.ca_der)).unwrap())
        .proxy_from_env(false)
        .timeout(timeout)
        .lookup(move |_host| vec![target]);
    PolicyFetcher::new(config).unwrap()
}

fn example() -> DomainName {
    DomainName::parse("example.com").unwrap()
}

fn fetch_with(reply: Reply) -> Result<smtp_tls_policy::sts::Policy, FetchError> {
    let pki = Pki::new();
    let (addr, _) = serve(pki.server("mta-sts.example.com", false), reply);
    fetcher(&pki, addr, Duration::from_secs(5)).fetch(&example())
}

/// RFC 8461 §3.3: the policy at the well-known URL, with our User-Agent.
#[test]
fn rfc8461_3_3_a_valid_policy_is_fetched() {
    let pki = Pki::new();
    let (addr, seen) = serve(pki.server("mta-sts.example.com", false), ok(POLICY.as_bytes()));
    let policy = fetcher(&pki, addr, Duration::from_secs(5)).fetch(&example()).unwrap();
    assert_eq!(policy.mode(), Mode::Enforce);
    let request = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(request.starts_with("get /.well-known/mta-sts.txt http/1.1\r\n"), "{request}");
    assert!(request.contains("host: mta-sts.example.com"), "{request}");
    assert!(request.contains("user-agent: smtp-tls-policy/"), "{request}");
}

/// RFC 8461 §3.2: Content-Type text/plain, any case, parameters allowed.
#[test]
fn rfc8461_3_2_content_type() {
    for ct in ["text/plain", "TEXT/PLAIN", "text/plain;charset=us-ascii", "Text/Plain ; charset=\"utf-8\""] {
        let reply = response("200 OK", &[("Content-Type", ct)], POLICY.as_bytes());
        assert!(fetch_with(reply).is_ok(), "{ct}");
    }
    for (ct, headers) in [("text/html", vec![("Content-Type", "text/html")]), ("", vec![])] {
        let err = fetch_with(response("200 OK", &headers, POLICY.as_bytes())).unwrap_err();
        assert!(
            matches!(&err, FetchError::Response { problem: ResponseProblem::ContentType(found), .. } if found == ct),
            "{err}"
        );
        assert_eq!(err.result_type(), ResultType::StsPolicyInvalid);
    }
}

/// RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed".
#[test]
fn rfc8461_3_3_redirects_are_not_followed() {
    let reply = response("301 Moved Permanently", &[("Location", "https://www.example.com/mta-sts.txt")], b"");
    let err = fetch_with(reply).unwrap_err();
    assert!(
        matches!(&err, FetchError::Response { problem: ResponseProblem::Redirect { status: 301, location: Some(l) }, .. } if l.contains("www")),
        "{err}"
    );
    assert_eq!(err.result_type(), ResultType::StsPolicyFetchError);
}

/// RFC 8461 §3.3: only HTTP 200 serves a policy.
#[test]
fn rfc8461_3_3_only_status_200() {
    for (status, code, temporary) in [("404 Not Found", 404, false), ("500 Internal Server Error", 500, true)] {
        let err = fetch_with(response(status, &[("Content-Type", "text/plain")], POLICY.as_bytes())).unwrap_err();
        assert!(matches!(err, FetchError::Response { problem: ResponseProblem::Status(s), .. } if s == code), "{err}");
        assert_eq!(err.is_temporary(), temporary);
    }
}

/// DESIGN.md: at most 64 KiB, with and without Content-Length.
#[test]
fn bodies_over_64_kib_with_and_without_content_length() {
    let mut body = POLICY.as_bytes().to_vec();
    body.resize(MAX_POLICY_BYTES, b'\n');
    assert!(fetch_with(ok(&body)).is_ok(), "exactly 64 KiB is fine");
    body.push(b'\n');
    let err = fetch_with(ok(&body)).unwrap_err();
    assert!(
        matches!(err, FetchError::Response { problem: ResponseProblem::TooLarge { declared: Some(65_537) }, .. }),
        "{err}"
    );
    let err = fetch_with(response("200 OK", &[("Content-Type", "text/plain")], &body)).unwrap_err();
    assert!(matches!(err, FetchError::Response { problem: ResponseProblem::TooLarge { declared: None }, .. }), "{err}");
    // A lying Content-Length does not help: the cap counts bytes read.
    let err = fetch_with(response("200 OK", &[("Content-Type", "text/plain")], &vec![b'\n'; 1 << 20])).unwrap_err();
    assert!(matches!(err, FetchError::Response { problem: ResponseProblem::TooLarge { .. }, .. }), "{err}");
}

/// DESIGN.md: one overall timeout, even for a server that keeps sending.
#[test]
fn a_server_that_drips_bytes_past_the_timeout() {
    let pki = Pki::new();
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nversion: STSv1\n".to_vec();
    let (addr, _) = serve(
        pki.server("mta-sts.example.com", false),
        Reply::Drip { head, gap: Duration::from_millis(200), count: 50 },
    );
    let started = std::time::Instant::now();
    let err = fetcher(&pki, addr, Duration::from_secs(1)).fetch(&example()).unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    assert!(err.is_temporary());
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout is overall, not per read");
}

/// RFC 8461 §3.3: the certificate must be valid for mta-sts.<domain> and
/// chain to a trusted root: `sts-webpki-invalid` otherwise.
#[test]
fn rfc8461_3_3_wrong_name_expired_and_untrusted_certificates() {
    let pki = Pki::new();
    for cert in [
        pki.server("mta-sts.other.example", false),
        pki.server("mta-sts.example.com", true),
        self_signed("mta-sts.example.com"),
        pki.server("example.com", false),
    ] {
        let (addr, _) = serve(cert, ok(POLICY.as_bytes()));
        let err = fetcher(&pki, addr, Duration::from_secs(5)).fetch(&example()).unwrap_err();
        assert!(matches!(err, FetchError::Tls { .. }), "{err}");
        assert_eq!(err.result_type(), ResultType::StsWebpkiInvalid);
    }
}

/// RFC 8461 §3.2: an invalid body is `sts-policy-invalid`.
#[test]
fn rfc8461_3_2_an_invalid_policy() {
    let err = fetch_with(ok(b"<html>hello</html>\n")).unwrap_err();
    assert!(matches!(err, FetchError::Invalid { .. }), "{err}");
    assert_eq!(err.result_type(), ResultType::StsPolicyInvalid);
    assert!(!err.is_temporary());
    assert_eq!(
        err.to_string(),
        "mta-sts.example.com: the policy is invalid: line 1: expected \"key: value\", found \"<html>hello</html>\""
    );
}

/// Name and connection failures are typed and temporary.
#[test]
fn host_not_found_and_connection_refused() {
    let pki = Pki::new();
    let config = FetchConfig::default().proxy_from_env(false).lookup(|_| Vec::new());
    let err = PolicyFetcher::new(config).unwrap().fetch(&example()).unwrap_err();
    assert!(matches!(err, FetchError::HostNotFound { .. }), "{err}");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let err = fetcher(&pki, closed, Duration::from_secs(5)).fetch(&example()).unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.result_type(), ResultType::StsPolicyFetchError);
}

/// DESIGN.md: an HTTPS proxy when configured.
#[test]
fn fetch_through_an_https_proxy() {
    let pki = Pki::new();
    let (server, _) = serve(pki.server("mta-sts.example.com", false), ok(POLICY.as_bytes()));
    let through = |refuse| {
        let config = FetchConfig::default()
            .roots(Roots::custom(std::slice::from_ref(&pki.ca_der)).unwrap())
            .proxy(format!("http://{}", proxy(server, refuse)))
            .timeout(Duration::from_secs(5))
            .lookup(|_| Vec::new());
        PolicyFetcher::new(config).unwrap().fetch(&example())
    };
    assert_eq!(through(false).unwrap().mode(), Mode::Enforce);
    let err = through(true).unwrap_err();
    assert!(matches!(err, FetchError::Proxy { .. }), "{err}");
    let bad = FetchConfig::default().proxy("not a url at all");
    assert!(matches!(PolicyFetcher::new(bad), Err(FetchError::BadProxy { .. })));
}

/// DESIGN.md: the operating system's store is selectable (this machine and
/// CI have Debian's ca-certificates).
#[test]
fn os_roots_load() {
    let fetcher = PolicyFetcher::new(FetchConfig::default().roots(Roots::os().unwrap()).proxy_from_env(false));
    assert!(fetcher.is_ok(), "{:?}", fetcher.err());
}

/// Collects the messages of the events logged while it is the default
/// subscriber.
struct Messages(Arc<Mutex<Vec<String>>>);

struct MessageField<'a>(&'a mut String);

impl tracing::field::Visit for MessageField<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Messages {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = String::new();
        event.record(&mut MessageField(&mut message));
        self.0.lock().unwrap().push(message);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// DESIGN.md "Logging": the gateway's wording for a fetch and its failure.
#[test]
fn fetches_are_logged_with_the_gateway_wording() {
    let pki = Pki::new();
    let (good, _) = serve(pki.server("mta-sts.example.com", false), ok(POLICY.as_bytes()));
    let (bad, _) = serve(pki.server("mta-sts.example.com", false), response("404 Not Found", &[], b""));
    let log = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::with_default(Messages(Arc::clone(&log)), || {
        assert!(fetcher(&pki, good, Duration::from_secs(5)).fetch(&example()).is_ok());
        assert!(fetcher(&pki, bad, Duration::from_secs(5)).fetch(&example()).is_err());
    });
    let log = log.lock().unwrap();
    assert!(log.contains(&"Successfully fetched MTA-STS policy for the domain (example.com)".to_owned()), "{log:?}");
    assert!(log.contains(&"Failed to fetch MTA-STS policy for the domain (example.com)".to_owned()), "{log:?}");
}

/// The cache and the fetch together: 50 concurrent lookups of one domain
/// make one HTTPS request (DESIGN.md), and the fetch failure type reaches
/// the cache's decision.
#[test]
fn fifty_concurrent_lookups_make_one_https_request() {
    use smtp_tls_policy::cache::{Decision, NoPolicyReason, PolicyCache, TxtLookup};
    use smtp_tls_policy::sts::PolicyId;
    use std::time::SystemTime;

    let pki = Pki::new();
    let slow = Reply::Drip {
        head: format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{POLICY}",
            POLICY.len() + 3
        )
        .into_bytes(),
        gap: Duration::from_millis(100),
        count: 3,
    };
    let (addr, seen) = serve(pki.server("mta-sts.example.com", false), slow);
    let fetcher = Arc::new(fetcher(&pki, addr, Duration::from_secs(10)));
    let cache = Arc::new(PolicyCache::default());
    let start = Arc::new(std::sync::Barrier::new(50));
    let id = PolicyId::parse("20240101").unwrap();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (fetcher, cache, start) = (Arc::clone(&fetcher), Arc::clone(&cache), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let d = example();
                let decision = cache
                    .lookup(&d, TxtLookup::Record(id), SystemTime::now(), |_| fetcher.fetch(&d).map_err(Into::into));
                decision.policy().map(|p| p.mode())
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Some(Mode::Enforce));
    }
    assert_eq!(seen.lock().unwrap().len(), 1, "one HTTPS request for 50 lookups");

    // A failing fetch: its TLS-RPT type reaches the decision.
    let (bad, _) = serve(self_signed("mta-sts.example.com"), ok(POLICY.as_bytes()));
    let fetcher = self::fetcher(&pki, bad, Duration::from_secs(5));
    let cache = PolicyCache::default();
    let d = example();
    let decision =
        cache.lookup(&d, TxtLookup::Record(id), SystemTime::now(), |_| fetcher.fetch(&d).map_err(Into::into));
    match decision {
        Decision::NoPolicy(NoPolicyReason::FetchFailed(f)) => assert_eq!(f.result_type(), ResultType::StsWebpkiInvalid),
        other => panic!("{other:?}"),
    }
}
