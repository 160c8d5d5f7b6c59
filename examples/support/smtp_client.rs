//! A minimal SMTP client that follows a plan — EHLO, STARTTLS when the
//! plan asks for it, the crate's rustls verifier, the engine's assessment,
//! then the message or QUIT. The tests and the demo use it through
//! `support::smtp`; the program's checker (`check --connect`) includes it
//! by path.
#![allow(dead_code)] // each user takes what it needs

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use smtp_tls_policy::engine::{Attempt, Delivery, HostPlan, HostResult, Plan, TlsRequirement, assess};
use smtp_tls_policy::verify::{Roots, TlsSetup};

/// One line without its CRLF, read a byte at a time so that nothing sent
/// after a STARTTLS reply is ever taken as plain text.
pub fn read_line(stream: &mut impl Read) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
        if line.len() > 4096 {
            return None;
        }
    }
    line.truncate(line.len() - 2);
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// A reply: its code and its lines.
pub fn read_reply(stream: &mut impl Read) -> Option<(u16, Vec<String>)> {
    let mut lines = Vec::new();
    loop {
        let line = read_line(stream)?;
        let code = line.get(..3)?.parse().ok()?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.get(4..).unwrap_or_default().to_owned());
        if last {
            return Some((code, lines));
        }
    }
}

pub fn command(stream: &mut (impl Read + Write), line: &str) -> Option<(u16, Vec<String>)> {
    stream.write_all(format!("{line}\r\n").as_bytes()).ok()?;
    read_reply(stream)
}

/// What happened on one host: the attempt, the engine's assessment, and
/// whether the message went.
#[derive(Debug)]
pub struct HostDelivery {
    pub attempt: Attempt,
    pub result: HostResult,
    pub sent: bool,
}

/// An SMTP session after EHLO (and STARTTLS, when the plan wanted TLS).
pub enum Session {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Session {
    /// EHLO again after STARTTLS, the message, QUIT.
    pub fn send(mut self, message: &str) -> bool {
        let sent = match &mut self {
            Session::Plain(tcp) => send(tcp, message),
            Session::Tls(tls) => matches!(command(tls, "EHLO client.test"), Some((250, _))) && send(tls, message),
        };
        self.quit();
        sent
    }

    /// QUIT without sending.
    pub fn quit(mut self) {
        let _ = match &mut self {
            Session::Plain(tcp) => command(tcp, "QUIT"),
            Session::Tls(tls) => command(tls, "QUIT"),
        };
    }
}

/// The MTA's IO for one host, as its plan says: connect, EHLO; STARTTLS
/// when the plan wants TLS and the server offers it; the handshake with the
/// plan's verifier. The session is there when an SMTP session is left to
/// send on (plain text, or TLS after a completed handshake).
pub fn try_host(addr: SocketAddr, host: &HostPlan, roots: Roots) -> (Attempt, Option<Session>) {
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (Attempt::Unreachable, None);
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Some((220, _)) = read_reply(&mut tcp) else { return (Attempt::Unreachable, None) };
    let Some((250, caps)) = command(&mut tcp, "EHLO client.test") else { return (Attempt::Unreachable, None) };
    let offered = caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS"));
    if !(host.requirement.tls != TlsRequirement::Never && offered) {
        return (Attempt::Plaintext { starttls_offered: offered }, Some(Session::Plain(tcp)));
    }
    let failed = |reason: String| (Attempt::HandshakeFailed { reason }, None);
    let Some((220, _)) = command(&mut tcp, "STARTTLS") else { return failed("STARTTLS refused".into()) };
    let setup = match TlsSetup::new(host, roots) {
        Ok(setup) => setup,
        Err(e) => return failed(format!("TLS setup: {e}")),
    };
    let conn = match rustls::ClientConnection::new(setup.config(), setup.server_name()) {
        Ok(conn) => conn,
        Err(e) => return failed(format!("TLS setup: {e}")),
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut handshake = Ok(());
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            handshake = Err(e);
            break;
        }
    }
    let attempt = setup.attempt_io(&tls.conn, handshake.as_ref().map(|_| ()));
    (attempt, handshake.is_ok().then(|| Session::Tls(Box::new(tls))))
}

/// [`try_host`], the engine's assessment, and the message (if any) when
/// the assessment says deliver, else QUIT.
pub fn deliver(addr: SocketAddr, plan: &Plan, host: &HostPlan, roots: Roots, message: Option<&str>) -> HostDelivery {
    let (attempt, session) = try_host(addr, host, roots);
    let result = assess(plan, host, &attempt);
    let sent = match (session, message) {
        (Some(session), Some(m)) if matches!(result, HostResult::Deliver { .. }) => session.send(m),
        (Some(session), _) => {
            session.quit();
            false
        }
        (None, _) => false,
    };
    HostDelivery { attempt, result, sent }
}

fn send(stream: &mut (impl Read + Write), message: &str) -> bool {
    matches!(command(stream, "MAIL FROM:<sender@client.test>"), Some((250, _)))
        && matches!(command(stream, "RCPT TO:<user@recipient.test>"), Some((250, _)))
        && matches!(command(stream, "DATA"), Some((354, _)))
        && matches!(command(stream, &format!("{message}\r\n.")), Some((250, _)))
}

/// Tries the plan's hosts in order until one takes the message or the
/// engine says stop; `addr` finds each host's server.
pub fn deliver_plan(
    plan: &Plan,
    addr: impl Fn(&str) -> Option<SocketAddr>,
    roots: Roots,
    message: &str,
) -> Vec<HostDelivery> {
    deliver_message(plan, addr, roots, message).0
}

/// [`deliver_plan`] with the crate's [`Delivery`], ready to finish.
pub fn deliver_message<'p>(
    plan: &'p Plan,
    addr: impl Fn(&str) -> Option<SocketAddr>,
    roots: Roots,
    message: &str,
) -> (Vec<HostDelivery>, Delivery<'p>) {
    let mut delivery = plan.delivery();
    let mut tried = Vec::new();
    while let Some(host) = delivery.next_host() {
        let attempt = match addr(host.host.as_str()) {
            Some(a) => deliver(a, plan, host, roots.clone(), Some(message)),
            None => {
                let attempt = Attempt::Unreachable;
                HostDelivery { result: assess(plan, host, &attempt), attempt, sent: false }
            }
        };
        delivery.record_result(attempt.result.clone());
        tried.push(attempt);
    }
    (tried, delivery)
}
