//! `smtp-tls-policy serve`: the socketmap server, TLS-RPT, the admin socket
//! and the web endpoints, until SIGTERM.
//!
//! Signals: SIGHUP re-reads the configuration — the zones (every option
//! of `[zones.*]`) are replaced, each keeping its cached policies; a file
//! with an error is refused with its line and column and the running
//! configuration stays; changes to `[server]`, `[admin]`, `[web]`, `[log]`
//! and `[tlsrpt]` need a restart (logged). SIGTERM and SIGINT save the
//! cache snapshots and exit. With systemd, readiness is notified
//! (`Type=notify`) and sockets it hands over (socket activation) are
//! served besides the `listen` ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use smtp_tls_policy::fetch::FetchConfig;
use smtp_tls_policy::postfix::server::{ServerConfig, SocketmapServer, Zone};
use smtp_tls_policy::resolver::blocking::Refresher;

use crate::config::{Config, Listen, Source};
use crate::metrics::Metrics;
use crate::{admin, tlsrpt, web, zones};

/// What the admin socket and the web endpoints see.
pub struct State {
    server: SocketmapServer,
    fetch: RwLock<HashMap<String, FetchConfig>>,
    first_zone: RwLock<String>,
    tlsrpt: Option<tlsrpt::Running>,
    metrics: Arc<Metrics>,
}

impl State {
    pub fn zones(&self) -> Arc<HashMap<String, Zone>> {
        self.server.zones()
    }

    pub fn metrics_text(&self) -> String {
        self.metrics.render(&self.zones(), self.server.connections(), self.tlsrpt.as_ref())
    }

    /// The checker through zone `map`'s DNS, roots, proxy and controls
    /// (default: the first zone).
    pub fn check_setup(&self, map: Option<&str>) -> Result<crate::check::Setup, String> {
        let zones = self.zones();
        let name = map.map_or_else(|| self.first_zone.read().unwrap_or_else(|p| p.into_inner()).clone(), str::to_owned);
        let zone = zones.get(&name).ok_or_else(|| format!("no zone {name:?}"))?;
        let fetch = self.fetch.read().unwrap_or_else(|p| p.into_inner()).get(&name).cloned().unwrap_or_default();
        Ok(crate::check::Setup {
            dns: zone.resolver.dns().clone(),
            fetch,
            controls: zone.resolver.controls().clone(),
            connect: false,
            roots: smtp_tls_policy::verify::webpki_roots(),
        })
    }
}

impl admin::Backend for State {
    fn zones(&self) -> Arc<HashMap<String, Zone>> {
        State::zones(self)
    }

    fn tlsrpt(&self) -> Option<&tlsrpt::Running> {
        self.tlsrpt.as_ref()
    }
}

