//! Destination controls: the per-destination settings of a secure email
//! gateway, their validation, and a plain-text file format.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::discovery::Wants;
use crate::name::DomainName;

/// TLS support for a destination (the gateway's "TLS Support").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsSupport {
    /// Never use TLS.
    No,
    /// TLS when the server offers STARTTLS, else plain text; no
    /// certificate check.
    Preferred,
    /// TLS or no delivery; no certificate check.
    Required,
    /// TLS when offered, with a certificate check whose failure is logged
    /// and reported but does not stop delivery; plain text when not offered.
    PreferredVerify,
    /// TLS and a certificate from a trusted CA that names the recipient
    /// domain (SAN DNS-ID; the CN only without SANs, and then it may also
    /// name the MX host), or no delivery.
    RequiredVerify,
    /// As `RequiredVerify`, but the certificate may name the recipient
    /// domain, the MX host or the SMTP route host: for hosted domains
    /// (Google Workspace, Microsoft 365) whose servers present their own name.
    RequiredVerifyHostedDomains,
}

/// DANE support for a destination (RFC 7672).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DaneSupport {
    /// TLSA records are not used.
    None,
    /// DANE where secure usable TLSA records exist; elsewhere MTA-STS or the
    /// TLS support applies.
    Opportunistic,
    /// Only MX hosts with secure usable TLSA records that the server matches.
    Mandatory,
}

/// MTA-STS support for a destination (RFC 8461).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StsSupport {
    /// MTA-STS policies are not used.
    Off,
    /// MTA-STS policies are applied.
    On,
}

/// A configuration keyword that is not one of those allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {value:?} (expected one of {expected})")]
pub struct UnknownKeyword {
    /// What was written.
    pub value: String,
    /// The keywords allowed, comma-separated.
    pub expected: String,
}

macro_rules! keywords {
    ($ty:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The keyword of the configuration file.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $word),+ }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownKeyword;
            /// Parses the keyword (case-insensitive); the error lists the
            /// keywords allowed.
            fn from_str(s: &str) -> Result<Self, UnknownKeyword> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
                    let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    UnknownKeyword { value: s.to_owned(), expected: all.join(", ") }
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keywords!(TlsSupport {
    No = "no",
    Preferred = "preferred",
    Required = "required",
    PreferredVerify = "preferred-verify",
    RequiredVerify = "required-verify",
    RequiredVerifyHostedDomains = "required-verify-hosted-domains",
});
keywords!(DaneSupport { None = "none", Opportunistic = "opportunistic", Mandatory = "mandatory" });
keywords!(StsSupport { Off = "off", On = "on" });

/// The settings applied to one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Profile {
    /// TLS support (default `Preferred`).
    pub tls: TlsSupport,
    /// DANE support (default `Opportunistic`).
    pub dane: DaneSupport,
    /// MTA-STS support (default `Off`, as on the gateway).
    pub sts: StsSupport,
    /// How long a message may wait before a failure bounces it (default 5
    /// days, as Postfix's `maximal_queue_lifetime`).
    pub queue_lifetime: Duration,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            tls: TlsSupport::Preferred,
            dane: DaneSupport::Opportunistic,
            sts: StsSupport::Off,
            queue_lifetime: Duration::from_secs(5 * 86_400),
        }
    }
}

impl Profile {
    /// A profile with these three settings and the default queue lifetime.
    pub fn new(tls: TlsSupport, dane: DaneSupport, sts: StsSupport) -> Self {
        Self { tls, dane, sts, ..Self::default() }
    }

    /// Sets the queue lifetime.
    pub fn queue_lifetime(mut self, lifetime: Duration) -> Self {
        self.queue_lifetime = lifetime;
        self
    }
}

/// Which destination a profile or route is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// Exactly this domain.
    Exact(DomainName),
    /// Every subdomain of this domain, not the domain itself
    /// (`.example.com`).
    Subdomains(DomainName),
}

