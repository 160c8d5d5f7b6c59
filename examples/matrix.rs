//! Prints, as a Markdown table, what the decision engine plans for every
//! combination of TLS support, DANE support and MTA-STS mode, for an MX
//! host with secure usable TLSA records and one without (both listed in
//! the MTA-STS policy, behind a secure MX RRset): the README's table and
//! tests/golden/engine_table.md.
//!
//! ```text
//! cargo run --example matrix            # the table
//! cargo run --example matrix -- reasons # every verdict reason (tests/golden/verdict_reasons.txt)
//! ```

mod support;

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("reasons") => print!("{}", support::matrix::verdict_reasons()),
        _ => print!("{}", support::matrix::table()),
    }
}
