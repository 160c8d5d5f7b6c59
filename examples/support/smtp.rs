//! The local SMTP world of the tests and the demo: STARTTLS servers on
//! 127.0.0.1 with chosen certificates (or none, or a broken handshake), and
//! the minimal SMTP client of `smtp_client.rs`.
#![allow(dead_code)] // each user takes what it needs

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// What a server does about STARTTLS.
#[derive(Clone)]
pub enum Starttls {
    /// Not offered.
    No,
    /// Offered, with this chain and the key that signs the handshake.
    Cert(Vec<CertificateDer<'static>>, Arc<dyn rustls::sign::SigningKey>),
    /// Offered, then garbage instead of a TLS handshake.
    Broken,
}

impl Starttls {
    /// Offered with `chain` and its own key.
    pub fn with(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self::Cert(chain, signing_key(key))
    }
}

pub fn signing_key(key: PrivateKeyDer<'static>) -> Arc<dyn rustls::sign::SigningKey> {
    rustls::crypto::ring::default_provider().key_provider.load_private_key(key).unwrap()
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A running SMTP server.
#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    /// Messages received (after DATA).
    pub received: Arc<Mutex<Vec<String>>>,
    /// SNI names the TLS handshakes carried.
    pub sni: Arc<Mutex<Vec<String>>>,
}

/// Starts an SMTP server on 127.0.0.1 greeting as `name`.
pub fn smtp_server(name: &str, starttls: Starttls) -> SmtpServer {
    smtp_server_on(name, starttls, "127.0.0.1:0".parse().unwrap())
}

/// [`smtp_server`] on a chosen address (e.g. port 25 of 127.0.0.77).
pub fn smtp_server_on(name: &str, starttls: Starttls, addr: SocketAddr) -> SmtpServer {
    let listener = TcpListener::bind(addr).unwrap();
    let server = SmtpServer { addr: listener.local_addr().unwrap(), received: Arc::default(), sni: Arc::default() };
    let config = match &starttls {
        Starttls::Cert(chain, key) => {
            let certified = Arc::new(CertifiedKey::new(chain.clone(), Arc::clone(key)));
            Some(Arc::new(super::https::server_config().with_cert_resolver(Arc::new(Fixed(certified)))))
        }
        _ => None,
    };
    let (name, s) = (name.to_owned(), server.clone());
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let (name, starttls, config, s) = (name.clone(), starttls.clone(), config.clone(), s.clone());
            thread::spawn(move || serve(tcp, &name, &starttls, config, &s));
        }
    });
    server
}

fn serve(
    mut tcp: TcpStream,
    name: &str,
    starttls: &Starttls,
    config: Option<Arc<rustls::ServerConfig>>,
    s: &SmtpServer,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(tcp, "220 {name} ESMTP test\r\n");
    let offer = !matches!(starttls, Starttls::No);
    match session(&mut tcp, name, offer, s) {
        Some(()) => {}
        None => return,
    }
    // STARTTLS was accepted.
    match (starttls, config) {
        (Starttls::Broken, _) => {
            let _ = tcp.write_all(b"this is not a TLS ServerHello\r\n");
        }
        (_, Some(config)) => {
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            while tls.conn.is_handshaking() {
                if tls.conn.complete_io(&mut tls.sock).is_err() {
                    return;
                }
            }
            if let Some(sni) = tls.conn.server_name() {
                s.sni.lock().unwrap().push(sni.to_owned());
            }
            let _ = session(&mut tls, name, false, s);
        }
        _ => {}
    }
}

/// Serves commands until QUIT (`None`) or an accepted STARTTLS (`Some`).
fn session(stream: &mut (impl Read + Write), name: &str, offer_starttls: bool, s: &SmtpServer) -> Option<()> {
    loop {
        let line = read_line(stream)?;
        let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" if offer_starttls => format!("250-{name}\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
            "EHLO" => format!("250-{name}\r\n250 PIPELINING\r\n"),
            "HELO" => format!("250 {name}\r\n"),
            "STARTTLS" if offer_starttls => {
                stream.write_all(b"220 2.0.0 Ready to start TLS\r\n").ok()?;
                return Some(());
            }
            "MAIL" | "RCPT" | "RSET" | "NOOP" => "250 2.0.0 OK\r\n".into(),
            "DATA" => {
                stream.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").ok()?;
                let mut message = String::new();
                loop {
                    let l = read_line(stream)?;
                    if l == "." {
                        break;
                    }
                    message.push_str(&l);
                    message.push('\n');
                }
                s.received.lock().unwrap().push(message);
                "250 2.0.0 Queued\r\n".into()
            }
            "QUIT" => {
                let _ = stream.write_all(b"221 2.0.0 Bye\r\n");
                return None;
            }
            _ => "502 5.5.2 Command not recognized\r\n".into(),
        };
        stream.write_all(reply.as_bytes()).ok()?;
    }
}

// The client half (also the checker's `--connect` probe in cli/).
#[path = "smtp_client.rs"]
mod client;
pub use client::*;
