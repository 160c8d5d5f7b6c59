//! The admin socket: a UNIX-domain stream socket, created owner-only
//! (0600) so that only the server's user and root can use it; never on
//! the network.
//!
//! The protocol: one request line (`cache list`, `cache show DOMAIN`,
//! `query ZONE DOMAIN`, …) ending in LF, for `cache import ZONE` followed
//! by the snapshot bytes up to the end of the client's stream; the answer
//! is `ok` or `error: WHY` on its first line, then the body up to the end
//! of the stream.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use smtp_tls_policy::cache::EntryInfo;
use smtp_tls_policy::engine::Plan;
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::postfix::server::Zone;
use smtp_tls_policy::postfix::{Reply, policy_reply};

/// The most bytes `cache import` takes (a snapshot of a large cache).
pub const MAX_IMPORT: u64 = 256 << 20;

/// How long one admin connection may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// What the admin commands reach.
pub trait Backend: Sync {
    fn zones(&self) -> std::sync::Arc<HashMap<String, Zone>>;
    fn tlsrpt(&self) -> Option<&crate::tlsrpt::Running>;
}

/// Binds `path` owner-only: an old socket file is replaced, the directory
/// is made if missing.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    }) {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the socket until `stop` is set (checked every 100 ms).
pub fn serve(listener: &UnixListener, backend: &dyn Backend, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(DEADLINE));
                let _ = stream.set_write_timeout(Some(DEADLINE));
                handle(stream, backend);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn handle(stream: UnixStream, backend: &dyn Backend) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.by_ref().take(4096).read_line(&mut line).is_err() {
        return;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let answer = match words.as_slice() {
        ["cache", "import", zone] => {
            let mut bytes = Vec::new();
            match reader.take(MAX_IMPORT).read_to_end(&mut bytes) {
                Ok(_) => import(backend, zone, &bytes),
                Err(e) => Err(format!("reading the snapshot: {e}")),
            }
        }
        words => command(backend, words),
    };
    let mut out = &stream;
    let _ = match answer {
        Ok(body) => out.write_all(b"ok\n").and_then(|()| out.write_all(&body)),
        Err(why) => out.write_all(format!("error: {why}\n").as_bytes()),
    };
}

fn zone<'a>(zones: &'a HashMap<String, Zone>, name: &str) -> Result<&'a Zone, String> {
    zones.get(name).ok_or_else(|| unknown(zones, name))
}

fn unknown(zones: &HashMap<String, Zone>, name: &str) -> String {
    let mut known: Vec<&str> = zones.keys().map(String::as_str).collect();
    known.sort_unstable();
    format!("no zone {name:?} (zones: {})", known.join(", "))
}

/// The zone named, or the only one.
fn zone_or_only<'a>(zones: &'a HashMap<String, Zone>, name: Option<&str>) -> Result<(&'a str, &'a Zone), String> {
    match name {
        Some(n) => zones.get_key_value(n).map(|(k, z)| (k.as_str(), z)).ok_or_else(|| unknown(zones, n)),
        None if zones.len() == 1 => zones.iter().next().map(|(k, z)| (k.as_str(), z)).ok_or_else(String::new),
        None => Err("several zones: name one with --map".into()),
    }
}

fn domain(text: &str) -> Result<DomainName, String> {
    DomainName::parse(text.trim_end_matches('.')).map_err(|e| e.to_string())
}

fn command(backend: &dyn Backend, words: &[&str]) -> Result<Vec<u8>, String> {
    let zones = backend.zones();
    let now = SystemTime::now();
    match words {
        ["cache", "list", rest @ ..] => {
            let mut out = String::new();
            let mut names: Vec<&String> = zones.keys().collect();
            names.sort_unstable();
            for name in names.into_iter().filter(|n| rest.is_empty() || rest.contains(&n.as_str())) {
                let mut entries = zones[name].resolver.cache().entries();
                entries.sort_by(|a, b| a.domain.cmp(&b.domain));
                for e in entries {
                    let _ = writeln!(out, "{name}\t{}", summary(&e, now));
                }
            }
            Ok(out.into_bytes())
        }
        ["cache", "show", d, rest @ ..] => {
            let (name, zone) = zone_or_only(&zones, rest.first().copied())?;
            let d = domain(d)?;
            let entry = zone.resolver.cache().entry(&d).ok_or_else(|| format!("{d} is not in the cache of {name}"))?;
            Ok(detail(&entry, now).into_bytes())
        }
        ["cache", "purge", d, rest @ ..] => {
            let (name, zone) = zone_or_only(&zones, rest.first().copied())?;
            let d = domain(d)?;
            if zone.resolver.cache().purge(&d) {
                Ok(format!("{d} purged from {name}: the next query fetches its policy again\n").into_bytes())
            } else {
                Err(format!("{d} is not in the cache of {name}"))
            }
        }
        ["cache", "export", rest @ ..] => {
            let (_, zone) = zone_or_only(&zones, rest.first().copied())?;
            Ok(zone.resolver.cache().snapshot(now))
        }
        ["query", zone_name, d] => {
            let zone = zone(&zones, zone_name)?;
            let d = domain(d)?;
            Ok(query(zone, &d).into_bytes())
        }
        ["report", "list"] => backend.tlsrpt().ok_or_else(no_tlsrpt)?.list().map(String::into_bytes),
        ["report", "send-now"] => backend.tlsrpt().ok_or_else(no_tlsrpt)?.send_now().map(String::into_bytes),
        _ => Err(format!(
            "unknown request {:?}: cache list|show|purge|export|import, query, report list|send-now",
            words.join(" ")
        )),
    }
}

