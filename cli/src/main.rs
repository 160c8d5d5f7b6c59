//! `smtp-tls-policy`: the operator's program of the smtp-tls-policy crate —
//! a Postfix socketmap policy server (MTA-STS, DANE), TLS-RPT collector
//! and sender, admin commands, Prometheus metrics and a checker page.
//!
//! ```text
//! smtp-tls-policy config init > /etc/smtp-tls-policy/config.toml
//! smtp-tls-policy config check
//! smtp-tls-policy serve
//! smtp-tls-policy check example.com [--connect] [--json]
//! smtp-tls-policy query example.com [--map postfix]
//! smtp-tls-policy cache list | show DOMAIN | purge DOMAIN | export > FILE | import < FILE
//! smtp-tls-policy report list | send-now
//! ```

mod admin;
mod check;
mod config;
mod log;
mod metrics;
mod serve;
#[path = "../../examples/support/smtp_client.rs"]
mod smtp;
mod tlsrpt;
mod web;
mod zones;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use smtp_tls_policy::dns::{DnsConfig, DnssecMode, TrustAnchor};
use smtp_tls_policy::engine::{DaneSupport, DestinationControls, Profile, StsSupport, TlsSupport};
use smtp_tls_policy::fetch::FetchConfig;
use smtp_tls_policy::name::DomainName;

#[derive(Parser)]
#[command(name = "smtp-tls-policy", version, about = "MTA-STS, DANE and TLS-RPT for Postfix and for checking a domain")]
struct Cli {
    /// The configuration file.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the socketmap server, TLS-RPT, the admin socket and the web endpoints.
    Serve,
    /// Check a domain's MTA-STS, MX, DANE and TLS-RPT setup.
    Check(CheckArgs),
    /// Ask the running server for a domain's Postfix policy, and why.
    Query {
        domain: String,
        /// The map name (zone); default: the only one.
        #[arg(long)]
        map: Option<String>,
        /// The admin socket (default: from the configuration).
        #[arg(long, value_name = "PATH")]
        admin: Option<PathBuf>,
    },
    /// Look into the running server's policy cache.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
        /// The admin socket (default: from the configuration).
        #[arg(long, value_name = "PATH", global = true)]
        admin: Option<PathBuf>,
    },
    /// The running server's TLS-RPT reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
        /// The admin socket (default: from the configuration).
        #[arg(long, value_name = "PATH", global = true)]
        admin: Option<PathBuf>,
    },
    /// The configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(clap::Args)]
