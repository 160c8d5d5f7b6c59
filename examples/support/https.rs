//! The local HTTPS world of the tests and the demo: a CA made by rcgen,
//! policy hosts served by rustls on 127.0.0.1 with chosen certificates and
//! chosen (or hostile) replies, and an HTTP CONNECT proxy.
#![allow(dead_code)] // each user takes what it needs

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n";

/// A CA, and a server certificate it issues for `name`.
pub struct Pki {
    pub ca_params: CertificateParams,
    pub ca_key: KeyPair,
    pub ca_der: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "Test Web CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let der = p.self_signed(&key).unwrap().der().clone();
        Self { ca_params: p, ca_key: key, ca_der: der }
    }

    pub fn server(&self, name: &str, expired: bool) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        self.issue(&[name], expired)
    }

    /// A valid certificate naming every one of `names` (DNS SANs).
    pub fn server_names(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        self.issue(names, false)
    }

    fn issue(&self, names: &[&str], expired: bool) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut p = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        if expired {
            p.not_before = date_time_ymd(2015, 1, 1);
            p.not_after = date_time_ymd(2016, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &Issuer::from_params(&self.ca_params, &self.ca_key)).unwrap();
        (vec![cert.der().clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
    }
}

pub fn self_signed(name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
    (vec![cert.der().clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
}

/// What the test server answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// The head, then one body byte every `gap`, `count` times.
    Drip { head: Vec<u8>, gap: Duration, count: usize },
}

pub fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    Reply::Bytes(out)
}

pub fn ok(body: &[u8]) -> Reply {
    let len = body.len().to_string();
    response("200 OK", &[("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", &len)], body)
}

/// A rustls server configuration (ring, TLS 1.2 and 1.3, no client
/// authentication) waiting for its certificate.
pub fn server_config() -> rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert> {
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
}

/// An HTTPS server on 127.0.0.1 answering every request with `reply`; the
/// requests it saw are kept.
pub fn serve(
    cert: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
    reply: Reply,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let config = Arc::new(server_config().with_single_cert(cert.0, cert.1).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    thread::spawn(move || {
        for tcp in listener.incoming().take(8) {
            let Ok(tcp) = tcp else { continue };
            let (config, reply, log) = (Arc::clone(&config), reply.clone(), Arc::clone(&log));
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let Some(request) = read_head(&mut tls) else { return };
                log.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
                write_reply(&mut tls, reply);
            });
        }
    });
    (addr, seen)
}

/// The request head, byte by byte (no body is ever sent to a policy host).
fn read_head(tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => return None,
        }
    }
    Some(request)
}

fn write_reply(tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>, reply: Reply) {
    match reply {
        Reply::Bytes(bytes) => {
            let _ = tls.write_all(&bytes);
        }
        Reply::Drip { head, gap, count } => {
            let _ = tls.write_all(&head);
            for _ in 0..count {
                let _ = tls.flush();
                thread::sleep(gap);
                if tls.write_all(b"\n").is_err() {
                    return;
                }
            }
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// An HTTP CONNECT proxy on 127.0.0.1 that tunnels to `target`, or refuses.
pub fn proxy(target: SocketAddr, refuse: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for client in listener.incoming().take(4) {
            let Ok(mut client) = client else { continue };
            thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && !line.ends_with("\r\n\r\n") {}
                if refuse || !line.starts_with("CONNECT ") {
                    let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                let Ok(upstream) = TcpStream::connect(target) else { return };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
                let mut down = client.try_clone().unwrap();
                let t = thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut up_write);
                });
                let _ = std::io::copy(&mut up_read, &mut down);
                let _ = t.join();
            });
        }
    });
    addr
}

/// The certificate a [`PolicyServer`] host presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// Issued by the test CA for the host's name.
    Valid,
    /// Issued by the test CA for the name, expired in 2016.
    Expired,
    /// Issued by the test CA for another name.
    WrongName,
    /// Self-signed for the name.
    Untrusted,
}

type Hosts = Arc<Mutex<std::collections::HashMap<String, (Reply, CertKind)>>>;

/// Policy hosts for any number of domains behind one address: the
/// certificate is chosen by SNI (issued when first asked), the reply by
/// host; unknown hosts get a 404. Requests are counted per host.
#[derive(Clone)]
pub struct PolicyServer {
    pub addr: SocketAddr,
    certs: Arc<BySni>,
    hosts: Hosts,
    counts: Arc<Mutex<std::collections::HashMap<String, usize>>>,
}

