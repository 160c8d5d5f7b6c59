//! A DNS world made of the software that signs and validates the Internet:
//! zones signed at test time by BIND's `dnssec-keygen` and
//! `dnssec-signzone` under a local root, served by `named` on 127.0.0.1 (a
//! free high port), with `unbound` on 127.0.0.1 validating from the local
//! root key (for the trust-AD mode), and a proxy that strips DNSSEC
//! records as broken home routers do.
//!
//! Needs Debian's `bind9`, `bind9-dnsutils` and `unbound` (`.ci/run`
//! installs them). Without them the tests fail when
//! `SMTP_TLS_POLICY_REQUIRE_BIND=1` (as in CI) and are skipped otherwise.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

/// The TLSA record every DANE host of the world publishes.
pub const TLSA: &str = "3 1 1 2bb9e4c1a6e2b5d2f0e1b7a1c9d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6";

/// How a zone is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    Nsec,
    /// NSEC3, SHA-1, 0 iterations, no salt (RFC 9276).
    Nsec3,
    /// NSEC3 with opt-out.
    Nsec3OptOut,
    /// A legacy NSEC3 zone: salt `aabbccdd`, 10 iterations.
    Nsec3Salted,
}

/// One zone of the world.
struct ZoneSpec {
    name: &'static str,
    /// `(algorithm, bits)` of each KSK and ZSK pair (several: an algorithm rollover).
    algorithms: &'static [&'static str],
    /// Extra ZSKs of the first algorithm (a double-signature rollover).
    extra_zsks: usize,
    denial: Denial,
    /// Only the DS records of this algorithm number go to the parent (empty: all).
    ds_algorithm: Option<u8>,
    /// `dnssec-signzone -s/-e` validity.
    validity: Option<(&'static str, &'static str)>,
    /// The parent gets a DS that matches none of the zone's keys.
    wrong_ds: bool,
    /// Text replaced in the signed zone file after signing (RDATA changed).
    tamper: Option<(&'static str, &'static str)>,
    /// Not signed at all (an insecure delegation).
    unsigned: bool,
}