struct CheckArgs {
    domain: String,
    /// Also try STARTTLS on port 25 of each MX host (no message is sent).
    #[arg(long)]
    connect: bool,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
    /// Look through this zone of the configuration (its DNS, roots, proxy and controls).
    #[arg(long, value_name = "NAME")]
    map: Option<String>,
    /// Ask this DNS resolver (IP or IP:PORT).
    #[arg(long, value_name = "IP[:PORT]", conflicts_with = "map")]
    dns: Option<String>,
    /// No DNSSEC validation.
    #[arg(long, conflicts_with_all = ["trust_ad", "anchor", "map"])]
    no_dnssec: bool,
    /// Trust the resolver's AD bit (only with --dns on loopback).
    #[arg(long, conflicts_with_all = ["anchor", "map"])]
    trust_ad: bool,
    /// DNSKEY records to validate from instead of the IANA root.
    #[arg(long, value_name = "FILE", conflicts_with = "map")]
    anchor: Option<PathBuf>,
    /// Roots of the policy fetch and the STARTTLS probe: a PEM file (default: the built-in WebPKI roots).
    #[arg(long, value_name = "FILE", conflicts_with = "map")]
    roots: Option<PathBuf>,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Every cached domain: policy id, mode, expiry, last failure.
    List {
        /// Only these zones.
        zones: Vec<String>,
    },
    /// One domain's entry and policy.
    Show {
        domain: String,
        #[arg(long)]
        map: Option<String>,
    },
    /// Forget one domain: its next query fetches the policy again.
    Purge {
        domain: String,
        #[arg(long)]
        map: Option<String>,
    },
    /// Write a zone's cache as a snapshot to stdout.
    Export {
        #[arg(long)]
        map: Option<String>,
    },
    /// Read a snapshot from stdin into a zone's cache.
    Import {
        #[arg(long)]
        map: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The windows collecting and the reports in the outbox.
    List,
    /// Queue closed windows and try due destinations now.
    SendNow,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented configuration with every default.
    Init,
    /// Validate the configuration (syntax, values, anchor and roots files, DNS) and exit.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = serve::config_path(cli.config.clone());
    // Read at most once, and only by the commands that need it.
    let loaded = std::cell::OnceCell::new();
    let config = || loaded.get_or_init(|| read_config(cli.config.as_deref())).as_ref();
    match cli.command {
        Command::Serve => serve::run(&path),
        Command::Check(args) => check_command(&args, cli.config.as_deref()),
        Command::Query { domain, map, admin } => {
            let socket = admin_socket(admin, config);
            let map = match map.map_or_else(|| only_zone(config()), Ok) {
                Ok(m) => m,
                Err(e) => return fail(2, &e),
            };
            print_answer(admin::request(&socket, &format!("query {map} {domain}"), None))
        }
        Command::Cache { command, admin } => {
            let socket = admin_socket(admin, config);
            let map_arg = |map: Option<String>| map.map(|m| format!(" {m}")).unwrap_or_default();
            match command {
                CacheCommand::List { zones } => {
                    print_answer(admin::request(&socket, &format!("cache list {}", zones.join(" ")), None))
                }
                CacheCommand::Show { domain, map } => {
                    print_answer(admin::request(&socket, &format!("cache show {domain}{}", map_arg(map)), None))
                }
                CacheCommand::Purge { domain, map } => {
                    print_answer(admin::request(&socket, &format!("cache purge {domain}{}", map_arg(map)), None))
                }
                CacheCommand::Export { map } => {
                    print_answer(admin::request(&socket, &format!("cache export{}", map_arg(map)), None))
                }
                CacheCommand::Import { map } => {
                    let map = match map.map_or_else(|| only_zone(config()), Ok) {
                        Ok(m) => m,
                        Err(e) => return fail(2, &e),
                    };
                    let mut bytes = Vec::new();
                    if let Err(e) = std::io::stdin().take(admin::MAX_IMPORT).read_to_end(&mut bytes) {
                        return fail(2, &format!("reading the snapshot from stdin: {e}"));
                    }
                    print_answer(admin::request(&socket, &format!("cache import {map}"), Some(&bytes)))
                }
            }
        }
        Command::Report { command, admin } => {
            let socket = admin_socket(admin, config);
            let line = match command {
                ReportCommand::List => "report list",
                ReportCommand::SendNow => "report send-now",
            };
            print_answer(admin::request(&socket, line, None))
        }
        Command::Config { command: ConfigCommand::Init } => {
            print!("{}", config::INIT);
            ExitCode::SUCCESS
        }
        Command::Config { command: ConfigCommand::Check } => {
            let checked = config::Source::read(&path).and_then(|source| {
                let config = source.parse()?;
                zones::build(&source, &config, None).map(|z| (config, z.len()))
            });
            match checked {
                Ok((config, zones)) => {
                    println!(
                        "{}: OK: {zones} zone(s), {} listener(s){}",
                        path.display(),
                        config.server.listen.len(),
                        if config.tlsrpt.is_some() { ", TLS-RPT on" } else { "" }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(2, &e.to_string()),
            }
        }
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("smtp-tls-policy: {message}");
    ExitCode::from(code)
}

fn print_answer(answer: Result<Vec<u8>, String>) -> ExitCode {
    match answer {
        Ok(body) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&body).and_then(|()| out.flush()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, &e),
    }
}

/// The configuration, when a file is there (the admin commands work
/// without one, on the default socket).
fn read_config(path: Option<&Path>) -> Option<config::Config> {
    let path = serve::config_path(path.map(Path::to_path_buf));
    config::Source::read(&path).ok().and_then(|s| s.parse().ok())
}

fn admin_socket<'a>(given: Option<PathBuf>, config: impl FnOnce() -> Option<&'a config::Config>) -> PathBuf {
    given.unwrap_or_else(|| admin::socket_of(config()))
}

/// The one zone of the configuration, for commands that need a map name.
fn only_zone(config: Option<&config::Config>) -> Result<String, String> {
    let Some(config) = config else {
        return Err("give the map name with --map (no readable configuration to take it from)".into());
    };
    let mut names = config.zones.keys();
    match (names.next(), names.next()) {
        (Some(name), None) => Ok(name.clone()),
        _ => Err("several zones: give the map name with --map".into()),
    }
}

fn check_command(args: &CheckArgs, config_path: Option<&Path>) -> ExitCode {
    let domain = match DomainName::parse(args.domain.trim_end_matches('.')) {
        Ok(d) => d,
        Err(e) => return fail(2, &format!("{}: {e}", args.domain)),
    };
    let setup = match check_setup(args, config_path) {
        Ok(s) => s,
        Err(e) => return fail(2, &e),
    };
    match check::run(&setup, &domain) {
        Ok((report, problems)) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", check::text(&report));
            }
            if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => fail(2, &e),
    }
}

fn check_setup(args: &CheckArgs, config_path: Option<&Path>) -> Result<check::Setup, String> {
    if let Some(map) = &args.map {
        let path = serve::config_path(config_path.map(Path::to_path_buf));
        let source = config::Source::read(&path).map_err(|e| e.to_string())?;
        let config = source.parse().map_err(|e| e.to_string())?;
        let mut zones = zones::build(&source, &config, None).map_err(|e| e.to_string())?;
        let built = zones.remove(map).ok_or_else(|| format!("--map {map}: no such zone in {}", path.display()))?;
        return Ok(check::Setup {
            dns: built.zone.resolver.dns().clone(),
            fetch: built.fetch,
            controls: built.zone.resolver.controls().clone(),
            connect: args.connect,
            roots: smtp_tls_policy::verify::webpki_roots(),
        });
    }
    let mode = if args.no_dnssec {
        DnssecMode::Off
    } else if args.trust_ad {
        DnssecMode::TrustAd
    } else if let Some(path) = &args.anchor {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--anchor {}: {e}", path.display()))?;
        DnssecMode::Validate(TrustAnchor::parse(&text).map_err(|e| format!("--anchor {}: {e}", path.display()))?)
    } else {
        DnssecMode::default()
    };
    let mut dns = DnsConfig::default().dnssec(mode).timeout(Duration::from_secs(4)).attempts(1);
    if let Some(server) = &args.dns {
        let addr = server
            .parse::<SocketAddr>()
            .or_else(|_| server.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| format!("--dns {server}: not an IP address (or IP:PORT)"))?;
        dns = dns.servers([addr]);
    }
    let dns = smtp_tls_policy::dns::blocking::DnsResolver::new(dns).map_err(|e| e.to_string())?;
    let mut fetch = FetchConfig::default().timeout(Duration::from_secs(10));
    let mut roots = smtp_tls_policy::verify::webpki_roots();
    if let Some(path) = &args.roots {
        let bad = |e: String| format!("--roots {}: {e}", path.display());
        let certs = zones::pem_certificates(path).map_err(bad)?;
        fetch = fetch.roots(smtp_tls_policy::fetch::Roots::custom(&certs).map_err(|e| bad(e.to_string()))?);
        roots = smtp_tls_policy::verify::custom_roots(&certs).map_err(|e| bad(e.to_string()))?;
    }
    let controls =
        DestinationControls::new(Profile::new(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On));
    Ok(check::Setup { dns, fetch, controls, connect: args.connect, roots })
}
