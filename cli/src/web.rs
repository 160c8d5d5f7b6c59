//! The web endpoints (loopback by default): `/metrics` for Prometheus, `/`
//! the status page (zones, the cache, recent failures), `/check?domain=`
//! the checker's report as HTML. Plain HTML, no script; every value from
//! outside is escaped.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use smtp_tls_policy::name::DomainName;

use crate::serve::State;

/// Checks running at once; more are answered 503.
const MAX_CHECKS: usize = 4;

/// Cache entries shown on the status page.
const MAX_SHOWN: usize = 500;

/// Whether a request's `Host` names this machine by address or as
/// `localhost`. A page elsewhere can point a name of its own at 127.0.0.1
/// (DNS rebinding) and read what a loopback server shows; such a request
/// carries that name.
fn local_host(request: &tiny_http::Request) -> bool {
    let Some(host) = request.headers().iter().find(|h| h.field.equiv("Host")) else { return false };
    let host = host.value.as_str();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(ip, _)| ip),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Serves `server` until `stop` is set; with `remote` false (the default)
/// only requests whose `Host` is an address or `localhost`.
pub fn serve(server: &tiny_http::Server, state: &Arc<State>, stop: &AtomicBool, remote: bool) {
    let checks = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Acquire) {
        let request = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => return,
        };
        if !remote && !local_host(&request) {
            let body = "this server answers only requests for its address or localhost (Host header); set [web] allow-remote = true to serve other names\n";
            respond(request, 421, "text/plain; charset=utf-8", body.into());
            continue;
        }
        let url = request.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        match path {
            "/metrics" => {
                // OpenMetrics when the scraper asks for it (Prometheus does),
                // else the classic text format.
                let openmetrics = request
                    .headers()
                    .iter()
                    .any(|h| h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text"));
                let body = state.metrics_text();
                if openmetrics {
                    respond(request, 200, crate::metrics::OPENMETRICS, body);
                } else {
                    respond(request, 200, crate::metrics::PROMETHEUS_TEXT, crate::metrics::to_prometheus_text(&body));
                }
            }
            "/" => respond(request, 200, "text/html; charset=utf-8", status_page(state)),
            "/check" => {
                if checks.fetch_add(1, Ordering::AcqRel) >= MAX_CHECKS {
                    checks.fetch_sub(1, Ordering::AcqRel);
                    respond(request, 503, "text/plain; charset=utf-8", "too many checks running; retry".into());
                    continue;
                }
                let (state, checks) = (Arc::clone(state), Arc::clone(&checks));
                let query = query.to_owned();
                std::thread::spawn(move || {
                    let page = check_page(&state, &query);
                    respond(request, page.0, "text/html; charset=utf-8", page.1);
                    checks.fetch_sub(1, Ordering::AcqRel);
                });
            }
            _ => respond(
                request,
                404,
                "text/plain; charset=utf-8",
                "not found: try /, /check?domain= or /metrics\n".into(),
            ),
        }
    }
}

fn respond(request: tiny_http::Request, status: u16, content_type: &str, body: String) {
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        response.add_header(h);
    }
    if let Ok(h) = tiny_http::Header::from_bytes(
        &b"Content-Security-Policy"[..],
        &b"default-src 'none'; style-src 'unsafe-inline'"[..],
    ) {
        response.add_header(h);
    }
    let _ = request.respond(response);
}

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query parameter, percent- and `+`-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
.problem{color:#a00}.ok{color:#070}pre{background:#f4f4f4;padding:.5em}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n{body}</body></html>\n",
        escape(title),
        escape(title)
    )
}

fn check_form(value: &str) -> String {
    format!(
        "<form action=\"/check\" method=\"get\"><label>Check a domain through this server's DNS, roots and proxy: <input name=\"domain\" value=\"{}\"></label> <button type=\"submit\">Check</button></form>\n",
        escape(value)
    )
}

fn status_page(state: &State) -> String {
    let now = SystemTime::now();
    let zones = state.zones();
    let mut names: Vec<&String> = zones.keys().collect();
    names.sort_unstable();
    let mut body = check_form("");
    body.push_str("<h2>Zones</h2>\n<table><tr><th>zone</th><th>cached domains</th><th>hits</th><th>misses</th><th>fetches</th></tr>\n");
    for name in &names {
        let s = zones[*name].resolver.cache().stats();
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            s.entries,
            s.hits,
            s.misses,
            s.fetches
        );
    }
    body.push_str("</table>\n<h2>Recent failures</h2>\n");
    let mut failures = Vec::new();
    let mut cached = Vec::new();
    for name in &names {
        for e in zones[*name].resolver.cache().entries() {
            if let Some((_, failure, _)) = &e.last_failure {
                failures.push((
                    name.as_str(),
                    e.domain.clone(),
                    failure.result_type().to_string(),
                    failure.to_string(),
                ));
            }
            cached.push((name.as_str(), e));
        }
    }
    if failures.is_empty() {
        body.push_str("<p class=\"ok\">No policy fetch has failed.</p>\n");
    } else {
        body.push_str("<table><tr><th>zone</th><th>domain</th><th>result type</th><th>what happened</th></tr>\n");
        for (zone, domain, result_type, why) in failures.iter().take(MAX_SHOWN) {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"problem\">{}</td></tr>",
                escape(zone),
                escape(domain.as_str()),
                escape(result_type),
                escape(why)
            );
        }
        body.push_str("</table>\n");
    }
    let _ = writeln!(
        body,
        "<h2>Cache ({} domains{})</h2>",
        cached.len(),
        if cached.len() > MAX_SHOWN { ", the first 500 shown" } else { "" }
    );
    cached.sort_by(|a, b| (a.0, &a.1.domain).cmp(&(b.0, &b.1.domain)));
    body.push_str("<table><tr><th>zone</th><th>entry</th></tr>\n");
    for (zone, e) in cached.iter().take(MAX_SHOWN) {
        let _ = writeln!(body, "<tr><td>{}</td><td>{}</td></tr>", escape(zone), escape(&crate::admin::summary(e, now)));
    }
    body.push_str("</table>\n<p><a href=\"/metrics\">/metrics</a></p>\n");
    page("smtp-tls-policy", &body)
}

