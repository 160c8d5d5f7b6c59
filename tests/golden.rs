//! The engine's operator-facing behaviour against golden files: the table
//! of every plan (also the README's), and every verdict reason those plans
//! give (status code and text an operator reads). A change to either is a
//! change of behaviour: review the diff, then rewrite the files with
//! `SMTP_TLS_POLICY_BLESS=1 cargo test --test golden`.

#[path = "../examples/support/mod.rs"]
mod support;

use std::path::Path;

fn compare(file: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(file);
    if std::env::var_os("SMTP_TLS_POLICY_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .take(5)
            .map(|(w, g)| format!("- {w}\n+ {g}"))
            .collect();
        panic!(
            "{file} differs ({} lines golden, {} now); first differences:\n{}\n(review, then SMTP_TLS_POLICY_BLESS=1)",
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn the_engine_table() {
    let table = support::matrix::table();
    assert_eq!(table.lines().count(), 2 + 6 * 3 * 3, "every combination of TLS support, DANE and MTA-STS");
    compare("engine_table.md", &table);
}

#[test]
fn the_readme_shows_the_golden_table() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains(&support::matrix::table()), "README.md's full table is not `cargo run --example matrix`");
}

#[test]
fn every_verdict_reason() {
    let reasons = support::matrix::verdict_reasons();
    for line in reasons.lines() {
        // Operator text, never a Rust debug rendering.
        assert!(!line.contains(" { ") && !line.contains("Some(") && !line.contains("\"]"), "{line}");
    }
    compare("verdict_reasons.txt", &reasons);
}