impl Destination {
    /// Parses `example.com` or `.example.com`.
    pub fn parse(s: &str) -> Result<Self, crate::ParseError> {
        match s.strip_prefix('.') {
            Some(rest) => DomainName::parse(rest).map(Self::Subdomains),
            None => DomainName::parse(s).map(Self::Exact),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(d) => write!(f, "{d}"),
            Self::Subdomains(d) => write!(f, ".{d}"),
        }
    }
}

/// Engine options beyond the per-destination profiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Treat an MTA-STS `testing` policy as `enforce`.
    pub testing_as_enforce: bool,
    /// RFC 8461 §3.4: for a routed domain, apply the MTA-STS policy of the
    /// route host's domain to the route host, instead of exempting the
    /// route from MTA-STS (the gateway's behaviour, the default).
    pub route_policy_domain: bool,
}

impl Options {
    /// Whether a policy of `mode` is enforced (RFC 8461 §5): `enforce`,
    /// and `testing` under [`testing_as_enforce`](Self::testing_as_enforce).
    pub fn enforces(&self, mode: crate::sts::Mode) -> bool {
        mode == crate::sts::Mode::Enforce || (mode == crate::sts::Mode::Testing && self.testing_as_enforce)
    }

    /// Sets [`testing_as_enforce`](Self::testing_as_enforce).
    pub fn testing_as_enforce(mut self, on: bool) -> Self {
        self.testing_as_enforce = on;
        self
    }

    /// Sets [`route_policy_domain`](Self::route_policy_domain).
    pub fn route_policy_domain(mut self, on: bool) -> Self {
        self.route_policy_domain = on;
        self
    }
}

/// A configuration problem, with the destination it is about and the line
/// of the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The destination (`default` for the default profile), if any.
    pub destination: Option<String>,
    /// The 1-based line of the configuration file, if it came from one.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(d) = &self.destination {
            write!(f, "{d}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found, at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} configuration error(s): {}", .0.len(), join(.0))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

