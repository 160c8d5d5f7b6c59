//! The configuration file (TOML): what it may say, its defaults, and every
//! error with the line and column it points at.
//!
//! Reading is two steps, both with positions: the text against the schema
//! (unknown keys, wrong types and bad values are refused by the TOML
//! reader, which names the line and column), then what the values mean
//! (a trust anchor file that does not parse, a Redis URL that does not
//! open), reported at the value's own position.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// Where `serve` and the admin commands look without `--config`.
pub const DEFAULT_PATH: &str = "/etc/smtp-tls-policy/config.toml";

/// The admin socket without a `[admin]` table.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/smtp-tls-policy/admin.sock";

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub server: Server,
    /// Map names (`socketmap:…:NAME`) and their options; at least one.
    #[serde(default)]
    pub zones: BTreeMap<String, Spanned<ZoneConfig>>,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub web: Web,
    #[serde(default)]
    pub log: Log,
    pub tlsrpt: Option<Spanned<Tlsrpt>>,
}

/// `[server]`: the socketmap listeners and their limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Server {
    /// `inet:HOST:PORT` or `unix:PATH`; sockets handed over by systemd are
    /// served as well.
    pub listen: Vec<Spanned<Listen>>,
    /// Cache snapshots: restored at start, saved every 10 minutes, at
    /// SIGHUP and at exit.
    pub snapshots: Option<PathBuf>,
    #[serde(deserialize_with = "duration")]
    pub refresh: Duration,
    #[serde(deserialize_with = "duration")]
    pub idle: Duration,
    #[serde(deserialize_with = "duration")]
    pub reply_ttl: Duration,
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            snapshots: None,
            refresh: Duration::from_secs(3600),
            idle: Duration::from_secs(300),
            reply_ttl: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            max_connections: 1000,
        }
    }
}

/// A socketmap listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet(addr) => write!(f, "inet:{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || {
            serde::de::Error::custom(format!(
                "listen {text:?}: expected \"inet:HOST:PORT\" (e.g. inet:127.0.0.1:8461) or \"unix:PATH\""
            ))
        };
        match text.split_once(':') {
            Some(("inet", addr)) => addr.parse().map(Listen::Inet).map_err(|_| bad()),
            Some(("unix", path)) if path.starts_with('/') => Ok(Listen::Unix(PathBuf::from(path))),
            _ => Err(bad()),
        }
    }
}

/// `[zones.NAME]`: one map name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ZoneConfig {
    /// Treat MTA-STS `testing` as `enforce`.
    pub strict_testing: bool,
    /// Postfix ≥ 3.10 TLS-RPT attributes in the replies.
    pub tlsrpt: bool,
    pub dane: Dane,
    pub dnssec: Dnssec,
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// DNS servers (`IP` or `IP:PORT`); none: /etc/resolv.conf.
    #[serde(deserialize_with = "servers")]
    pub dns: Vec<SocketAddr>,
    /// A file of DNSKEY records to validate from instead of the IANA root.
    pub anchor: Option<Spanned<PathBuf>>,
    /// `webpki` (Mozilla's roots, built in), `os`, or a PEM file.
    pub roots: Spanned<String>,
    /// An HTTP proxy for the policy fetch (`http://host:port`).
    pub proxy: Option<String>,
    pub dnssec_broken: DnssecBroken,
    /// The reply for a policy that was announced but could not be had:
    /// `none` (NOTFOUND) or a Postfix level.
    pub sts_unavailable: Spanned<String>,
    /// `redis://…` or `rediss://…`: the cluster's shared policy cache.
    pub store: Option<Spanned<String>>,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            strict_testing: false,
            tlsrpt: false,
            dane: Dane::Opportunistic,
            dnssec: Dnssec::Validate,
            timeout: Duration::from_secs(20),
            dns: Vec::new(),
            anchor: None,
            roots: Spanned::new(0..0, "webpki".into()),
            proxy: None,
            dnssec_broken: DnssecBroken::Refuse,
            sts_unavailable: Spanned::new(0..0, "none".into()),
            store: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dane {
    None,
    Opportunistic,
    Mandatory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dnssec {
    Validate,
    TrustAd,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecBroken {
    Refuse,
    Degrade,
}

/// `[admin]`: the UNIX-domain socket of the admin commands.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Admin {
    /// Created owner-only (0600); an empty string turns it off.
    pub socket: PathBuf,
}

impl Default for Admin {
    fn default() -> Self {
        Self { socket: PathBuf::from(DEFAULT_ADMIN_SOCKET) }
    }
}

/// `[web]`: `/metrics`, the status page and `/check`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Web {
    /// `HOST:PORT`; none: off. A non-loopback address needs
    /// `allow-remote = true`.
    pub listen: Option<Spanned<SocketAddr>>,
    pub allow_remote: bool,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `smtp_tls_policy=debug,info`.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[tlsrpt]`: TLS-RPT for Postfix ≥ 3.10.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tlsrpt {
    /// Where Postfix's libtlsrpt sends its datagrams
    /// (`smtp_tlsrpt_socket_name`).
    pub socket: PathBuf,
    /// A directory (journal and outbox) or `redis://…` shared by a cluster.
    pub store: String,
    /// `organization-name` of the reports.
    pub organization: String,
    /// `contact-info` (a mailto: or https: URI).
    pub contact: String,
    /// The reports' sender address; mails go through /usr/sbin/sendmail.
    pub from: Spanned<String>,
    /// The map whose DNS finds each domain's `_smtp._tls` record (default:
    /// the first by name).
    pub zone: Option<String>,
    /// How often closed days are turned into reports and the outbox tried.
    #[serde(default = "five_minutes", deserialize_with = "duration")]
    pub every: Duration,
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(u64),
    }
    match Raw::deserialize(d)? {
        Raw::Text(t) => smtp_tls_policy::engine::parse_duration(&t).map_err(serde::de::Error::custom),
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
    }
}