/// Runs the server from the file at `path`; the exit status.
pub fn run(path: &Path) -> std::process::ExitCode {
    use std::process::ExitCode;
    let fail = |code: u8, message: String| {
        eprintln!("smtp-tls-policy: {message}");
        ExitCode::from(code)
    };
    let source = match Source::read(path) {
        Ok(s) => s,
        Err(e) => return fail(2, e.to_string()),
    };
    let config = match source.parse() {
        Ok(c) => c,
        Err(e) => return fail(2, e.to_string()),
    };
    if let Err(e) = crate::log::init(config.log.format, &config.log.level) {
        return fail(2, format!("{}: {e}", source.name));
    }
    let built = match zones::build(&source, &config, None) {
        Ok(z) => z,
        Err(e) => return fail(2, e.to_string()),
    };
    let metrics = Arc::new(Metrics::new());
    let (zones, fetch) = split(built);
    let mut server_config = ServerConfig::default()
        .idle_timeout(config.server.idle)
        .reply_ttl(config.server.reply_ttl)
        .request_timeout(config.server.request_timeout)
        .max_connections(config.server.max_connections)
        .observer(Arc::clone(&metrics) as Arc<_>);
    if let Some(dir) = &config.server.snapshots {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return fail(1, format!("[server] snapshots {}: {e}", dir.display()));
        }
        server_config = server_config.snapshot_dir(dir);
    }
    let (tcp, unix) = match activated() {
        Ok(l) => l,
        Err(e) => return fail(1, format!("sockets from systemd: {e}")),
    };
    // A `listen` entry that systemd bound already is served from its socket.
    let handed: Vec<SocketAddr> = tcp.iter().filter_map(|l| l.local_addr().ok()).collect();
    let handed_paths: Vec<PathBuf> =
        unix.iter().filter_map(|l| l.local_addr().ok()?.as_pathname().map(Path::to_path_buf)).collect();
    for listen in &config.server.listen {
        server_config = match listen.get_ref() {
            Listen::Inet(addr) if handed.contains(addr) => server_config,
            Listen::Unix(path) if handed_paths.contains(path) => server_config,
            Listen::Inet(addr) => server_config.inet(*addr),
            Listen::Unix(path) => server_config.unix(path),
        };
    }
    for (name, zone) in &zones {
        server_config = server_config.zone(name.clone(), zone.clone());
    }
    if config.server.listen.is_empty() && tcp.is_empty() && unix.is_empty() {
        return fail(2, format!("{}: [server] listen is empty and systemd handed over no socket", source.name));
    }
    let server = match SocketmapServer::start_on(server_config, tcp, unix) {
        Ok(s) => s,
        Err(e) => {
            let addrs: Vec<String> = config.server.listen.iter().map(|l| l.get_ref().to_string()).collect();
            return fail(
                1,
                format!(
                    "cannot listen on {}: {e} (is another policy server on the address? postfix-mta-sts-resolver also uses 127.0.0.1:8461: stop it first)",
                    addrs.join(", ")
                ),
            );
        }
    };
    tracing::info!(addrs = ?server.local_addrs(), "socketmap server ready");
    let first_zone = config.zones.keys().next().cloned().unwrap_or_default();
    let tlsrpt = match &config.tlsrpt {
        Some(t) => {
            let zone = t.get_ref().zone.clone().unwrap_or_else(|| first_zone.clone());
            let Some(dns) = zones.get(&zone).map(|z| z.resolver.dns().clone()) else {
                return fail(2, format!("{}: tlsrpt.zone = {zone:?}: no such zone", source.name));
            };
            match tlsrpt::start(t.get_ref(), dns) {
                Ok(r) => Some(r),
                Err(e) => return fail(1, format!("TLS-RPT: {e}")),
            }
        }
        None => None,
    };
    let admin = match config.admin.socket.as_os_str().is_empty() {
        true => None,
        false => match admin::bind(&config.admin.socket) {
            Ok(l) => Some(l),
            Err(e) => {
                return fail(
                    1,
                    format!("admin socket {}: {e} ([admin] socket = \"\" turns it off)", config.admin.socket.display()),
                );
            }
        },
    };
    let web = match &config.web.listen {
        Some(addr) => match tiny_http::Server::http(addr.get_ref()) {
            Ok(s) => Some(s),
            Err(e) => return fail(1, format!("web listen {}: {e}", addr.get_ref())),
        },
        None => None,
    };
    let signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ]) {
        Ok(s) => s,
        Err(e) => return fail(1, format!("cannot install signal handlers: {e}")),
    };
    let refresh = config.server.refresh;
    let mut refreshers = start_refreshers(&zones, refresh);
    let state =
        Arc::new(State { server, fetch: RwLock::new(fetch), first_zone: RwLock::new(first_zone), tlsrpt, metrics });
    let stop = AtomicBool::new(false);
    let mut running = config;
    std::thread::scope(|scope| {
        if let Some(listener) = &admin {
            let (state, stop) = (&state, &stop);
            scope.spawn(move || admin::serve(listener, &**state, stop));
            tracing::info!(socket = %running.admin.socket.display(), "admin socket ready");
        }
        if let Some(server) = &web {
            let (state, stop) = (&state, &stop);
            let remote = running.web.allow_remote;
            scope.spawn(move || web::serve(server, state, stop, remote));
            if let Some(addr) = &running.web.listen {
                tracing::info!(addr = %addr.get_ref(), "web endpoints ready: /, /check?domain=, /metrics");
            }
        }
        // Snapshots every 10 minutes, so that a crash loses little.
        let (tick_stop, ticks) = std::sync::mpsc::channel::<()>();
        {
            let state = &state;
            scope.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = ticks.recv_timeout(Duration::from_secs(600))
                {
                    state.server.save_snapshots();
                }
            });
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let mut signals = signals;
        for signal in signals.forever() {
            if signal != signal_hook::consts::SIGHUP {
                break;
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
            match reload(path, &state, &running) {
                Ok((config, zones)) => {
                    drop(std::mem::take(&mut refreshers));
                    refreshers = start_refreshers(&zones, config.server.refresh);
                    running = config;
                    state.metrics.reloaded(true);
                }
                Err(e) => {
                    tracing::error!("configuration not reloaded, the running one stays: {e}");
                    state.metrics.reloaded(false);
                }
            }
            let errors = state.server.save_snapshots();
            tracing::info!(errors = errors.len(), "cache snapshots saved");
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        stop.store(true, Ordering::Release);
        drop(tick_stop);
    });
    drop(refreshers);
    drop(web);
    let Ok(state) = Arc::try_unwrap(state) else {
        return fail(1, "internal error: the server is still shared at exit".into());
    };
    if !running.admin.socket.as_os_str().is_empty() {
        let _ = std::fs::remove_file(&running.admin.socket);
    }
    drop(state.tlsrpt);
    let errors = state.server.shutdown();
    tracing::info!(errors = errors.len(), "stopped; cache snapshots saved");
    // Log lines still queued get a moment to reach stderr.
    std::thread::sleep(Duration::from_millis(50));
    if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn split(built: HashMap<String, zones::Built>) -> (HashMap<String, Zone>, HashMap<String, FetchConfig>) {
    let mut zones = HashMap::new();
    let mut fetch = HashMap::new();
    for (name, b) in built {
        fetch.insert(name.clone(), b.fetch);
        zones.insert(name, b.zone);
    }
    (zones, fetch)
}

fn start_refreshers(zones: &HashMap<String, Zone>, every: Duration) -> Vec<Refresher> {
    zones.values().map(|z| z.resolver.start_refresher(every)).collect()
}

/// SIGHUP: the new configuration and its zones, now served; or why not.
fn reload(path: &Path, state: &State, running: &Config) -> Result<(Config, HashMap<String, Zone>), String> {
    let source = Source::read(path).map_err(|e| e.to_string())?;
    let config = source.parse().map_err(|e| e.to_string())?;
    let old = state.zones();
    let built = zones::build(&source, &config, Some(&old)).map_err(|e| e.to_string())?;
    let (zones, fetch) = split(built);
    // By value: positions in the file (spans) do not count, so editing a
    // zone does not make the tables after it look changed.
    for (table, changed) in [
        ("server", running.server != config.server),
        ("admin", running.admin != config.admin),
        ("web", running.web != config.web),
        ("log", running.log != config.log),
        ("tlsrpt", running.tlsrpt != config.tlsrpt),
    ] {
        if changed {
            tracing::warn!("[{table}] changed: restart the server to apply it (a reload applies [zones])");
        }
    }
    state.server.replace_zones(zones.clone());
    *state.fetch.write().unwrap_or_else(|p| p.into_inner()) = fetch;
    *state.first_zone.write().unwrap_or_else(|p| p.into_inner()) =
        config.zones.keys().next().cloned().unwrap_or_default();
    let mut names: Vec<&String> = zones.keys().collect();
    names.sort_unstable();
    tracing::info!(zones = ?names, "configuration reloaded; cached policies kept");
    Ok((config, zones))
}

/// Sockets handed over by systemd (`LISTEN_FDS`): TCP and UNIX-domain
/// stream sockets.
fn activated() -> std::io::Result<(Vec<std::net::TcpListener>, Vec<std::os::unix::net::UnixListener>)> {
    let mut fds = listenfd::ListenFd::from_env();
    let (mut tcp, mut unix) = (Vec::new(), Vec::new());
    for i in 0..fds.len() {
        if let Ok(Some(l)) = fds.take_tcp_listener(i) {
            tcp.push(l);
        } else if let Some(l) = fds.take_unix_listener(i)? {
            unix.push(l);
        }
    }
    Ok((tcp, unix))
}

/// The configuration file: `--config`, else the default path.
pub fn config_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH))
}