fn no_tlsrpt() -> String {
    "TLS-RPT is not configured (add a [tlsrpt] table)".into()
}

fn import(backend: &dyn Backend, zone_name: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let zones = backend.zones();
    let zone = zone(&zones, zone_name)?;
    let restored = zone
        .resolver
        .cache()
        .restore(bytes, SystemTime::now())
        .map_err(|e| format!("the snapshot was refused, the cache is unchanged: {e}"))?;
    let mut out =
        format!("{} policies imported into {zone_name}, {} left out\n", restored.loaded, restored.skipped.len());
    for (domain, why) in &restored.skipped {
        let _ = writeln!(out, "  {domain}: {why}");
    }
    Ok(out.into_bytes())
}

/// RFC 3339 UTC, to the second.
fn secs(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// One line of `cache list`.
pub fn summary(e: &EntryInfo, now: SystemTime) -> String {
    let mut line = e.domain.to_string();
    match &e.policy {
        Some((id, policy)) => {
            let state = match e.expires_at {
                Some(at) if at > now => format!("expires {}", secs(at)),
                Some(_) => "expired".into(),
                None => String::new(),
            };
            let _ = write!(line, "\tid={id}\tmode={}\tmx={}\t{state}", policy.mode(), policy.mx().len());
        }
        None => line.push_str("\tno policy"),
    }
    if let Some((id, failure, until)) = &e.last_failure {
        let _ = write!(
            line,
            "\tlast fetch failed (id {id}, {}): {failure}; retry after {}",
            failure.result_type(),
            secs(*until)
        );
    }
    line
}

/// `cache show`: everything, the policy text included.
fn detail(e: &EntryInfo, now: SystemTime) -> String {
    let mut out = format!("{}\n", summary(e, now));
    if let Some(at) = e.fetched_at {
        let _ = writeln!(out, "fetched at {}", secs(at));
    }
    if e.fetching {
        out.push_str("a fetch is running\n");
    }
    if let Some((id, policy)) = &e.policy {
        let _ = writeln!(out, "policy (id {id}):");
        for line in policy.to_string().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// `query`: the Postfix reply and why.
fn query(zone: &Zone, domain: &DomainName) -> String {
    match zone.resolver.resolve_domain(domain) {
        Ok(plan) => {
            let reply = policy_reply(&plan, zone.options);
            format!("{reply}\n{}", explain(&plan))
        }
        Err(e) => {
            let reply = if e.is_temporary() { Reply::Temp(e.to_string()) } else { Reply::NotFound };
            format!("{reply}\nwhy: {e}\n")
        }
    }
}

/// The plan in words: each host, what it needs and by which rule.
pub fn explain(plan: &Plan) -> String {
    let mut out = String::new();
    match &plan.sts {
        smtp_tls_policy::engine::PlanSts::Applied { id, policy } => {
            let _ = writeln!(out, "MTA-STS: policy id {id}, mode {}", policy.mode());
        }
        smtp_tls_policy::engine::PlanSts::Unavailable(failure) => {
            let _ = writeln!(out, "MTA-STS: announced but not to be had ({}): {failure}", failure.result_type());
        }
        _ => out.push_str("MTA-STS: none\n"),
    }
    for host in &plan.hosts {
        let _ = writeln!(
            out,
            "host {}: {}",
            host.host,
            crate::check::describe(&host.requirement.auth, host.requirement.basis)
        );
    }
    for (host, why) in &plan.skipped {
        let _ = writeln!(out, "host {host}: not used: {}", why.describe());
    }
    out
}

/// A client's request: the answer's body, or the server's error.
pub fn request(socket: &Path, line: &str, payload: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let shown = socket.display();
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot reach the server's admin socket {shown}: {e} (is `smtp-tls-policy serve` running, with this [admin] socket? it is owner-only: run as the server's user or root)"
        )
    })?;
    let _ = stream.set_read_timeout(Some(DEADLINE * 11));
    stream.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("{shown}: {e}"))?;
    if let Some(p) = payload {
        stream.write_all(p).map_err(|e| format!("{shown}: {e}"))?;
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| format!("{shown}: {e}"))?;
    let (head, body) = match answer.iter().position(|&b| b == b'\n') {
        Some(i) => (&answer[..i], answer[i + 1..].to_vec()),
        None => (&answer[..], Vec::new()),
    };
    match head {
        b"ok" => Ok(body),
        _ => Err(String::from_utf8_lossy(head).trim_start_matches("error: ").to_owned()),
    }
}

/// The socket path of `config`, or the default.
pub fn socket_of(config: Option<&crate::config::Config>) -> PathBuf {
    config.map_or_else(|| PathBuf::from(crate::config::DEFAULT_ADMIN_SOCKET), |c| c.admin.socket.clone())
}