fn servers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    list.iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| serde::de::Error::custom(format!("dns server {s:?}: expected IP or IP:PORT")))
        })
        .collect()
}

/// A configuration error: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `built-in`).
    pub file: String,
    /// 1-based line and column, when the error points at a place.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The file's text with what it is called in errors.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            at: None,
            message: format!("cannot read the configuration: {e} (write one with `smtp-tls-policy config init`)"),
        })?;
        Ok(Self { name: path.display().to_string(), text })
    }

    /// An error at byte range `span` of the text (none: the whole file).
    pub fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let at = span.map(|s| {
            let before = &self.text[..s.start.min(self.text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rfind('\n').map_or(before.chars().count(), |nl| before[nl + 1..].chars().count()) + 1;
            (line, column)
        });
        ConfigError { file: self.name.clone(), at, message: message.into() }
    }

    /// Parses and checks what needs no IO; the errors point at their place.
    pub fn parse(&self) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(&self.text).map_err(|e| self.error(e.span(), e.message().trim_end().to_owned()))?;
        if config.zones.is_empty() {
            return Err(self.error(None, "no zone: add a table such as [zones.postfix] (the map name Postfix asks)"));
        }
        if let Some(web) = &config.web.listen
            && !web.get_ref().ip().is_loopback()
            && !config.web.allow_remote
        {
            return Err(self.error(
                Some(web.span()),
                format!(
                    "web listen {} is not a loopback address: the page and /metrics show your cache; set allow-remote = true to serve them there",
                    web.get_ref()
                ),
            ));
        }
        for (name, zone) in &config.zones {
            let unavailable = zone.get_ref().sts_unavailable.get_ref();
            if unavailable != "none" && smtp_tls_policy::postfix::Level::parse(unavailable).is_none() {
                return Err(self.error(
                    Some(zone.get_ref().sts_unavailable.span()),
                    format!(
                        "zones.{name}.sts-unavailable = {unavailable:?}: expected none, may, encrypt, dane, dane-only, verify or secure"
                    ),
                ));
            }
        }
        if let Some(t) = &config.tlsrpt {
            let from = t.get_ref().from.get_ref();
            if from.rsplit_once('@').is_none_or(|(local, domain)| {
                local.is_empty() || smtp_tls_policy::name::DomainName::parse(domain).is_err()
            }) {
                return Err(self.error(
                    Some(t.get_ref().from.span()),
                    format!("tlsrpt.from = {from:?}: expected an address such as tlsrpt@mta.example.net"),
                ));
            }
            if let Some(zone) = &t.get_ref().zone
                && !config.zones.contains_key(zone)
            {
                return Err(self.error(Some(t.span()), format!("tlsrpt.zone = {zone:?}: no such zone")));
            }
        }
        Ok(config)
    }
}

/// The file `config init` prints: every setting with its default, commented.
pub const INIT: &str = r#"# smtp-tls-policy configuration (TOML). `smtp-tls-policy config check`
# validates it; `serve` re-reads it on SIGHUP and keeps the old one when the
# new one has an error.

[server]
# Socketmap listeners for Postfix: smtp_tls_policy_maps =
# socketmap:inet:127.0.0.1:8461:postfix (the last part is a zone below).
# Sockets handed over by systemd (smtp-tls-policy.socket) are served too.
listen = ["inet:127.0.0.1:8461"]
# listen = ["unix:/var/spool/postfix/private/tls-policy"]
# Cache snapshots: restored at start, saved every 10 minutes, on SIGHUP and
# at exit.
snapshots = "/var/lib/smtp-tls-policy"
# Proactive refresh of cached policies (RFC 8461 §10.2).
refresh = "1h"
# Close connections idle this long.
idle = "300s"
# Reuse an OK/NOTFOUND reply for the same request this long (0: never; at
# most 1h).
reply-ttl = "1s"
# A request must arrive, and its reply be read, within this.
request-timeout = "10s"
max-connections = 1000