const fn zone(name: &'static str, algorithms: &'static [&'static str], denial: Denial) -> ZoneSpec {
    ZoneSpec {
        name,
        algorithms,
        extra_zsks: 0,
        denial,
        ds_algorithm: None,
        validity: None,
        wrong_ds: false,
        tamper: None,
        unsigned: false,
    }
}

const P256: &[&str] = &["ECDSAP256SHA256"];

fn specs() -> Vec<ZoneSpec> {
    let mut specs = vec![
        zone("nsec", P256, Denial::Nsec),
        zone("nsec3", P256, Denial::Nsec3),
        zone("optout", P256, Denial::Nsec3OptOut),
        zone("salted", P256, Denial::Nsec3Salted),
        zone("alg8", &["RSASHA256"], Denial::Nsec3),
        zone("alg14", &["ECDSAP384SHA384"], Denial::Nsec),
        zone("alg15", &["ED25519"], Denial::Nsec),
        zone("alg16", &["ED448"], Denial::Nsec),
        ZoneSpec { extra_zsks: 1, ..zone("rollzsk", P256, Denial::Nsec) },
        ZoneSpec { extra_zsks: 1, ..zone("rollzsk3", P256, Denial::Nsec3) },
        ZoneSpec { ds_algorithm: Some(8), ..zone("rollalg", &["RSASHA256", "ECDSAP256SHA256"], Denial::Nsec) },
        ZoneSpec { wrong_ds: true, ..zone("broken", P256, Denial::Nsec) },
        ZoneSpec { validity: Some(("20200101000000", "20200201000000")), ..zone("expired", P256, Denial::Nsec) },
        ZoneSpec { validity: Some(("20400101000000", "20400201000000")), ..zone("future", P256, Denial::Nsec) },
        ZoneSpec { tamper: Some(("192.0.2.1", "192.0.2.99")), ..zone("tampered", P256, Denial::Nsec) },
        ZoneSpec { unsigned: true, ..zone("plain", P256, Denial::Nsec) },
    ];
    if BENCH_DOMAINS.load(Ordering::Relaxed) > 0 {
        specs.push(zone("bench", P256, Denial::Nsec3));
    }
    specs
}

/// How many bench domains `d<N>.bench` the zone `bench.` gets (NSEC3, 0
/// iterations, ECDSA P-256: the Internet's most common shape); 0 (the
/// tests): no such zone. Set before the first [`signed`] or [`BindWorld::start`].
pub static BENCH_DOMAINS: AtomicUsize = AtomicUsize::new(0);

/// The records of the bench zone: one MX host without TLSA records, and
/// for each domain an MX and an MTA-STS TXT record.
fn bench_records(domains: usize) -> String {
    let mut text = String::from("mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA below\"\n");
    for n in 0..domains {
        writeln!(text, "d{n} MX 10 mx.common\n_mta-sts.d{n} TXT \"v=STSv1; id=1;\"\nmta-sts.d{n} A 127.0.0.1").unwrap();
    }
    text
}

/// The records of every signed zone (relative names; `$ORIGIN` is the zone).
fn common_records(zone: &str) -> String {
    let mut big = String::from("big TXT");
    for i in 0..12 {
        write!(big, " \"{i:02}-{}\"", "x".repeat(120)).unwrap();
    }
    format!(
        r#"@ MX 10 mx
mx A 127.0.0.1
mx AAAA ::1
_25._tcp.mx TLSA {TLSA}
notlsa A 127.0.0.1
onlya A 127.0.0.1
_mta-sts TXT "v=STSv1; id={zone};"
alias CNAME mx
alias2 CNAME alias
*.wild MX 10 mx
*.hosts A 127.0.0.3
wmx A 127.0.0.1
*._tcp.wmx TLSA {TLSA}
cross CNAME mx.nsec3.
toplain CNAME mx.plain.
dangling CNAME nothere.nsec3.
a.b.c.deep A 127.0.0.1
{big}
"#
    )
}

fn zone_text(spec: &ZoneSpec) -> String {
    let mut text = format!(
        "$ORIGIN {0}.\n$TTL 300\n@ SOA ns.{0}. hostmaster.{0}. 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n",
        spec.name
    );
    if spec.name == "bench" {
        text.push_str(&bench_records(BENCH_DOMAINS.load(Ordering::Relaxed)));
        return text;
    }
    text.push_str(&common_records(spec.name));
    if spec.name == "tampered" {
        text.push_str("mx4 A 192.0.2.1\nmx4 AAAA ::1\n_25._tcp.mx4 TLSA 3 1 1 aa\nonly4 A 192.0.2.1\n");
    }
    if spec.name == "optout" {
        text.push_str("sub NS ns.sub\nns.sub A 127.0.0.1\n");
    }
    text
}

/// The signed zone files and the root's key, made once per test process.
pub struct Signed {
    pub dir: PathBuf,
    pub root_anchor: String,
    zones: Vec<String>,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn keygen(dir: &Path, zone: &str, algorithm: &str, ksk: bool) -> String {
    let mut cmd = Command::new("dnssec-keygen");
    // Published and active since 2019, so that zones signed "in the past" (expired signatures) can be.
    cmd.current_dir(dir).args(["-q", "-K", "keys", "-P", "20190101000000", "-A", "20190101000000", "-a", algorithm]);
    if algorithm.starts_with("RSA") {
        cmd.args(["-b", "2048"]);
    }
    if ksk {
        cmd.args(["-f", "KSK"]);
    }
    cmd.args(["-n", "ZONE", zone]);
    run(&mut cmd)
}

fn sign(dir: &Path, origin: &str, file: &str, keys: &[String], denial: Denial, validity: Option<(&str, &str)>) {
    let mut cmd = Command::new("dnssec-signzone");
    cmd.current_dir(dir).args(["-q", "-K", "keys", "-d", "ds", "-o", origin, "-f", &format!("{file}.signed")]);
    match denial {
        Denial::Nsec => {}
        Denial::Nsec3 => {
            cmd.args(["-3", "-", "-H", "0"]);
        }
        Denial::Nsec3OptOut => {
            cmd.args(["-3", "-", "-H", "0", "-A"]);
        }
        Denial::Nsec3Salted => {
            cmd.args(["-3", "aabbccdd", "-H", "10"]);
        }
    }
    if let Some((start, end)) = validity {
        // -P: the post-signing check would refuse signatures invalid today.
        cmd.args(["-P", "-s", start, "-e", end]);
    } else {
        cmd.args(["-s", "-3600", "-e", "+2592000"]);
    }
    cmd.arg(file);
    cmd.args(keys);
    run(&mut cmd);
}

fn includes(keys: &[String]) -> String {
    keys.iter().map(|k| format!("$INCLUDE keys/{k}.key\n")).collect()
}

fn build() -> Signed {
    let dir = std::env::temp_dir().join(format!("stp-bind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["keys", "ds"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut root = String::from(
        "$ORIGIN .\n$TTL 300\n. SOA ns.root. hostmaster.root. 1 3600 600 86400 300\n. NS ns.root.\nns.root. A 127.0.0.1\n",
    );
    let mut zones = Vec::new();
    for spec in specs() {
        let file = format!("{}.zone", spec.name);
        let mut text = zone_text(&spec);
        writeln!(root, "{0}. NS ns.{0}.\nns.{0}. A 127.0.0.1", spec.name).unwrap();
        zones.push(spec.name.to_owned());
        if spec.name == "optout" {
            // The unsigned child below the opt-out delegation.
            let sub = "$ORIGIN sub.optout.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n\
                       mx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 aa\n";
            std::fs::write(dir.join("sub.optout.zone.signed"), sub).unwrap();
            zones.push("sub.optout".into());
        }
        if spec.unsigned {
            std::fs::write(dir.join(format!("{file}.signed")), text).unwrap();
            continue;
        }
        let mut keys = Vec::new();
        for alg in spec.algorithms {
            keys.push(keygen(&dir, spec.name, alg, true));
            keys.push(keygen(&dir, spec.name, alg, false));
        }
        for _ in 0..spec.extra_zsks {
            keys.push(keygen(&dir, spec.name, spec.algorithms[0], false));
        }
        text.push_str(&includes(&keys));
        std::fs::write(dir.join(&file), text).unwrap();
        sign(&dir, &format!("{}.", spec.name), &file, &keys, spec.denial, spec.validity);
        if let Some((from, to)) = spec.tamper {
            let path = dir.join(format!("{file}.signed"));
            let signed = std::fs::read_to_string(&path).unwrap();
            assert!(signed.contains(from), "the tampered zone has {from}");
            std::fs::write(&path, signed.replace(from, to)).unwrap();
        }
        let dsset = std::fs::read_to_string(dir.join("ds").join(format!("dsset-{}.", spec.name))).unwrap();
        if spec.wrong_ds {
            let stray = keygen(&dir, spec.name, "ECDSAP256SHA256", true);
            let ds = run(Command::new("dnssec-dsfromkey").current_dir(&dir).args(["-2", &format!("keys/{stray}.key")]));
            writeln!(root, "{ds}").unwrap();
            continue;
        }
        for line in dsset.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let alg = fields
                .iter()
                .position(|f| *f == "DS")
                .and_then(|i| fields.get(i + 2))
                .and_then(|a| a.parse::<u8>().ok());
            if spec.ds_algorithm.is_none() || alg == spec.ds_algorithm {
                writeln!(root, "{line}").unwrap();
            }
        }
    }
    let ksk = keygen(&dir, ".", "ECDSAP256SHA256", true);
    let zsk = keygen(&dir, ".", "ECDSAP256SHA256", false);
    root.push_str(&includes(&[ksk.clone(), zsk.clone()]));
    std::fs::write(dir.join("root.zone"), root).unwrap();
    sign(&dir, ".", "root.zone", &[ksk.clone(), zsk], Denial::Nsec, None);
    let key = std::fs::read_to_string(dir.join("keys").join(format!("{ksk}.key"))).unwrap();
    let root_anchor = key.lines().find(|l| !l.starts_with(';') && l.contains("DNSKEY")).unwrap().to_owned();
    Signed { dir, root_anchor, zones }
}

/// The world's signed zones, made once per test process (key generation
/// and signing take a few seconds).
pub fn signed() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(build)
}

/// Whether the BIND and unbound programs are here; panics when they must be.
pub fn available() -> bool {
    let found = ["named", "dnssec-signzone", "dnssec-keygen", "unbound"].iter().all(|p| {
        Command::new(p).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
            || Command::new(p).arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    });
    if !found && super::required("SMTP_TLS_POLICY_REQUIRE_BIND") {
        panic!(
            "named, dnssec-signzone, dnssec-keygen or unbound is missing (apt-get install bind9 bind9-dnsutils unbound)"
        );
    }
    if !found {
        eprintln!("skipped: BIND 9 and unbound are not installed (set SMTP_TLS_POLICY_REQUIRE_BIND=1 to fail instead)");
    }
    found
}

fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `named` serving every zone, `unbound` validating through it, a stripping proxy.
pub struct BindWorld {
    /// `named`, authoritative for the root and every zone.
    pub named: SocketAddr,
    /// `unbound`, validating from the root key.
    pub unbound: SocketAddr,
    /// A proxy to `named` that strips RRSIG, NSEC and NSEC3 records.
    pub stripping: SocketAddr,
    /// The root's KSK in zone-file form.
    pub root_anchor: String,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for BindWorld {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl BindWorld {
    pub fn start() -> Self {
        Self::start_on(([127, 0, 0, 1], free_port()).into())
    }

    /// [`start`](Self::start) with `named` on this address (a loopback
    /// address; port 53 for a stub resolver that reads /etc/resolv.conf).
    pub fn start_on(named_addr: SocketAddr) -> Self {
        let signed = signed();
        let run_dir = signed.dir.join(format!("run-{}", free_port()));
        std::fs::create_dir_all(&run_dir).unwrap();
        let (named_ip, named_port, unbound_port) = (named_addr.ip(), named_addr.port(), free_port());
        let mut conf = format!(
            "options {{\n directory \"{}\";\n listen-on port {named_port} {{ {named_ip}; }};\n listen-on-v6 {{ none; }};\n \
             recursion no;\n dnssec-validation no;\n notify no;\n pid-file \"{}/named.pid\";\n \
             session-keyfile \"{}/session.key\";\n}};\ncontrols {{ }};\nzone \".\" {{ type primary; file \"root.zone.signed\"; }};\n",
            signed.dir.display(),
            run_dir.display(),
            run_dir.display()
        );
        for z in &signed.zones {
            writeln!(conf, "zone \"{z}.\" {{ type primary; file \"{z}.zone.signed\"; }};").unwrap();
        }
        std::fs::write(run_dir.join("named.conf"), conf).unwrap();
        let named = Command::new("named")
            .args(["-g", "-c"])
            .arg(run_dir.join("named.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(run_dir.join("named.log")).unwrap())
            .spawn()
            .expect("named starts");
        let mut children = vec![named];
        wait_for(named_addr, &run_dir.join("named.log"));
        let mut unbound_conf = format!(
            "server:\n interface: 127.0.0.1\n port: {unbound_port}\n do-ip6: no\n do-not-query-localhost: no\n \
             username: \"\"\n chroot: \"\"\n directory: \"{0}\"\n pidfile: \"{0}/unbound.pid\"\n use-syslog: no\n \
             logfile: \"{0}/unbound.log\"\n verbosity: 1\n module-config: \"validator iterator\"\n \
             trust-anchor: \"{1}\"\n access-control: 127.0.0.0/8 allow\n qname-minimisation: no\n \
             aggressive-nsec: no\n harden-dnssec-stripped: yes\n val-log-level: 2\n max-udp-size: 1232\n \
             edns-buffer-size: 1232\n so-reuseport: no\n num-threads: 1\n",
            run_dir.display(),
            signed.root_anchor.replace('"', "\\\"")
        );
        for z in std::iter::once(".").chain(signed.zones.iter().map(String::as_str)) {
            let name = if z == "." { ".".to_owned() } else { format!("{z}.") };
            writeln!(unbound_conf, "stub-zone:\n name: \"{name}\"\n stub-addr: {named_ip}@{named_port}").unwrap();
        }
        std::fs::write(run_dir.join("unbound.conf"), unbound_conf).unwrap();
        let unbound = Command::new("unbound")
            .args(["-d", "-c"])
            .arg(run_dir.join("unbound.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(run_dir.join("unbound.err")).unwrap())
            .spawn()
            .expect("unbound starts");
        children.push(unbound);
        let unbound_addr: SocketAddr = ([127, 0, 0, 1], unbound_port).into();
        wait_for(unbound_addr, &run_dir.join("unbound.err"));
        let stripping = strip_proxy(named_addr);
        Self {
            named: named_addr,
            unbound: unbound_addr,
            stripping,
            root_anchor: signed.root_anchor.clone(),
            children,
            dir: run_dir,
        }
    }
}

/// Waits until the server answers a query for the root's SOA.
fn wait_for(server: SocketAddr, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut q = Message::query();
    q.add_query(hickory_proto::op::Query::query(hickory_proto::rr::Name::root(), RecordType::SOA));
    q.metadata.recursion_desired = true;
    let bytes = q.to_vec().unwrap();
    while Instant::now() < deadline {
        let _ = socket.send_to(&bytes, server);
        let mut buf = [0u8; 4096];
        if socket.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("{server} did not answer within 15 s: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// A UDP forwarder to `upstream` that removes RRSIG, NSEC and NSEC3 records
/// from every answer and clears AD: a path that breaks DNSSEC.
fn strip_proxy(upstream: SocketAddr) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 65535];
        loop {
            let Ok((n, client)) = socket.recv_from(&mut buf) else { return };
            let query = buf[..n].to_vec();
            let up = UdpSocket::bind("127.0.0.1:0").unwrap();
            up.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = up.send_to(&query, upstream);
            let mut answer = [0u8; 65535];
            let Ok((m, _)) = up.recv_from(&mut answer) else { continue };
            let Ok(mut message) = Message::from_vec(&answer[..m]) else { continue };
            let dnssec = |r: &hickory_proto::rr::Record| {
                !matches!(r.record_type(), RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3)
            };
            message.answers.retain(dnssec);
            message.authorities.retain(dnssec);
            message.additionals.retain(dnssec);
            message.metadata.authentic_data = false;
            message.metadata.truncation = false;
            if let Ok(bytes) = message.to_vec() {
                let _ = socket.send_to(&bytes, client);
            }
        }
    });
    addr
}