#[derive(Debug)]
struct BySni {
    pki: Arc<Pki>,
    hosts: Hosts,
    issued: Mutex<std::collections::HashMap<(String, CertKind), Arc<rustls::sign::CertifiedKey>>>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki")
    }
}

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.issue(hello.server_name()?)
    }
}

impl BySni {
    /// The certificate for `name` (issued when first asked).
    fn issue(&self, name: &str) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let name = name.to_owned();
        let kind = self.hosts.lock().unwrap().get(&name).map_or(CertKind::Valid, |(_, k)| *k);
        let mut issued = self.issued.lock().unwrap();
        if let Some(key) = issued.get(&(name.clone(), kind)) {
            return Some(Arc::clone(key));
        }
        let (chain, key) = match kind {
            CertKind::Valid => self.pki.server(&name, false),
            CertKind::Expired => self.pki.server(&name, true),
            CertKind::WrongName => self.pki.server("wrong-name.invalid", false),
            CertKind::Untrusted => self_signed(&name),
        };
        let signer = rustls::crypto::ring::default_provider().key_provider.load_private_key(key).ok()?;
        let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signer));
        issued.insert((name, kind), Arc::clone(&certified));
        Some(certified)
    }
}

impl PolicyServer {
    pub fn start(pki: Arc<Pki>) -> Self {
        Self::start_on(pki, "127.0.0.1:0".parse().unwrap())
    }

    /// [`start`](Self::start) on a chosen address (e.g. port 443).
    pub fn start_on(pki: Arc<Pki>, addr: SocketAddr) -> Self {
        let hosts: Hosts = Arc::default();
        let resolver = Arc::new(BySni { pki, hosts: Arc::clone(&hosts), issued: Mutex::default() });
        let config = Arc::new(
            server_config().with_cert_resolver(Arc::clone(&resolver) as Arc<dyn rustls::server::ResolvesServerCert>),
        );
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let counts: Arc<Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
        let (h, c) = (Arc::clone(&hosts), Arc::clone(&counts));
        thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let (config, hosts, counts) = (Arc::clone(&config), Arc::clone(&h), Arc::clone(&c));
                thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    if read_head(&mut tls).is_none() {
                        return;
                    }
                    let host = tls.conn.server_name().unwrap_or_default().to_owned();
                    *counts.lock().unwrap().entry(host.clone()).or_default() += 1;
                    let reply = hosts.lock().unwrap().get(&host).map(|(r, _)| r.clone());
                    write_reply(
                        &mut tls,
                        reply.unwrap_or_else(|| response("404 Not Found", &[("Content-Length", "0")], b"")),
                    );
                });
            }
        });
        Self { addr, certs: resolver, hosts, counts }
    }

    /// Issues `host`'s certificate now, outside any measurement.
    pub fn prepare(&self, host: &str) {
        let _ = self.certs.issue(host);
    }

    /// Serves `reply` for `host` with a valid certificate.
    pub fn set(&self, host: &str, reply: Reply) {
        self.set_with(host, reply, CertKind::Valid);
    }

    /// Serves `reply` for `host` with the given certificate.
    pub fn set_with(&self, host: &str, reply: Reply, cert: CertKind) {
        self.hosts.lock().unwrap().insert(host.to_owned(), (reply, cert));
    }

    /// How many requests `host` got.
    pub fn requests(&self, host: &str) -> usize {
        self.counts.lock().unwrap().get(host).copied().unwrap_or(0)
    }
}

/// PEM of one certificate (RFC 7468).
pub fn pem(der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                text.push('=');
            }
        }
    }
    let lines: Vec<&str> = text.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).unwrap()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// One request a [`ReportReceiver`] saw: the head and the body.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

/// An HTTPS server on 127.0.0.1 that takes TLS-RPT POSTs (RFC 8460 §5.4):
/// it reads each request with its `Content-Length` body, keeps it, and
/// answers with the next of `statuses` (the last one repeats).
pub struct ReportReceiver {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Received>>>,
}

impl ReportReceiver {
    pub fn start(cert: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), statuses: &[&str]) -> Self {
        let config = Arc::new(server_config().with_single_cert(cert.0, cert.1).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
        thread::spawn(move || {
            for (n, tcp) in listener.incoming().enumerate() {
                let Ok(tcp) = tcp else { continue };
                let status = statuses[n.min(statuses.len() - 1)].clone();
                let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let Some(head) = read_head(&mut tls) else { continue };
                let head = String::from_utf8_lossy(&head).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if tls.read_exact(&mut body).is_err() {
                    continue;
                }
                log.lock().unwrap().push(Received { head, body });
                write_reply(&mut tls, response(&status, &[("Content-Length", "0")], b""));
            }
        });
        Self { addr, seen }
    }

    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}
