//! A blocking MTA's delivery path, whole: one `blocking::PolicyResolver`
//! per process, then per message the plan, the `Delivery` loop with the
//! MTA's own SMTP client (`support::smtp::try_host`), the outcome and its
//! TLS-RPT sessions.
//!
//! ```sh
//! cargo run --example blocking_mta -- example.com   # needs DNS and port 25 out
//! ```
//!
//! It sends nothing: on a host that would take the message it QUITs.

mod support;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use smtp_tls_policy::engine::{DeliveryContext, HostResult, Verdict};
use smtp_tls_policy::report::Aggregator;
use smtp_tls_policy::resolver::ResolverConfig;
use smtp_tls_policy::resolver::blocking::PolicyResolver;
use smtp_tls_policy::verify::webpki_roots;

fn main() -> ExitCode {
    let Some(domain) = std::env::args().nth(1) else {
        eprintln!("usage: cargo run --example blocking_mta -- DOMAIN");
        return ExitCode::from(2);
    };
    let resolver = match PolicyResolver::new(ResolverConfig::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (roots, mut tlsrpt) = (webpki_roots(), Aggregator::new());

    let plan = match resolver.resolve(&domain) {
        Ok(plan) => plan,
        Err(e) => {
            println!("{}: {e}", if e.is_temporary() { "defer" } else { "bounce" });
            return ExitCode::from(1);
        }
    };
    let mut delivery = plan.delivery();
    while let Some(host) = delivery.next_host() {
        // The MTA's own IO: the host's addresses (here from the crate's DNS), port 25.
        let addr = resolver.dns().addresses(&host.host).ok().and_then(|a| a.records().first().copied());
        let (attempt, session) = match addr {
            Some(ip) => support::smtp::try_host(SocketAddr::new(ip, 25), host, roots.clone()),
            None => (smtp_tls_policy::engine::Attempt::Unreachable, None),
        };
        println!("{}: {attempt:?}", host.host);
        let delivered = matches!(delivery.record(attempt), Some(HostResult::Deliver { .. }));
        if let Some(session) = session {
            session.quit(); // a real MTA sends the message here when `delivered`
        }
        if delivered {
            println!("{}: would send the message on this session", host.host);
        }
    }
    let outcome = resolver.finish(delivery, DeliveryContext::new(Duration::from_secs(60)));
    outcome.sessions.iter().for_each(|s| tlsrpt.record(s));
    let v = &outcome.verdict;
    println!("{}: {} {}", domain, v.status(), v.reason());
    let (ok, failed) = tlsrpt.totals(&plan.domain);
    println!("TLS-RPT sessions: {ok} successful, {failed} failed");
    if matches!(v, Verdict::Deliver { .. }) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