fn check_page(state: &State, query: &str) -> (u16, String) {
    let Some(asked) = param(query, "domain").filter(|d| !d.trim().is_empty()) else {
        return (400, page("Check a domain", &check_form("")));
    };
    let asked = asked.trim().to_owned();
    let domain = match DomainName::parse(asked.trim_end_matches('.')) {
        Ok(d) => d,
        Err(e) => {
            let body = format!("{}<p class=\"problem\">{}</p>\n", check_form(&asked), escape(&e.to_string()));
            return (400, page("Check a domain", &body));
        }
    };
    let setup = match state.check_setup(param(query, "map").as_deref()) {
        Ok(s) => s,
        Err(e) => return (400, page("Check a domain", &format!("<p class=\"problem\">{}</p>", escape(&e)))),
    };
    match crate::check::run(&setup, &domain) {
        Ok((report, _)) => {
            (200, page(&format!("Check of {domain}"), &format!("{}{}", check_form(&asked), html(&report))))
        }
        Err(e) => (502, page(&format!("Check of {domain}"), &format!("<p class=\"problem\">{}</p>", escape(&e)))),
    }
}

/// The checker's report as HTML.
pub fn html(r: &Value) -> String {
    let s = |v: &Value| escape(&v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
    let mut out = String::new();
    let sts = &r["mta_sts"];
    let _ = writeln!(out, "<h2>MTA-STS TXT record {}</h2>", s(&sts["txt_name"]));
    out.push_str("<ul>\n");
    for t in sts["txt_records"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "<li><code>{}</code></li>", s(t));
    }
    if !sts["txt_error"].is_null() {
        let _ = writeln!(out, "<li class=\"problem\">{}</li>", s(&sts["txt_error"]));
    }
    out.push_str("</ul>\n");
    if !sts["policy_url"].is_null() {
        let _ = writeln!(out, "<h2>Policy {}</h2>", s(&sts["policy_url"]));
        match sts["policy"].as_str() {
            Some(p) => {
                let _ = writeln!(out, "<pre>{}</pre>", escape(p));
            }
            None => {
                let _ = writeln!(out, "<p class=\"problem\">{}</p>", s(&sts["policy_error"]));
            }
        }
    }
    let mx = &r["mx"];
    let _ = writeln!(out, "<h2>MX hosts (DNSSEC: {})</h2>", s(&mx["dnssec"]));
    if !mx["error"].is_null() {
        let _ = writeln!(out, "<p class=\"problem\">{}</p>", s(&mx["error"]));
    }
    out.push_str("<table><tr><th>host</th><th>allowed by the policy</th><th>TLSA</th><th>requirement</th><th>connection</th></tr>\n");
    for h in mx["hosts"].as_array().into_iter().flatten() {
        let allowed = match h["allowed_by_policy"].as_bool() {
            Some(true) => "yes",
            Some(false) => "<span class=\"problem\">NO</span>",
            None => "—",
        };
        let mut tlsa = format!("{}: {}", s(&h["tlsa"]["name"]), s(&h["tlsa"]["status"]));
        for t in h["tlsa"]["records"].as_array().into_iter().flatten() {
            let _ = write!(tlsa, "<br><code>{}</code>", s(t));
        }
        let connect = if h["connect"].is_null() {
            "not tried".to_owned()
        } else if let Some(e) = h["connect"]["error"].as_str() {
            escape(e)
        } else {
            format!(
                "{}: {} — {}",
                s(&h["connect"]["address"]),
                s(&h["connect"]["attempt"]),
                s(&h["connect"]["verdict"])
            )
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{allowed}</td><td>{tlsa}</td><td>{}</td><td>{connect}</td></tr>",
            s(&h["host"]),
            s(&h["requirement"])
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(out, "<h2>TLS-RPT {}</h2>", s(&r["tls_rpt"]["name"]));
    match r["tls_rpt"]["record"].as_str() {
        Some(rec) => {
            let _ = writeln!(out, "<p><code>{}</code></p>", escape(rec));
        }
        None => {
            let _ = writeln!(out, "<p class=\"problem\">{}</p>", s(&r["tls_rpt"]["error"]));
        }
    }
    let problems = r["problems"].as_array().cloned().unwrap_or_default();
    if problems.is_empty() {
        out.push_str("<h2>Problems</h2>\n<p class=\"ok\">No problems found.</p>\n");
    } else {
        let _ = writeln!(out, "<h2>Problems ({})</h2>\n<ul>", problems.len());
        for p in problems {
            let _ = writeln!(out, "<li class=\"problem\">{}</li>", s(&p));
        }
        out.push_str("</ul>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_decodes_queries() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(param("domain=a.example&map=p", "domain").as_deref(), Some("a.example"));
        assert_eq!(param("domain=%3Cb%3E+x", "domain").as_deref(), Some("<b> x"));
        assert_eq!(param("domain=100%", "domain").as_deref(), Some("100%"));
        assert_eq!(param("domain=%4", "domain").as_deref(), Some("%4"));
        assert_eq!(param("x=1", "domain"), None);
    }
}