fn join(problems: &[ConfigProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The destination controls: a default profile, profiles for exact domains
/// and for subdomains, SMTP routes, and options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationControls {
    default: Profile,
    profiles: HashMap<Destination, (Profile, Option<usize>)>,
    routes: HashMap<Destination, DomainName>,
    options: Options,
    default_line: Option<usize>,
}

impl DestinationControls {
    /// Controls with this default profile and nothing else.
    pub fn new(default: Profile) -> Self {
        Self { default, ..Self::default() }
    }

    /// Sets the profile of a destination.
    pub fn with_profile(mut self, destination: Destination, profile: Profile) -> Self {
        self.profiles.insert(destination, (profile, None));
        self
    }

    /// Routes a destination to an SMTP route host (a smart host).
    pub fn with_route(mut self, destination: Destination, host: DomainName) -> Self {
        self.routes.insert(destination, host);
        self
    }

    /// Sets the options.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The options.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The default profile.
    pub fn default_profile(&self) -> Profile {
        self.default
    }

    /// The profile that applies to `domain`: its exact profile, else the
    /// profile of its closest `.parent` entry, else the default.
    pub fn profile_for(&self, domain: &DomainName) -> Profile {
        lookup(&self.profiles, domain).map_or(self.default, |(p, _)| *p)
    }

    /// The SMTP route host of `domain`, matched like profiles.
    pub fn route_for(&self, domain: &DomainName) -> Option<&DomainName> {
        lookup(&self.routes, domain)
    }

    /// What discovery must look up for `domain` under these controls: the
    /// MTA-STS policy domain when the profile turns MTA-STS on (the
    /// recipient domain, or a route's host with
    /// [`Options::route_policy_domain`], RFC 8461 §3.4; none for a route
    /// without it), TLSA unless DANE support is `None`, and the route.
    pub fn wants(&self, domain: &DomainName) -> Wants {
        let profile = self.profile_for(domain);
        let route = self.route_for(domain).cloned();
        let sts_domain = match &route {
            Some(host) if self.options.route_policy_domain => Some(host.clone()),
            Some(_) => None,
            None => Some(domain.clone()),
        };
        let sts = if profile.sts == StsSupport::Off { None } else { sts_domain };
        Wants::all(domain).sts(sts).dane(profile.dane != DaneSupport::None).route(route)
    }

    /// Checks the configuration. Errors: MTA-STS or DANE support on with TLS
    /// support `No` (for any destination). Warnings: MTA-STS on for the
    /// default profile, which applies it to every domain without a profile.
    pub fn validate(&self) -> Validation {
        let mut v = Validation::default();
        let mut all: Vec<(String, Profile, Option<usize>)> =
            self.profiles.iter().map(|(d, (p, line))| (d.to_string(), *p, *line)).collect();
        all.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        all.insert(0, ("default".to_owned(), self.default, self.default_line));
        for (name, p, line) in all {
            let problem =
                |message: &str| ConfigProblem { destination: Some(name.clone()), line, message: message.to_owned() };
            if p.tls == TlsSupport::No && p.sts == StsSupport::On {
                v.errors.push(problem(
                    "MTA-STS support is on but TLS support is no; MTA-STS requires TLS: set tls to preferred or stronger, or sts=off",
                ));
            }
            if p.tls == TlsSupport::No && p.dane != DaneSupport::None {
                v.errors.push(problem(
                    "DANE support is on but TLS support is no; DANE requires TLS: set tls to preferred or stronger, or dane=none",
                ));
            }
            if name == "default" && p.sts == StsSupport::On {
                v.warnings.push(problem(
                    "MTA-STS support is on for the default profile: every domain without its own profile gets MTA-STS",
                ));
            }
        }
        v
    }

    /// Parses the plain-text configuration format and validates it; every
    /// problem is returned at once, each with its line. Warnings are kept
    /// in the result ([`Loaded::warnings`]).
    ///
    /// ```text
    /// # comments and blank lines are ignored
    /// default       tls=preferred dane=opportunistic sts=on lifetime=5d
    /// example.com   tls=required-verify dane=mandatory
    /// .example.org  tls=required sts=on        # every subdomain of example.org
    /// route example.net smtp.relay.example     # SMTP route: exempt from DANE and MTA-STS
    /// option testing-as-enforce
    /// option route-policy-domain               # RFC 8461 §3.4 instead of the exemption
    /// ```
    ///
    /// A destination line sets only the keys it names; the others come from
    /// the default profile.
    pub fn parse(text: &str) -> Result<Loaded, ConfigErrors> {
        let mut problems = Vec::new();
        let mut controls = Self::default();
        let mut lines: Vec<(usize, Destination, Settings)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            let mut words = content.split_whitespace();
            let first = words.next().unwrap_or_default();
            let problem = |destination: Option<&str>, message: String| ConfigProblem {
                destination: destination.map(str::to_owned),
                line: Some(line),
                message,
            };
            match first {
                "route" => {
                    let parts: Vec<&str> = words.collect();
                    let [dest, host] = parts[..] else {
                        problems.push(problem(None, "expected \"route <destination> <route host>\"".to_owned()));
                        continue;
                    };
                    match (Destination::parse(dest), DomainName::parse(host)) {
                        (Ok(d), Ok(h)) => {
                            if controls.routes.insert(d, h).is_some() {
                                problems.push(problem(Some(dest), "a second route for this destination".to_owned()));
                            }
                        }
                        (Err(e), _) | (_, Err(e)) => problems.push(problem(Some(dest), e.to_string())),
                    }
                }
                "option" => {
                    for word in words {
                        match word {
                            "testing-as-enforce" => controls.options.testing_as_enforce = true,
                            "route-policy-domain" => controls.options.route_policy_domain = true,
                            other => problems.push(problem(
                                None,
                                format!(
                                    "unknown option {other:?} (expected testing-as-enforce or route-policy-domain)"
                                ),
                            )),
                        }
                    }
                }
                dest => {
                    let destination = if dest == "default" { None } else { Some(dest) };
                    let parsed = match destination.map(Destination::parse) {
                        None => None,
                        Some(Ok(d)) => Some(d),
                        Some(Err(e)) => {
                            problems.push(problem(Some(dest), e.to_string()));
                            continue;
                        }
                    };
                    let mut settings = Vec::new();
                    for word in words {
                        match word.split_once('=') {
                            Some((k, v)) => settings.push((k.to_ascii_lowercase(), v.to_owned())),
                            None => problems.push(problem(Some(dest), format!("expected key=value, found {word:?}"))),
                        }
                    }
                    match parsed {
                        None => {
                            if controls.default_line.is_some() {
                                problems.push(problem(Some("default"), "a second default line".to_owned()));
                            }
                            controls.default_line = Some(line);
                            let mut p = Profile::default();
                            apply(&mut p, &settings, |m| problems.push(problem(Some("default"), m)));
                            controls.default = p;
                        }
                        Some(d) => {
                            if lines.iter().any(|(_, seen, _)| *seen == d) {
                                problems.push(problem(Some(dest), "a second line for this destination".to_owned()));
                            }
                            lines.push((line, d, settings));
                        }
                    }
                }
            }
        }
        // Destination lines inherit from the default profile, wherever it is.
        for (line, d, settings) in lines {
            let mut p = controls.default;
            let name = d.to_string();
            apply(&mut p, &settings, |message| {
                problems.push(ConfigProblem { destination: Some(name.clone()), line: Some(line), message })
            });
            controls.profiles.insert(d, (p, Some(line)));
        }
        let validation = controls.validate();
        problems.extend(validation.errors);
        problems.sort_by_key(|p| p.line);
        if problems.is_empty() {
            Ok(Loaded { controls, warnings: validation.warnings })
        } else {
            Err(ConfigErrors(problems))
        }
    }
}