# One table per map name.
[zones.postfix]
# Treat MTA-STS "testing" as "enforce".
strict-testing = false
# Postfix >= 3.10 TLS-RPT attributes in the replies.
tlsrpt = false
# none | opportunistic | mandatory
dane = "opportunistic"
# validate (in process, from the IANA root or `anchor`) | trust-ad (the
# servers' AD bit; only with servers on loopback) | off
dnssec = "validate"
# A file of DNSKEY records to validate from instead of the IANA root.
# anchor = "/etc/smtp-tls-policy/root.key"
# When the DNS servers cannot validate (they strip DNSSEC): refuse to start,
# or degrade (run with DANE unavailable, logged loudly).
dnssec-broken = "refuse"
# DNS servers (IP or IP:PORT); empty: /etc/resolv.conf.
dns = []
# Policy fetch and DNS timeout (DNS at most 5 s per query).
timeout = "20s"
# Roots for the policy fetch: webpki (built in) | os | a PEM file.
roots = "webpki"
# proxy = "http://proxy.example.net:3128"
# A policy announced but not to be had: none (NOTFOUND: main.cf's level
# applies) or a Postfix level (may, encrypt, dane, dane-only, verify, secure).
sts-unavailable = "none"
# The policy cache shared by the nodes of a cluster.
# store = "redis://127.0.0.1:6379/0"

[admin]
# The admin commands' socket (smtp-tls-policy cache|report|query): created
# owner-only (0600), so only this user and root can use it. "" turns it off.
socket = "/run/smtp-tls-policy/admin.sock"

[web]
# /metrics (Prometheus), the status page (/) and /check?domain=, on loopback.
# listen = "127.0.0.1:8462"
# A non-loopback address shows the cache to that network; it needs:
allow-remote = false

[log]
# text | json
format = "text"
# A tracing filter: info, debug, or e.g. "smtp_tls_policy=debug,info".
level = "info"

# TLS-RPT (RFC 8460) for Postfix >= 3.10 (smtp_tlsrpt_enable = yes,
# smtp_tlsrpt_socket_name = the socket below). Closed UTC days become
# reports for every rua of each domain's _smtp._tls record: HTTPS POSTs,
# and mails through /usr/sbin/sendmail marked TLS-Required: No.
# [tlsrpt]
# socket = "/var/spool/postfix/private/tlsrpt"
# store = "/var/lib/smtp-tls-policy/tlsrpt"   # or redis://… for a cluster
# organization = "Example Mail"
# contact = "mailto:postmaster@example.net"
# from = "tlsrpt@mta.example.net"
# zone = "postfix"   # whose DNS finds _smtp._tls (default: the first by name)
# every = "5m"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source { name: "t.toml".into(), text: text.into() }
    }

    #[test]
    fn the_init_file_parses_to_the_defaults() {
        let config = source(INIT).parse().unwrap();
        let zone = config.zones["postfix"].get_ref();
        assert_eq!(zone.dane, Dane::Opportunistic);
        assert_eq!(config.server.listen[0].get_ref(), &Listen::Inet("127.0.0.1:8461".parse().unwrap()));
        assert_eq!(config.server.refresh, Duration::from_secs(3600));
        assert!(config.tlsrpt.is_none());
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            ("[zones.p]\ndane = \"sometimes\"\n", (2, 8), "unknown variant `sometimes`"),
            ("[zones.p]\ntimeout = \"ten\"\n", (2, 11), "invalid duration"),
            ("[zones.p]\n  colour = 1\n", (2, 3), "unknown field `colour`"),
            ("[server]\nlisten = [\"tcp:1\"]\n[zones.p]\n", (2, 10), "expected \"inet:HOST:PORT\""),
            ("[zones.p]\nsts-unavailable = \"maybe\"\n", (2, 19), "expected none, may"),
            ("[zones.p]\n[web]\nlisten = \"0.0.0.0:80\"\n", (3, 10), "not a loopback address"),
            ("[zones.p]\ndns = [\"example\"]\n", (2, 7), "expected IP or IP:PORT"),
        ];
        for (text, at, message) in cases {
            let e = source(text).parse().unwrap_err();
            assert_eq!(e.at, Some(at), "{text:?}: {e}");
            assert!(e.message.contains(message), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("t.toml:{}:{}: ", at.0, at.1)), "{e}");
        }
        let e = source("[server]\n").parse().unwrap_err();
        assert!(e.to_string().contains("no zone"), "{e}");
    }
}
