//! An async MTA's delivery path: the async `resolver::PolicyResolver` on the
//! MTA's own tokio runtime (no runtime inside the crate), many domains at
//! once. The SMTP attempts here are the blocking client of the examples'
//! support code on tokio's blocking pool; an async MTA uses its own async
//! SMTP client in their place.
//!
//! ```sh
//! cargo run --example async_mta -- example.com example.org   # needs DNS and port 25 out
//! ```
//!
//! It sends nothing: on a host that would take the message it QUITs.

mod support;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use smtp_tls_policy::engine::{Attempt, DeliveryContext, Verdict};
use smtp_tls_policy::resolver::{PolicyResolver, ResolverConfig};
use smtp_tls_policy::verify::webpki_roots;

async fn deliver(resolver: PolicyResolver, domain: String) -> Result<Verdict, String> {
    let roots = webpki_roots();
    let plan = resolver.resolve(&domain).await.map_err(|e| e.to_string())?;
    let mut delivery = plan.delivery();
    while let Some(host) = delivery.next_host() {
        let addr = resolver.dns().addresses(&host.host).await.ok().and_then(|a| a.records().first().copied());
        let attempt = match addr {
            Some(ip) => {
                let (host, roots) = (host.clone(), roots.clone());
                let task = tokio::task::spawn_blocking(move || {
                    let (attempt, session) = support::smtp::try_host(SocketAddr::new(ip, 25), &host, roots);
                    if let Some(session) = session {
                        session.quit(); // a real MTA sends here when the attempt is assessed Deliver
                    }
                    attempt
                });
                task.await.unwrap_or(Attempt::Unreachable)
            }
            None => Attempt::Unreachable,
        };
        delivery.record(attempt);
    }
    Ok(resolver.finish(delivery, DeliveryContext::new(Duration::from_secs(60))).verdict)
}

fn main() -> ExitCode {
    let domains: Vec<String> = std::env::args().skip(1).collect();
    if domains.is_empty() {
        eprintln!("usage: cargo run --example async_mta -- DOMAIN...");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let resolver = match PolicyResolver::new(ResolverConfig::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let verdicts = runtime.block_on(async {
        let tasks: Vec<_> = domains.iter().map(|d| tokio::spawn(deliver(resolver.clone(), d.clone()))).collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.map_err(|e| e.to_string()).and_then(|v| v));
        }
        out
    });
    let mut all = true;
    for (domain, verdict) in domains.iter().zip(verdicts) {
        match verdict {
            Ok(v) => {
                all &= matches!(v, Verdict::Deliver { .. });
                println!("{domain}: {} {}", v.status(), v.reason());
            }
            Err(e) => {
                all = false;
                println!("{domain}: {e}");
            }
        }
    }
    if all { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