/// The `key=value` settings of one line.
type Settings = Vec<(String, String)>;

/// Applies `key=value` settings to a profile.
fn apply(p: &mut Profile, settings: &[(String, String)], mut problem: impl FnMut(String)) {
    for (key, value) in settings {
        let result = match key.as_str() {
            "tls" => value.parse().map(|v| p.tls = v).map_err(|e: UnknownKeyword| e.to_string()),
            "dane" => value.parse().map(|v| p.dane = v).map_err(|e: UnknownKeyword| e.to_string()),
            "sts" | "mta-sts" => value.parse().map(|v| p.sts = v).map_err(|e: UnknownKeyword| e.to_string()),
            "lifetime" | "queue-lifetime" => parse_duration(value).map(|v| p.queue_lifetime = v),
            other => Err(format!("unknown key {other:?} (expected tls, dane, sts or lifetime)")),
        };
        if let Err(message) = result {
            problem(format!("{key}: {message}"));
        }
    }
}

/// A duration as configuration files write it: `90s`, `30m`, `12h`, `5d`,
/// `1h 30m` (humantime's units), or plain seconds (`300`). The one parser
/// of the crate and its programs.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| format!("duration {s:?} is too large"));
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e} (expected e.g. 90s, 30m, 12h, 5d)"))
}

/// The closest entry for `domain`: exact, then the nearest `.parent`.
fn lookup<'a, V>(map: &'a HashMap<Destination, V>, domain: &DomainName) -> Option<&'a V> {
    if map.is_empty() {
        return None;
    }
    if let Some(v) = map.get(&Destination::Exact(domain.clone())) {
        return Some(v);
    }
    let mut rest = domain.as_str();
    while let Some((_, parent)) = rest.split_once('.') {
        if let Ok(parent_name) = DomainName::parse(parent)
            && let Some(v) = map.get(&Destination::Subdomains(parent_name))
        {
            return Some(v);
        }
        rest = parent;
    }
    None
}

/// The result of [`DestinationControls::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validation {
    /// Problems that make the configuration unusable.
    pub errors: Vec<ConfigProblem>,
    /// Settings that are allowed but probably not meant.
    pub warnings: Vec<ConfigProblem>,
}

/// A parsed, valid configuration and its warnings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Loaded {
    /// The controls.
    pub controls: DestinationControls,
    /// Warnings to show the operator.
    pub warnings: Vec<ConfigProblem>,
}
