//! The crate's manual: design rationale and how it reads the RFCs. This
//! module holds no code.
//!
//! # Data flow: from a domain to a report
//!
//! ```text
//!                 ┌───────────── core (no IO, --no-default-features) ─────────────┐
//!  recipient      │ engine::DestinationControls::wants(domain) ─▶ discovery::Wants │
//!  domain ───────▶│                                                               │
//!                 │ discovery::gather(lookup, cache, fetch, domain, wants, now)   │
//!                 │   ├─ sts_txt ─▶ txt_finding ─▶ cache.begin ─▶ Decided         │
//!                 │   │                             │           ├ Wait  (flight)  │
//!                 │   │                             │           └ Fetch ─▶ PolicyFetch::fetch
//!                 │   ├─ DnsLookup::mx ─▶ mx_hosts (RFC 5321 §5.1, RFC 7505)      │
//!                 │   └─ per host: DnsLookup::addresses ─▶ tlsa_query (§2.2.2)    │
//!                 │                 ─▶ DnsLookup::tlsa ─▶ tlsa_facts (§2.2.3)     │
//!                 │        ═▶ DomainFacts (or MxFailure with the MTA-STS facts)   │
//!                 │ DestinationControls::plan(&facts) ═▶ Plan { hosts, skipped,   │
//!                 │                                           sts: PlanSts }      │
//!                 │ plan.delivery() ─▶ next_host ─▶ (the MTA tries it) ─▶ record  │
//!                 │   (assess per attempt)   ...until Deliver / Stop / no host    │
//!                 │ delivery.finish(DeliveryContext) ═▶ Outcome {                 │
//!                 │     verdict: Deliver | Defer | Bounce,                        │
//!                 │     sts: StsOutcome ("… Successful." / "… Failed."),          │
//!                 │     sessions: Vec<report::Session> } ─▶ report::Aggregator    │
//!                 └───────────────────────────────────────────────────────────────┘
//!  IO adapters (features):  dns::DnsResolver      implements DnsLookup (validated)
//!                           resolver::PolicyResolver: gather + plan + finish, logs;
//!                             its PolicyFetch = the policy host's addresses from
//!                             the same DNS, then fetch::PolicyFetcher::fetch_at on
//!                             tokio's blocking pool
//!                           resolver::blocking / dns::blocking: own runtime, block
//!                           verify::TlsSetup: the plan's verifier on the handshake
//!                           postfix: resolve() ─▶ policy_reply(&plan, zone options)
//! ```
//!
//! Decisions:
//!
//! - **Where the rules are.** Every RFC reading of discovery is a pure
//!   function of `discovery` or `sts::fetch` (table-tested in
//!   `tests/discovery.rs` and `sts::fetch`'s tests); the IO adapters only
//!   ask and report. An MTA with its own resolver implements
//!   [`DnsLookup`](crate::discovery::DnsLookup) (and, with its own HTTP
//!   client, [`PolicyFetch`](crate::discovery::PolicyFetch)) and calls
//!   [`gather`](crate::discovery::gather); nothing else changes.
//! - **What to look up** is [`Wants`](crate::discovery::Wants), made by
//!   [`DestinationControls::wants`](crate::engine::DestinationControls::wants):
//!   `gather` takes it rather than the controls, so that `discovery`
//!   depends on nothing of `engine` (the engine plans from discovery's
//!   facts; one direction only).
//! - **Async first.** The async façade runs on the caller's tokio runtime
//!   (any flavour) and starts none; the blocking forms own a two-thread
//!   runtime, as `reqwest::blocking` does. Called from async code, a
//!   blocking form returns a temporary error (the mail is deferred, never
//!   bounced) and logs it as an error. A cancelled resolve abandons its
//!   fetch: the waiters get a failure without back-off and the next lookup
//!   fetches again.
//! - **The attempt loop.** [`Delivery`](crate::engine::Delivery) hands out
//!   the hosts in plan order and keeps the assessments in step with them; a
//!   host handed out and not recorded counts as unreachable. The MTA sends
//!   on the session whose `record` returned `HostResult::Deliver`.
//! - **TLS-RPT sessions** (RFC 8460 §4.1): one per attempt that reached a
//!   TLS outcome (connection failures before any TLS are not sessions), one
//!   failed session per host skipped for a reportable reason, and one failed
//!   `sts` session when a policy was announced but could not be had
//!   ([`PlanSts::Unavailable`](crate::engine::PlanSts::Unavailable),
//!   RFC 8460 §4.3.2.2). A host's sessions are reported under the policy
//!   that governed it: its TLSA records (`tlsa`), the MTA-STS policy (`sts`,
//!   policy domain the route host under RFC 8461 §3.4), or
//!   `no-policy-found`. A delivered session with a reported failure (MTA-STS
//!   `testing`, Preferred-Verify) counts as failed, with the first failure
//!   as its detail.
//! - **The MTA-STS outcome** is "met" when the message was delivered with a
//!   verified certificate and nothing to report; a `mode: none` policy has
//!   no outcome.
//!
//! # MTA-STS grammar (RFC 8461 §3.1, §3.2)
//!
//! The parsers implement the RFC's ABNF. Where the RFC is silent or loose,
//! the crate decides as follows, always choosing what an MTA operator would
//! expect and never what loses protection.
//!
//! ## The TXT record
//!
//! - `v=STSv1` must be first and is case-sensitive (`%s"v=STSv1"`).
//! - Fields are separated by `*WSP ";" *WSP`; a trailing `;` (with white
//!   space around it) is allowed, white space after the last field without
//!   a `;` is not (the ABNF gives no place for it), and an empty field
//!   (`;;`) is an error.
//! - `id` is required and is 1–32 ASCII letters and digits; ids compare
//!   case-sensitively, byte for byte. `ID=` is not `id=` (`%s`).
//! - Every other field must be a well-formed extension (`sts-ext-name "="
//!   sts-ext-value`); it is kept but not interpreted.
//! - A duplicated field: the first wins. Later duplicates must still be
//!   well-formed extensions (`id=abc; id=not-an-id` is accepted with id
//!   `abc`, since `not-an-id` is a valid extension value).
//! - The strings of one TXT record are joined without spaces before parsing
//!   (as RFC 7208 §3.3 does for SPF records); that is the
//!   caller's job (the `dns` layer does it).
//!
//! ## Selecting the record from an RRset
//!
//! RFC 8461 §3.1: "records that do not begin with "v=STSv1;" are discarded.
//! If the number of resulting records is not one, or if the resulting
//! record is syntactically invalid, senders MUST assume the recipient
//! domain does not have an available MTA-STS Policy."
//!
//! [`select_txt`](crate::sts::select_txt) keeps a record when it begins
//! with `v=STSv1` followed by `;`, white space, or nothing. Taking the RFC's
//! prose literally (`v=STSv1;`) would discard `v=STSv1 ; id=…`, which its own
//! ABNF allows; taking a bare prefix would keep a future `v=STSv10;` record
//! and so break a domain that publishes both versions. A kept record that is
//! invalid (including a bare `v=STSv1`) counts toward "exactly one": two
//! kept records are no policy even when one of them is broken, and one
//! broken record is no policy, never "fall back to the other". Identical
//! duplicates are still two records.
//!
//! ## The policy body
//!
//! - Lines end in LF or CRLF. A lone CR at the very end of the body is read
//!   as a CRLF cut short; a CR anywhere else is a control character and an
//!   error.
//! - Each non-blank line is `key ":" *WSP value *WSP` with no white space
//!   before the key or the colon. Keys are case-sensitive.
//! - `version: STSv1`, `mode` and `max_age` are required, in any order.
//!   `mx` is required, one or more, unless the mode is `none`; with mode
//!   `none` any `mx` lines are kept.
//! - A duplicated key other than `mx`: the first value wins, and later lines
//!   need only be well-formed `key: value` lines. Every `mx` line counts, in
//!   order, duplicates kept.
//! - `max_age` is 1–10 digits. A value above 31557600 is clamped to it, not
//!   refused: refusing it would turn an enforcing domain into one with no
//!   policy at all. `max_age: 0` parses (what it means for the cache is the
//!   cache's business).
//! - An `mx` value is `["*."] Domain`. It may be written in upper case, with
//!   one trailing dot, or with U-labels, which are converted to A-labels
//!   (UTS #46, the `idna` crate); an `xn--` label must be a valid A-label.
//!   A `*` anywhere but as the whole first label is an error, as is a port,
//!   an address literal, or a character outside letters, digits and
//!   hyphens.
//! - Other keys are extensions: the name per `sts-policy-ext-name`, the
//!   value one or more visible characters (UTF-8 allowed) with inner white
//!   space, no control characters. They are kept, first occurrence only.
//! - Leniency only where the meaning is unambiguous and no protection is
//!   lost: blank lines (empty or white space only) and a last line without
//!   a terminator are accepted. Nothing else outside the ABNF is: no byte
//!   order mark, no comments, no `key : value`, no indented lines.
//! - An invalid `mx` line makes the whole policy invalid rather than being
//!   skipped: silently dropping a pattern would make the policy refuse a
//!   host the domain owner meant to allow, and an operator must see the
//!   error.
//! - A body over [`MAX_POLICY_BYTES`](crate::sts::MAX_POLICY_BYTES) (64 KiB)
//!   is refused, by [`Policy::parse`](crate::sts::Policy::parse) as well as
//!   [`Policy::parse_bytes`](crate::sts::Policy::parse_bytes); the bytes
//!   must be UTF-8.
//!
//! ## Canonical text
//!
//! `Display` of a [`TxtRecord`](crate::sts::TxtRecord) is `v=STSv1; id=…`
//! then `; name=value` per extension, with no trailing `;`. `Display` of a
//! [`Policy`](crate::sts::Policy) is `version`, `mode`, each `mx`,
//! `max_age` (after the clamp), then the extensions, each line ending in
//! CRLF. Both parse back to an equal value; the property tests and fuzz
//! targets check it.
//!
//! # MX matching (RFC 8461 §4.1)
//!
//! Matching is ASCII case-insensitive and ignores one trailing dot of the
//! host. `*.example.com` matches a host with exactly one more label, of 1
//! to 63 octets, in front of `example.com`: `mail.example.com`, never
//! `example.com`, `.example.com` or `a.b.example.com`. A host given with
//! U-labels is converted to A-labels before matching. Matching says nothing
//! about the mode: under `testing` or `none` a host that does not match may
//! still be used.
//!
//! # Domain names
//!
//! [`DomainName`](crate::name::DomainName) holds host names in one
//! canonical form (lower-case A-labels, no trailing dot) so that every
//! comparison is a byte comparison. It follows RFC 5321 §4.1.2 `Domain`
//! (letters, digits, inner hyphens; no underscores, since an MX host is a
//! host name) and the RFC 1035 §2.3.4 limits (63 octets a label, 253 in
//! all). Single-label names and all-numeric labels parse, as the ABNF
//! allows.
//!
//! # Errors
//!
//! Every parser returns [`ParseError`](crate::ParseError): a
//! [`ParseErrorKind`](crate::ParseErrorKind) per distinct failure, the line
//! (policy bodies), the byte offset of the first byte in error, and a
//! message naming the field — `line 2: mode: unknown value "enforced"
//! (expected enforce, testing or none)`. Messages quote at most 64
//! characters of the offending value, so a hostile 64 KiB line cannot make
//! a 64 KiB log line. [`TxtError`](crate::sts::TxtError) says why an RRset
//! yields no record.
//!
//! # Cost
//!
//! Every parser is one pass over its input; the only per-key bookkeeping
//! (first-wins extensions) switches from a short scan to a hash set past
//! eight keys, so a body of thousands of distinct keys stays linear. The
//! policy id is held inline (no allocation), and so is a name of up to
//! [`INLINE_NAME_LEN`](crate::name::INLINE_NAME_LEN) (46) octets — nearly
//! every MX host and policy domain; a longer one is allocated.
//!
//! The common inputs take a shortcut, and each shortcut accepts a subset
//! of the grammar with the same result, never more: a record that is
//! exactly `v=STSv1;`, white space, `id=` and the id, and an optional `;`;
//! a name of at most 46 octets of letters, digits, `-` and `.` with no two
//! of `-` and `.` side by side and neither first nor last (so no empty
//! label, no hyphen at a label's edge, no `xn--` label), checked sixteen
//! bytes at a time with the portable vectors of the `wide` crate; an `mx:`
//! line of such a name ending in LF or CRLF, checked in place in the body
//! and written straight into the policy's vector. Everything else — upper-case `XN--`,
//! `a--b`, U-labels, trailing white space, every error — goes through the
//! full rules, which give the error and its offset. Property tests check
//! that each shortcut agrees with the full rules (`plain_*_agree*` in the
//! unit tests). Figures are in the README, from `cargo bench --bench sts`
//! and `cargo bench --bench peers` (beside the other Rust MTA-STS parsers).
//!
//! # DANE for SMTP (RFC 7672, RFC 7671, RFC 6698)
//!
//! [`dane::verify_chain`](crate::dane::verify_chain) takes the chain the
//! server sent, the TLSA records the DNS layer found secure, the reference
//! names and the time, and says which record authenticated the server or
//! exactly why none did.
//!
//! ## Which records count
//!
//! - Usable for SMTP (RFC 7672 §3.1): usage DANE-TA(2) or DANE-EE(3),
//!   selector Cert(0) or SPKI(1), matching type Full(0), SHA2-256(1) or
//!   SHA2-512(2), a digest of the right length (32 or 64 bytes), and Full(0)
//!   data that is a DER certificate (selector 0) or SubjectPublicKeyInfo
//!   (selector 1). PKIX-TA(0) and PKIX-EE(1) are unusable (RFC 7672 §3.1.3).
//!   [`TlsaRecord::unusable_reason`](crate::dane::TlsaRecord::unusable_reason)
//!   says why a record is not.
//! - Digest agility (RFC 7671 §9): among the usable digest records of one
//!   usage and selector, only those of the strongest matching type count
//!   (SHA2-512 over SHA2-256). An unusable record (a SHA2-512 record of the
//!   wrong length) suppresses nothing, and Full(0) records are no digest and
//!   always count.
//! - No usable record at all is its own failure (`tlsa-invalid`); RFC 7672
//!   §2.2 then requires TLS without authentication, which is the engine's
//!   decision, not this function's.
//!
//! ## DANE-EE(3) (RFC 7672 §3.1.1)
//!
//! The server certificate alone: a record matches its DER (selector 0) or
//! its SubjectPublicKeyInfo (selector 1). No name check, no validity dates,
//! no chain: expired, self-signed and X.509 v1 certificates authenticate. A
//! DANE-EE record matching any other certificate of the chain means
//! nothing.
//!
//! ## DANE-TA(2) (RFC 7672 §3.1.2, RFC 7671 §5.2.2)
//!
//! - The anchor is a certificate the server sent *after* its own (depth ≥ 1)
//!   that matches a record. The server certificate is never its own anchor,
//!   even when the server repeats it further down. RFC 7672 §3.1.2 requires
//!   the server to send the anchor; when it does not, only a `2 0 0` record
//!   (which carries the whole anchor certificate) can serve.
//! - The path from the server certificate to the anchor is validated by
//!   rustls-webpki: signatures (its `ALL_VERIFICATION_ALGS`, with ring),
//!   validity dates, CA flags and path length of the certificates between,
//!   and the serverAuth extended key usage (a certificate without the
//!   extension is valid for any purpose, RFC 5280 §4.2.1.12). Chains may be
//!   unordered and padded; extra certificates are ignored.
//! - rustls-webpki keeps only an anchor's name and key, so the crate checks
//!   the anchor certificate itself, as OpenSSL (and so Postfix) does for a
//!   DANE-TA certificate at the top of the chain: it must be a CA
//!   (basicConstraints cA, or a self-issued v1 certificate), within its
//!   validity dates, and its pathLenConstraint must allow the CA
//!   certificates below it. This holds for a `2 0 0` certificate as well.
//! - Names (RFC 7672 §3.2.3): the server certificate must carry one of the
//!   reference names (the TLSA base domain and the MX host name, RFC 7672
//!   §3.2.2) as a DNS subject alternative name; a wildcard matches only as
//!   the whole left-most label; the subject CN is never used. A trailing dot
//!   on a reference name is ignored.
//! - When several anchors match, each is tried; if none authenticates, the
//!   most telling failure is reported: a name mismatch over expired dates
//!   over an invalid path over no match.
//!
//! ## Failures and TLS-RPT (RFC 8460 §4.3)
//!
//! | failure | result type |
//! |---|---|
//! | no usable record | `tlsa-invalid` |
//! | no record matches | `certificate-not-trusted` |
//! | the path does not reach the anchor (unknown issuer) | `certificate-not-trusted` |
//! | other path problems (not a CA, path length, EKU, signature) | `validation-failure` |
//! | a certificate of the path is expired or not yet valid | `certificate-expired` |
//! | no reference name in the server certificate | `certificate-host-mismatch` |
//! | no certificate, or the server certificate is not DER X.509 | `validation-failure` |
//!
//! ## What it does not do
//!
//! It checks certificates only. The TLS stack must make the server prove it
//! holds the key of the server certificate (the handshake signature); the
//! crate's rustls verifier (a later layer) does both. Revocation is not
//! checked: a DANE domain withdraws a key by changing its TLSA records.
//!
//! ## Implementation choices
//!
//! - One hash implementation: ring's SHA-256 and SHA-512. rustls-webpki
//!   (which the DANE-TA path validation needs) and rustls already bring
//!   ring, so a second implementation (`sha2`) would only add code.
//! - Certificates are read with `x509-parser` for what DANE needs and
//!   rustls-webpki does not expose — the SubjectPublicKeyInfo of any
//!   certificate including v1, an anchor's basicConstraints and dates, the
//!   subject CN and whether a DNS SAN is present. Where x509-parser alone
//!   is more lenient, the crate is stricter, and says so: the whole
//!   certificate must be well-formed DER (every TLV definite with a minimal
//!   length, SEQUENCE and SET constructed and every other universal type
//!   primitive, nothing after the certificate), the issuer and subject
//!   Names must be read whole (x509-parser stops at the first RDN that does
//!   not parse and keeps the rest unread), and an SPKI's outer SEQUENCE,
//!   AlgorithmIdentifier and key BIT STRING must carry their universal
//!   tags. A differential fuzz run against the former hand-written reader
//!   (issue `libraries:`) found one leniency left as it is: x509-parser
//!   reads an attribute type or extension id whatever the tag of its
//!   OBJECT IDENTIFIER; the certificates DANE reads are matched by hash
//!   from the domain's own TLSA records, so this lets no one else in.
//!   Fuzzed by the `verify_chain` target.
//! - The time is an argument (`UnixTime`), never read from the clock.
//!
//! # The policy cache (RFC 8461 §3.3, §5.1, §10)
//!
//! [`cache::PolicyCache`](crate::cache::PolicyCache) is keyed by policy
//! domain and holds, per domain, the last fetched policy with its id, fetch
//! time and expiry (fetch time + `max_age` after the clamp), and the last
//! failed fetch with its back-off.
//!
//! ## Decisions
//!
//! | TXT lookup | cached policy | decision |
//! |---|---|---|
//! | record, id = cached id | live | apply it, no fetch (§3.3) |
//! | record, other id | live | fetch; if it fails, apply the cached one (§5.1) |
//! | record | none or expired | fetch; if it fails, no policy |
//! | record, id failed < back-off ago | live / none | the cached one / no policy, no fetch |
//! | none, invalid, or failed | live | apply it (§5.1, §10.2) |
//! | none, invalid, or failed | none or expired | no policy |
//!
//! - A successful fetch replaces the entry, `mode: none` included (§8.3: how
//!   a domain withdraws), and clears the back-off. A failed fetch never
//!   touches the cached policy.
//! - An entry is live while `now < fetched_at + max_age`: with `max_age: 0`
//!   a policy applies to the delivery that fetched it and to no other.
//! - The back-off (default 5 minutes) is per (domain, id): a new id is
//!   fetched at once, so a domain that fixes its policy by publishing a new
//!   id is not held back.
//! - Times are whole seconds since the Unix epoch; `now` is always an
//!   argument.
//!
//! ## Single flight
//!
//! [`PolicyCache::lookup`](crate::cache::PolicyCache::lookup) runs the
//! caller's fetch function for the first lookup that needs it; concurrent
//! lookups of the same domain and id wait and get the same decision. If the
//! fetch function panics, the waiters get a fetch failure (so a live policy
//! still applies) and the next lookup fetches again. While a fetch is in
//! flight the entry is pinned: eviction passes over it, and a purge clears
//! it without removing the pin.
//!
//! ## Proactive refresh
//!
//! [`due_for_refresh`](crate::cache::PolicyCache::due_for_refresh) lists the
//! live policies fetched at least `refresh_interval` ago (default 24 h) or
//! with less than `refresh_fraction` of their `max_age` left (default one
//! half), so that an MTA re-fetches them before they expire (RFC 8461
//! §10.2: an attacker who can block the fetch must not be able to wait out
//! the cache). [`refresh`](crate::cache::PolicyCache::refresh) then fetches
//! even when the id is unchanged, which extends the lifetime.
//!
//! ## Memory and eviction
//!
//! The cache is split into shards (default 64), each an exact LRU list
//! under its own lock. `capacity` (default 100 000) bounds the whole cache:
//! when an insert goes over it, the inserting shard gives up its least
//! recently used unpinned entries. With one shard the order is exact LRU
//! for the whole cache; with many it is exact within each shard. A cached
//! domain costs about 315–350 bytes beyond its policy text (`cargo bench
//! --bench cache` prints the measurement).
//!
//! ## Snapshots and a shared store
//!
//! [`snapshot`](crate::cache::PolicyCache::snapshot) writes the live
//! policies as text sealed with a SHA-256 (each with its id and fetch
//! time; the expiry is recomputed from the policy's `max_age` on restore,
//! so a snapshot cannot extend a policy's life);
//! [`restore`](crate::cache::PolicyCache::restore) loads a snapshot whole
//! or not at all, skips what has expired and never replaces a newer
//! policy. With the `fs` feature, `save_snapshot` writes a file atomically
//! (temporary file, `fsync`, rename) and `load_snapshot` treats a missing
//! file as a first start. Only policies are saved; back-offs start afresh.
//!
//! A [`CacheStore`](crate::cache::CacheStore) behind the cache lets a
//! cluster of MTAs share policies: the cache reads it when memory has no
//! policy to apply (so a hit never waits for the store), writes each fetched policy through, and removes
//! purged domains. A store error only loses the sharing.
//!
//! # The decision engine (DESIGN.md "Destination controls and precedence")
//!
//! [`engine::DestinationControls`](crate::engine::DestinationControls)
//! holds a default profile, profiles for exact domains and for
//! `.example.com` (every subdomain, not the domain itself; the closest
//! entry wins), SMTP routes and two options. A profile not written in the
//! configuration file inherits from the `default` line. Defaults: TLS
//! Preferred, DANE Opportunistic, MTA-STS Off (as on the gateway, where
//! turning MTA-STS on for the default profile draws a warning), queue
//! lifetime 5 days.
//!
//! ## Per MX host, in order
//!
//! 1. A route exempts the domain from DANE and MTA-STS; only the route host
//!    is tried, under the TLS support (Required-Verify-Hosted-Domains also
//!    accepts the route host's name). With `route-policy-domain` (RFC 8461
//!    §3.4) the MTA-STS facts given are those of the route host's domain and
//!    apply to the route host.
//! 2. DANE, only behind a secure MX RRset (RFC 7672 §2.2.1): usable TLSA →
//!    TLS 1.2+ with DANE, MTA-STS not consulted for that host (even a host
//!    the MTA-STS policy does not list); bogus or failed TLSA lookup → the
//!    host is not used; secure but all unusable → TLS required,
//!    unauthenticated (MTA-STS may still add authentication); none, insecure
//!    or unavailable → on to MTA-STS. DANE Mandatory uses no host without
//!    usable TLSA records, and none at all when the MX RRset is not secure
//!    or the resolver cannot validate.
//! 3. MTA-STS: `enforce` (or `testing` with `testing-as-enforce`) → only
//!    listed hosts, TLS 1.2+, WebPKI for the MX host name (SAN only, no CN,
//!    RFC 8461 §4.2); `testing` → the TLS support decides delivery, and
//!    every failure enforce would have had is reported (RFC 8461 §5): when
//!    the TLS support checks no certificate, a WebPKI check of the MX host
//!    is added for TLS-RPT only; when it checks other names (the recipient
//!    domain under a Verify support), the MX host is checked beside it
//!    ([`TestingCheck::WebPki`](crate::engine::TestingCheck)); a host the
//!    policy does not list is still tried and reported as
//!    `certificate-host-mismatch`; `none`, no policy, or a policy that
//!    could not be had → the TLS support.
//! 4. The TLS support: No (plain text), Preferred (TLS if offered),
//!    Required (TLS), Preferred-Verify (TLS if offered, WebPKI for the
//!    recipient domain reported but not enforced), Required-Verify (TLS,
//!    WebPKI for the recipient domain; a certificate with no DNS SAN may
//!    match by CN the domain or the MX host), Required-Verify-Hosted-Domains
//!    (TLS, WebPKI for the domain, the MX host or the route host). Without
//!    DANE or MTA-STS the lowest TLS version is left to the MTA (TLS 1.0).
//!
//! MTA-STS or DANE on with TLS support No is a configuration error that
//! `validate` and `parse` report; at delivery time they are skipped and the
//! TLS support (plain text) applies.
//!
//! ## Assessment and verdict
//!
//! Each attempt is assessed against its host's requirement: an unreachable
//! host, missing STARTTLS where TLS is required, a TLS version below the
//! minimum, or a failed certificate check (unless it is report-only) move
//! on to the next host. Under Required-Verify, a certificate that names the
//! MX host but not the recipient domain stops the attempts at once (every
//! MX of a hosted service would do the same) with the reason "peer cert does
//! not match domain …: the destination looks hosted …; use
//! Required-Verify-Hosted-Domains".
//!
//! The verdict is Deliver on the first host that passes (with the level
//! reached and every failure on the way, for TLS-RPT). Otherwise it is
//! Defer: security failures are temporary. Bounce comes only once the
//! message is older than the queue lifetime, and when an enforced MTA-STS
//! policy caused a security failure, only after the policy was re-checked
//! for a newer id (RFC 8461 §5.1): until then the Defer has
//! `recheck_policy` set. Enhanced status codes (RFC 3463): X.7.4 when
//! STARTTLS was missing, X.7.5 for other security failures, X.4.4 when no
//! host could be reached; 2.0.0 on delivery.
//!
//! # TLS-RPT (RFC 8460)
//!
//! [`report::TlsRptRecord`](crate::report::TlsRptRecord) parses the
//! `_smtp._tls` record: `v=TLSRPTv1` first, `rua` required with at least one
//! `mailto:` or `https:` URI (other schemes are ignored), unknown
//! extensions ignored, the first of a duplicated field wins; an empty field
//! between two `;` is tolerated. [`report::select_tlsrpt`](crate::report::select_tlsrpt)
//! applies the exactly-one rule of §3 to the RRset.
//! [`report::Aggregator`](crate::report::Aggregator) counts sessions per
//! policy (type, text, domain, MX patterns) and failure details, and renders
//! the §4.4 JSON of one policy domain; empty optional members are left out;
//! IP addresses are written in canonical form. File names follow §5.1.
//!
//! ## Collecting (§4.1)
//!
//! [`report::Collector`](crate::report::Collector) records the sessions of
//! every [`Delivery`](crate::engine::Delivery) outcome into a
//! [`ReportStore`](crate::report::ReportStore): [`MemoryStore`](crate::report::MemoryStore),
//! or [`JournalStore`](crate::report::JournalStore) (feature `fs`), an
//! append-only journal of checksummed lines synced once per `record` call,
//! compacted by atomic renames; a killed writer loses no recorded call and
//! counts none twice (tested by killing one with SIGKILL). Stores only add
//! increments, so collectors of several nodes sharing one store merge
//! exactly. Sessions of one call with the same policy and failure are one
//! increment. Windows are UTC days, 00:00:00Z to 23:59:59Z (hours for tests
//! and impatient operators); the sessions of a call go to the window of the
//! `now` it is given, so an MTA passes the time of the delivery.
//!
//! ## Reporting (§4.4, §5.1)
//!
//! A window is due once closed plus a spread delay drawn from the node seed
//! (up to an hour by default: §4.1 asks senders not to report at 00:00Z all
//! at once). Each policy domain gets one report with `organization-name`,
//! `contact-info`, a report id unique to window, domain and node, the date
//! range, and one entry per policy with its `policy-domain` — also for
//! `no-policy-found`. [`AggregateReport::validate`](crate::report::AggregateReport::validate)
//! refuses what receivers refuse (parsedmarc rejects reports without
//! `policy-domain`, `contact-info` or `report-id`); reports are gzipped.
//!
//! ## Delivering (§3, §5.3, §5.4, §5.5)
//!
//! [`queue_due`](crate::report::queue_due) looks up `_smtp._tls` of each
//! domain when the report is made (not when sessions were recorded: a
//! record published or changed during the day counts), applies the
//! exactly-one rule, and puts one [`OutboxEntry`](crate::report::OutboxEntry)
//! per report with **every** `rua` in an [`OutboxStore`](crate::report::OutboxStore)
//! (memory, or [`DirOutbox`](crate::report::DirOutbox): a file per report,
//! replaced atomically). No record, several, or an invalid one: no report.
//! A lookup that fails (timeout, SERVFAIL, bogus) keeps the window for the
//! next call, for at most a day after the close; then that domain's report
//! is dropped so that one broken domain does not hold the others back. A
//! window is forgotten only once its reports are in the outbox.
//!
//! [`send_due`](crate::report::send_due) tries each due destination:
//! `https:` through a [`ReportPoster`](crate::report::ReportPoster)
//! ([`HttpsReportPoster`](crate::fetch::HttpsReportPoster): POST,
//! `Content-Type: application/tlsrpt+gzip`, the certificate checked, no
//! redirects, one timeout; 2xx delivered, 5xx and network errors retried,
//! any other status refused for good), `mailto:` as the complete §5.3
//! message ([`OutgoingReport::mail_message`](crate::report::OutgoingReport::mail_message):
//! `multipart/report; report-type="tlsrpt"`, `TLS-Report-Domain`,
//! `TLS-Report-Submitter`, the Subject "Report Domain: … Submitter: …
//! Report-ID: <…>" in plain folded text, a text part, the report named per
//! §5.1, and `TLS-Required: No`) handed to the MTA's
//! [`MailSubmitter`](crate::report::MailSubmitter) — its own queue, or
//! `SmtpSubmitter` (feature `submission`) to a submission server. A destination that fails
//! is retried after 5 minutes, doubling up to 6 hours, and given up 4 days
//! after the report was made ([`RetryPolicy`](crate::report::RetryPolicy));
//! an entry leaves the outbox only when each destination is delivered or
//! given up. Unlike senders that stop at the first accepted destination,
//! every `rua` gets the report.
//!
//! ## The loop guard
//!
//! A report about failing to deliver reports would beget another. The MTA
//! marks report mails with
//! [`DeliveryContext::tls_required_no`](crate::engine::DeliveryContext::tls_required_no)
//! — the engine never reads message headers — and then
//! [`plan_for`](crate::engine::DestinationControls::plan_for) plans them
//! without the recipient's DANE and MTA-STS (RFC 8689 §5: TLS when offered,
//! delivered even when the certificate fails; TLS support `No` stays `No`),
//! and [`Delivery::finish`](crate::engine::Delivery::finish) yields no
//! sessions for them: report deliveries are never themselves reported.
//!
//! ## Postfix's events
//!
//! Postfix ≥ 3.10 reports its TLS sessions through libtlsrpt, one JSON
//! datagram per delivery request on a Unix socket
//! ([`postfix::tlsrpt`](crate::postfix::tlsrpt) gives the format and how a
//! datagram becomes sessions). [`TlsrptListener`](crate::postfix::TlsrptListener)
//! takes them into a collector at the time they arrive, so the socketmap
//! server that answers Postfix's TLS policy queries also makes its reports.
//! Counts agree with sys4's tlsrpt-collectd for what Postfix sends (tested
//! side by side); they differ on purpose for a successful entry that
//! carries failure details (not counted here, so that a report never lists
//! more failures than failed sessions) and for a failed entry without
//! details (a `validation-failure` session here).
//!
//! # A cluster on Redis (feature `redis`)
//!
//! What is shared, and how consistent it is:
//!
//! - Policies: [`cache::RedisStore`](crate::cache::RedisStore) is the
//!   cache's second tier. The local cache answers whatever it holds; Redis
//!   is asked only when the local cache has no policy to apply, so a value
//!   on Redis can never replace a live local policy. Values carry a format
//!   version and are validated like snapshots (id, policy text); one that
//!   does not read is ignored and counted. The key's TTL is the policy's
//!   remaining lifetime, so Redis never serves an expired policy.
//! - TLS-RPT counts: increments only (`HINCRBY`, one `MULTI`/`EXEC` per
//!   call), so any number of nodes sum exactly; a call that fails counts
//!   nothing, and the MTA's delivery does not wait for it.
//! - One report per domain and day: the node that claims a window (`SET NX
//!   PX`, five minutes, renewed by its holder) makes its reports; the
//!   others skip it. The outbox lives on Redis too, and each entry is sent
//!   by the node holding its lease. A node that dies holding a lease
//!   delays the window or entry until the lease expires, never loses it.
//!
//! Faults: Redis down, slow or partitioned — each call fails within its
//! timeout, then at once for two seconds (a lookup holds a cache shard lock
//! while it asks), and a warning is logged with `tracing`; the cache
//! decides from what it holds (no live policy is lost: the local tier is
//! untouched), a node without the domain fetches it itself, and TLS-RPT
//! counts of that moment are lost (the call reports
//! [`StoreError::Unavailable`](crate::report::StoreError)). Redis restarted
//! empty: nodes repopulate it with their next fetches and counts. `failures`
//! and `is_degraded` on the stores are the metrics.
//!
//! - Fetches (through the resolver with
//!   [`ResolverConfig::cache_store`](crate::resolver::ResolverConfig::cache_store)):
//!   a node about to fetch claims the domain (`SET NX PX`, the fetch
//!   timeout plus five seconds); the others wait, looking in Redis every
//!   50 ms, for the policy the holder writes there, up to their own fetch
//!   timeout, then fetch themselves. A failed fetch sets a shared back-off
//!   (the cache's, five minutes by default), so a blocked policy host is not
//!   tried by every node. Redis unreachable: each node fetches alone.
//!
//! - Refreshes (RFC 8461 §10.2): each domain's refresh comes at its own
//!   moment within [`CacheConfig::refresh_spread`](crate::cache::CacheConfig::refresh_spread)
//!   (an hour by default, drawn per process, capped at half the margin the
//!   fraction rule leaves), on a single node too. With a shared store, a
//!   node whose policy is due first looks in Redis: a policy with the same
//!   id fetched after its own is taken as the refresh; a refresh another
//!   node is making (its lease) is left to it; otherwise the node refreshes
//!   and its policy lands in Redis for the others.
//!
//! # The policy fetch (RFC 8461 §3.3; feature `fetch`)
//!
//! [`fetch::PolicyFetcher`](crate::fetch::PolicyFetcher) fetches
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` with ureq and rustls
//! (ring): TLS 1.2 or later, a certificate valid for `mta-sts.<domain>`
//! chaining to the webpki roots (default), the operating system's store
//! (loaded once), or custom roots; redirects are never followed (a 3xx is
//! its own error, with the `Location`); only status 200 serves a policy;
//! the media type must be `text/plain` (any case, parameters allowed); a
//! declared `Content-Length` over 64 KiB fails before reading, and the body
//! is cut at 64 KiB whatever the server declares; one overall timeout
//! covers name lookup, connection, TLS and every read, so a server that
//! drips bytes cannot hold a fetch past it. An HTTP CONNECT proxy is used
//! when configured, or from `https_proxy` unless that is turned off. No
//! HTTP cache is involved. The name lookup is pluggable, so the resolver
//! façade can use its own DNS.
//!
//! Each failure is a [`FetchError`](crate::fetch::FetchError) that says
//! what to fix, knows whether it is temporary (network trouble, 5xx), and
//! maps to a TLS-RPT result type: certificate and TLS failures to
//! `sts-webpki-invalid`; a body that is not a policy (wrong media type, too
//! large, invalid) to `sts-policy-invalid`; everything else to
//! `sts-policy-fetch-error`.
//!
//! # DNS and DNSSEC (RFC 7672 §2; feature `dns`)
//!
//! [`dns::DnsResolver`](crate::dns::DnsResolver) asks the configured
//! servers (or those of `/etc/resolv.conf`) itself and reports, with every
//! answer, its DNSSEC status (RFC 4035 §4.3) and TTL, telling NXDOMAIN and
//! NODATA (RFC 2308) apart from failures. hickory-proto supplies the
//! message and record types, the canonical signed data and the signature
//! check (ring); the transport, the cache and the validation procedure are
//! the crate's, because hickory-resolver 0.26's validator takes wildcard
//! answers in NSEC zones for bogus (hickory-dns issue #2882, PR #3812: a
//! failing test, no fix released), weakens statuses when a zone is signed
//! twice, hides a bogus A RRset next to a good AAAA and loses CNAMEs from
//! its cache.
//!
//! ## Transport
//!
//! UDP with EDNS(0) offering 1232 bytes (no fragmentation on any path), the
//! id and question of the answer checked (RFC 5452), and **TCP when the
//! answer is truncated** (RFC 7766), in every mode: a truncated answer is
//! never an error by itself. Each attempt has the configured timeout;
//! SERVFAIL and REFUSED try the next server.
//!
//! ## Validation (DNSSEC mode `Validate`)
//!
//! Queries carry DO and CD, so that the servers return signatures and do
//! not filter bogus data; the crate decides. The rule: **secure only with
//! proof; bogus when a required proof is missing or wrong; extra signatures
//! and rollovers never weaken a status.**
//!
//! - An RRset (each CNAME of a chain, and the records at its end) is secure
//!   when *one* RRSIG over it verifies — right signer (the owner or above;
//!   the parent for DS), within its validity (RFC 4034 §3.1.5 serial
//!   arithmetic), key tag and algorithm of a zone key that is not revoked —
//!   with a key of a DNSKEY RRset that is itself secure: signed by a key
//!   that matches a secure DS of the parent (RFC 4035 §5.2), up to the trust
//!   anchor. Other signatures (a second ZSK during a double-signature
//!   rollover, a second algorithm during an algorithm rollover, stale
//!   keys) are never held against it (RFC 6840 §5.11).
//! - A wildcard expansion (RRSIG labels below the owner's) is secure only
//!   with the proof that no closer name exists: a verified NSEC covering
//!   the name whose closest encloser is the wildcard's parent (RFC 4035
//!   §5.3.4), or a verified NSEC3 covering the next closer name (RFC 5155
//!   §8.8). An NSEC3 opt-out span there makes it insecure (RFC 5155 §9.2).
//! - A denial is secure only with verified NSEC or NSEC3 records of the
//!   signing zone that prove it: NODATA (the name's bitmap without the type
//!   and without CNAME; a delegation's NSEC denies only DS), an empty
//!   non-terminal, NXDOMAIN (name and the closest encloser's wildcard
//!   covered), NODATA at a wildcard (RFC 4035 §5.4, RFC 5155 §8.4–§8.7).
//!   An empty answer without a proof from a signed zone is bogus, never
//!   secure NODATA.
//! - An RRset or a denial **without signatures** is insecure only where a
//!   secure denial of DS proves an unsigned delegation at or above it (NS
//!   without DS in the bitmap, or an NSEC3 opt-out span); the crate walks
//!   the DS records from the anchor down to find it. In a signed zone such
//!   an answer is bogus (signatures stripped).
//! - Insecure rather than bogus: a zone whose DS records name only
//!   algorithms or digests the crate cannot check (Ed448, algorithm 16,
//!   which ring lacks; RFC 4035 §5.2, RFC 6840 §5.2); NSEC3 with more than
//!   [`MAX_NSEC3_ITERATIONS`](crate::dns::MAX_NSEC3_ITERATIONS) (150)
//!   iterations or an unknown hash (RFC 9276 §3.2); an NXDOMAIN in an NSEC3
//!   opt-out span.
//! - A bogus answer is an error ([`DnsErrorKind::Bogus`](
//!   crate::dns::DnsErrorKind::Bogus)), never data; an MX host whose A or
//!   AAAA RRset is bogus (or SERVFAIL, a validating resolver's word for
//!   bogus) is not used, even when the other family is good (RFC 7672
//!   §2.2.2). When one family times out and the other answers, the answer
//!   given is used with its own status.
//! - Trust anchors: DNSKEY records of the root (the IANA KSKs by default).
//!   The chain always starts at the root; anchors at other names are not
//!   used as starting points.
//! - Not supported: DNAME (a synthesised CNAME is unsigned, so a chain
//!   through a DNAME in a signed zone is bogus: mail waits, never a
//!   downgrade); NSEC3 hash algorithms other than SHA-1 (insecure).
//!
//! Keys are fetched once per zone at a time: concurrent lookups that need
//! the same zone's DNSKEY RRset (and its DS) wait for the first fetch and
//! read the result from the key cache; the wait is bounded by one query
//! timeout, after which a lookup fetches on its own, so that a gate can
//! slow a lookup (a hostile chain that leads back to its own zone) but
//! never hang it. `DnsResolver::key_fetches` counts the fetches.
//!
//! ## A path that cannot validate
//!
//! Where the servers strip or break DNSSEC (a home router, some corporate
//! resolvers), the root's DNSKEY RRset comes back without signatures and
//! nothing can be secure. The resolver then says so instead of calling
//! every answer bogus: [`DnsResolver::health`](crate::dns::DnsResolver::health)
//! is [`Health::CannotValidate`](crate::dns::Health::CannotValidate), an
//! error is logged once, and by default lookups fail with
//! [`DnsErrorKind::CannotValidate`](crate::dns::DnsErrorKind::CannotValidate)
//! (temporary: mail waits, DANE is never silently dropped, since an
//! attacker on the path could strip signatures on purpose). With
//! [`DnsConfig::degraded`](crate::dns::DnsConfig::degraded) the resolver
//! runs degraded instead: every status indeterminate, DANE unavailable as
//! with DNSSEC off, each such answer counted by
//! [`DnsResolver::degraded_answers`](crate::dns::DnsResolver::degraded_answers).
//! [`DnsResolver::probe`](crate::dns::DnsResolver::probe) checks the path at
//! start; the socketmap server refuses to start on such a path unless its
//! zone says `dnssec-broken=degrade`. A root DNSKEY RRset that is signed
//! but by no anchored key is bogus (a wrong anchor or a forgery).
//!
//! ## Cache
//!
//! Answers, positive and negative, are kept for their TTL (a denial for
//! min(SOA TTL, SOA MINIMUM), RFC 2308 §5, at most one hour; anything at
//! most a day; at most 65 536 answers) **with the CNAME chain that led to
//! them**, so an alias answered from the cache still names its canonical
//! name and the RFC 7672 §2.2.2 TLSA base domain stays right however the
//! lookups interleave. Zone keys are kept for the DNSKEY and DS TTLs.
//! Bogus answers are never kept.
//!
//! ## Tested zone shapes
//!
//! `tests/bind.rs`, against zones signed at test time by BIND 9's
//! `dnssec-signzone` and served by `named`, in validate and off modes, and
//! through `unbound` in trust-AD mode: NSEC; NSEC3 with 0 iterations and no
//! salt, with opt-out (and an unsigned delegation in the span), salted
//! with 10 iterations; algorithms 8 (RSA-2048), 13, 14, 15 and 16; a ZSK
//! double-signature rollover (NSEC and NSEC3); an algorithm rollover with
//! a DS for one algorithm; an unsigned delegation; a DS matching no key;
//! expired and not-yet-valid signatures; A RDATA changed after signing
//! (next to a good AAAA, and alone); wildcard MX, A and TLSA; wildcard
//! NODATA; NXDOMAIN several labels below the closest encloser; empty
//! non-terminals; CNAME chains within a zone, across zones and into an
//! unsigned zone; a TXT answer over 1232 bytes (TCP). Every table is asked
//! twice on one long-lived resolver and backwards on another; a stripping
//! proxy stands for a path that cannot validate. `tests/dns.rs` keeps the
//! hickory-server world for live edits, SERVFAIL and silent names.
//!
//! ## The other modes
//!
//! - **MX** (RFC 5321 §5.1): hosts in preference order (equal preferences
//!   in the server's order), duplicates removed, names that are not host
//!   names dropped with a warning, at most 32 kept; no MX records → the
//!   domain itself, with the status of the MX denial; a null MX (RFC 7505)
//!   and NXDOMAIN are permanent errors.
//! - **TLSA base domain** (RFC 7672 §2.2.2): the MX host's A and AAAA
//!   lookups (CNAMEs followed) must be secure for TLSA to be looked up at
//!   all (insecure: no DANE; not validated: DANE unavailable); after a
//!   CNAME chain, TLSA is looked up at the end of the chain and, only on a
//!   secure denial there, at the MX name. A CNAME into an unsigned zone
//!   makes the chain insecure.
//! - **Trust-AD**: the AD bit (queries set AD and DO, RFC 6840 §5.7) of a
//!   validating resolver that must be on a loopback address, as RFC 7672
//!   §2.1.1 requires a trusted path — any other address, or more than one
//!   server, is refused when the resolver is made. A bogus answer reaches
//!   us as SERVFAIL, a failure, which has the same effect (the host is not
//!   used). Truncated answers are asked again over TCP.
//! - **Off**: every status is indeterminate and TLSA is never asked
//!   ([`TlsaFacts::Unavailable`](crate::engine::TlsaFacts::Unavailable):
//!   DANE unavailable, never bogus).
//! - **Blocking and async**: `dns::DnsResolver` is async and runs on the
//!   caller's tokio runtime (it owns none); `dns::blocking::DnsResolver`
//!   owns a two-thread runtime, blocks the calling thread, and returns
//!   `InAsyncContext` (temporary, logged as an error: a misuse defers mail,
//!   never bounces it) instead of panicking when called from async code.
//!   Dropping either inside async code is safe.
//!
//! # The resolver façade (feature `resolver`)
//!
//! [`resolver::PolicyResolver`](crate::resolver::PolicyResolver) is one
//! thread-safe object made from a DNS configuration, a fetch configuration,
//! a cache configuration and destination controls (refused when
//! [`validate`](crate::engine::DestinationControls::validate) finds an
//! error). `resolve(domain)` returns the engine's plan:
//!
//! 1. The profile and route of the destination decide what is asked:
//!    MTA-STS only when the profile turns it on; TLSA only when DANE support
//!    is not `None`; no MX lookup for a routed destination (the route host
//!    is the only host).
//! 2. The MTA-STS discovery and the MX lookup run together. The discovery
//!    looks up `_mta-sts.<domain>` (CNAMEs followed), applies the
//!    exactly-one rule, and asks the cache; a cache hit is answered in
//!    place, a fetch runs on tokio's blocking pool with single flight
//!    ([`PolicyCache::begin`](crate::cache::PolicyCache::begin)), so any
//!    number of concurrent resolves of a domain make one HTTPS request.
//! 3. The TLSA facts of all MX hosts are looked up together.
//! 4. Errors only when no plan can be made: an invalid domain, a failed MX
//!    lookup (temporary: defer), NXDOMAIN or a null MX (permanent: bounce).
//!    Failed TXT lookups and fetches are facts (RFC 8461 §5: deliver as
//!    without MTA-STS, unless a cached policy is live).
//!
//! `refresh_due()` refreshes what the cache lists (a new TXT lookup, then a
//! fetch unless the id is backing off), 16 domains at a time; the blocking
//! form's `start_refresher(every)` runs it on a thread that stops when its
//! handle is stopped or dropped (an async MTA calls `refresh_due().await`
//! from a task of its own). With the `route-policy-domain` option (RFC 8461
//! §3.4, smart hosts), the route host's name as configured is the policy
//! domain. The policy host's addresses are looked up with the resolver's
//! DNS servers before the fetch, which then connects to them
//! ([`PolicyFetcher::fetch_at`](crate::fetch::PolicyFetcher::fetch_at)),
//! unless the fetch configuration brings its own lookup: the A records, the
//! AAAA records only when there is no A record, and without DNSSEC
//! validation ([`DnsResolver::connect_addresses`](crate::dns::DnsResolver::connect_addresses)):
//! MTA-STS rests on WebPKI (RFC 8461 §3.3), a forged address ends in a
//! failed handshake as a bogus one ended in no fetch, and a path that
//! cannot validate does not stop policy fetches.
//!
//! Log events (`tracing`, target `smtp_tls_policy::…`), one info line
//! per changed decision and debug for every answer that repeats one: at
//! info, "Applying MTA-STS policy for the domain (…)" when a policy was
//! just fetched (with id and mode), "No MTA-STS policy applies to the
//! domain (…)" when a fetch failed with no live policy, the fetch's own
//! "Successfully fetched / Failed to fetch MTA-STS policy for the domain
//! (…)" (once per fetch, with the reason), and the delivery's "MTA-STS
//! policy for the domain (…) Successful. / Failed." ([`finish`](crate::resolver::PolicyResolver::finish));
//! at debug, "Successfully fetched MTA-STS TXT record for domain (…)",
//! "Invalid / Failed to fetch MTA-STS TXT record for domain (…)", "Valid
//! cache entry found for the domain (…)" and "Applying MTA-STS policy …"
//! for a policy from the cache. A busy server thus writes a line when
//! something changes, not three per answer.
//!
//! # The rustls verifier (feature `rustls`)
//!
//! [`verify::TlsSetup`](crate::verify::TlsSetup) turns one MX host's plan
//! requirement into a rustls client configuration and server name:
//!
//! - **WebPKI**: the chain must reach the given roots (webpki-roots, the OS
//!   store, or custom) with the server-auth usage, dates checked; then a DNS
//!   SAN must match one of the plan's names (RFC 6125 wildcards as
//!   rustls-webpki applies them). The subject CN is compared only with the
//!   names the plan lists for it, and only when the certificate has no DNS
//!   SAN at all (the gateway's Required-Verify rule); MTA-STS plans list
//!   none (RFC 8461 §4.2). A mismatch records whether the certificate names
//!   the connected host — the mark of a hosted destination, which the
//!   engine turns into "use Required-Verify-Hosted-Domains".
//! - **DANE**: the presented chain, the plan's usable TLSA records and names
//!   go to [`dane::verify_chain`](crate::dane::verify_chain) with rustls's
//!   clock.
//! - **Handshake signatures**: always verified, with the public key read
//!   from the presented certificate (x509-parser; any X.509 version), trying the algorithms rustls maps the signature scheme to
//!   (one in TLS 1.3, where PKCS#1 v1.5 schemes are refused). rustls's own
//!   helpers would refuse a v1 certificate, which DANE-EE allows.
//! - **SNI**: the TLSA base domain under DANE (RFC 7672 §8.1), the MX host
//!   otherwise (RFC 8461 §4.2 asks for the MX host's name).
//! - **Versions and resumption**: TLS 1.2 and 1.3 (1.3 alone when the plan
//!   asks for it); resumption disabled, so no session negotiated under one
//!   requirement is resumed under another.
//! - **When a check fails**: under `OnAuthFailure::Fail` the handshake fails
//!   (the MTA cannot send by mistake); under `DeliverAndReport` it goes on.
//!   Either way the outcome is kept, and [`TlsSetup::attempt`](
//!   crate::verify::TlsSetup::attempt) gives the `Attempt` for the engine —
//!   `Tls` with the failed check when the certificate was judged, or
//!   `HandshakeFailed` when the handshake failed before that, or when the
//!   handshake signature did not verify (the server does not hold the key).
//!
//! The resolver's [`verdict`](crate::resolver::PolicyResolver::verdict)
//! wraps the engine's and logs "MTA-STS policy for the domain (…)
//! Successful." (a delivery that met an applied policy, WebPKI-verified or
//! better, with nothing to report) or "… Failed." with the reason.
//!
//! # Postfix (socketmap)
//!
//! [`postfix::policy_reply`](crate::postfix::policy_reply) summarises a
//! plan for Postfix, which applies one policy per destination and does its
//! own DNS; the table is in the [`postfix`](crate::postfix) module docs.
//! Decisions:
//!
//! - DANE takes precedence as in the engine: with any DANE-authenticated
//!   host, `dane-only` when every host is, when MTA-STS is enforced (every
//!   host must then be authenticated, and DANE hosts exist), or when DANE
//!   support is mandatory; otherwise `dane`. Postfix cannot mix DANE and
//!   MTA-STS per host.
//! - `TEMP` only when the plan excludes every host (deferring is what the
//!   engine would do); a failed or unusable MX lookup is `TEMP` too
//!   (Postfix's own lookup would fail the same way; an MX RRset of names
//!   that cannot be hosts, such as `_mx.attacker.example`, may be forged),
//!   while NXDOMAIN and null MX are `NOTFOUND` so that Postfix bounces on
//!   its own terms — except that an enforced MTA-STS policy survives any MX
//!   answer: whatever the MX lookup said (a bogus RRset aside, which
//!   defers), the reply is the policy's `secure match=…`, so a forged MX
//!   answer cannot switch the policy off. Library callers get the same
//!   facts from [`ResolveError::sts`](crate::resolver::ResolveError::sts).
//! - MTA-STS `testing` is `NOTFOUND` (deliver as main.cf says), unless the
//!   zone has strict testing; `none`, no policy, or a policy that could not
//!   be had are `NOTFOUND` (RFC 8461 §5). A reply overrides main.cf's
//!   `smtp_tls_security_level`, so no reply is weaker than what main.cf
//!   would choose: a policy that could not be had is `NOTFOUND`, or the
//!   level the zone names ([`ZoneOptions::unavailable`](crate::postfix::ZoneOptions),
//!   `sts-unavailable` in the program's zones), with `policy_failure` under
//!   `tlsrpt=yes` — never `OK may` by itself.
//! - Policy text never becomes Postfix attributes: with `tlsrpt=yes`, a
//!   policy line that cannot be written inside `{ … }` (a brace, a control
//!   or non-ASCII character) leaves out every `policy_string`; `mx`
//!   patterns equal to Postfix's `match=` keywords (`hostname`, `nexthop`,
//!   `dot-nexthop`) are never written, and a policy with no other pattern
//!   is `TEMP`.
//! - Keys that are not domain names (`[ip]:port`, `host:port`) are
//!   `NOTFOUND`; keys are matched case-insensitively, a trailing dot
//!   ignored.
//! - Limits: a request netstring of at most 1 KiB; malformed or oversized
//!   → `PERM` and the connection is closed; idle connections closed after
//!   300 s; a request must arrive whole, and each reply be taken by the
//!   client, within the request timeout (10 s; a client that trickles a
//!   byte per idle period, or pipelines and never reads, is closed); at
//!   most 1 000 connections (then `TEMP` and close), a connection's slot
//!   given back however its thread ends; replies over Postfix's
//!   100 000-character limit become `TEMP`.
//! - Memory is bounded in bytes as well as entries: the policy cache by
//!   [`CacheConfig::max_bytes`](crate::cache::CacheConfig::max_bytes)
//!   (128 MiB, each shard its share; 100 000 real policies take about
//!   30 MB, as many hostile 64 KiB ones would take 6.5 GB), the kept
//!   replies by [`MAX_KEPT_REPLY_BYTES`](crate::postfix::server::MAX_KEPT_REPLY_BYTES)
//!   (32 MiB; no one reply over a sixteenth of it is kept), the DNS answer
//!   cache by [`ANSWER_CACHE_BYTES`](crate::dns::ANSWER_CACHE_BYTES) (64 MiB
//!   of records in wire form, beside its 65 536 entries: a hostile zone's
//!   60 KB TXT answers would otherwise take 4 GB).
//! - Configuration values never panic: durations are bounded where the
//!   system would overflow (`reply_ttl` at most 1 h, DNS and fetch timeouts
//!   at most 1 h, DNS attempts 1 to 10; zero socket timeouts are 1 ms).
//! - An `OK` or `NOTFOUND` reply is reused for the same request for
//!   `reply_ttl` (1 s by default, 0 turns it off): Postfix asks once per
//!   delivery attempt, so bursts to one domain are common, and one second
//!   is below any DNS TTL that matters; `TEMP` and `PERM` are never reused.
//! - The server is one event loop (a current-thread tokio runtime on a
//!   thread of its own) for every connection and every lookup, the async
//!   resolvers of the zones on it; policy fetches go to its blocking pool.
//!   A thread per connection cost a context switch per query; the loop
//!   wakes once for every connection that is ready. Each connection is a
//!   task with the same deadlines as before (idle, request, write), its
//!   slot given back however the task ends; at shutdown open connections
//!   get one second. Measured: CPU per warm query 1.14× a do-nothing
//!   responder's (README, `postfix_compare`).
//! - The server is run by the operator's program (below), a package of
//!   its own, so that the library keeps no server-only dependency.
//!   Snapshots per zone (`<dir>/<zone>.snapshot`, the zone's name with
//!   every byte but `a`–`z`, `0`–`9` and `-` written as `_` and two hex
//!   digits, so `rpt.a` and `rpt_a` never share a file:
//!   [`snapshot_path`](crate::postfix::server::snapshot_path)) are restored
//!   at start and saved every 10 minutes, on SIGHUP and at SIGTERM/SIGINT;
//!   each save writes a temporary file of its own and renames it, so saves
//!   at the same moment never corrupt each other. An entry of a snapshot
//!   whose policy this version does not accept is left out (logged) and the
//!   others are restored; a snapshot whose framing or checksum is wrong is
//!   refused whole.
//! # The operator's program (`cli/`, binary `smtp-tls-policy`)
//!
//! A package of the workspace beside this library, built on maintained
//! crates: clap (the command line), serde + toml (the configuration),
//! tracing-subscriber (text or JSON logs), prometheus-client (metrics),
//! tiny_http (the web endpoints), sd-notify and listenfd (systemd). The
//! library gained only what a server needs from outside and any MTA could
//! use: [`ServerObserver`](crate::postfix::server::ServerObserver),
//! [`SocketmapServer::replace_zones`](crate::postfix::server::SocketmapServer::replace_zones)
//! and [`SocketmapServer::start_on`](crate::postfix::server::SocketmapServer::start_on).
//! Decisions:
//!
//! - **Configuration.** One TOML file (`/etc/smtp-tls-policy/config.toml`;
//!   `config init` prints it with every default, commented; the .deb ships
//!   exactly that). Unknown keys, wrong types and bad values are refused
//!   by the TOML reader with `FILE:LINE:COLUMN: …`; what needs a second
//!   look (an anchor or roots file that does not parse, a Redis URL, a
//!   non-loopback web address without `allow-remote`, an unknown
//!   `sts-unavailable` level, a `tlsrpt.from` without a domain) is
//!   reported at the value's own position. `config check` also builds
//!   every zone, so a resolver path that cannot validate DNSSEC is found
//!   before the service starts (the unit's `ExecStartPre`).
//! - **Reload (SIGHUP).** The file is read and every zone built before
//!   anything changes; an error leaves the running configuration as it is
//!   (logged with line and column, counted as
//!   `config_reloads_total{outcome="refused"}`). The new zones take over
//!   each old zone's cached policies (an in-memory snapshot), so a reload
//!   never refetches; kept replies are forgotten. Listeners, the admin
//!   socket, the web address, logging and TLS-RPT are bound at start: a
//!   change there is logged as needing a restart.
//! - **Admin socket.** A UNIX-domain stream socket, owner-only (`0600`)
//!   in the service's runtime directory: the server's user and root may
//!   use it, nobody over the network. One request line, the answer `ok` or
//!   `error: …` and a body. `cache export`/`import` carry the snapshot
//!   format of the cache files (checksummed; an entry this version does
//!   not accept is left out and listed). `query` resolves through the
//!   zone's resolver as a Postfix query would (cached policies apply) and
//!   explains each host's requirement and basis. `report send-now` runs
//!   the sender's pass at once — closed windows are queued, destinations
//!   whose retry time has come are tried; a destination in back-off waits
//!   for its time (RFC 8460 §5.5 asks senders not to hammer receivers).
//! - **Metrics.** Counted where they happen — the socketmap server tells
//!   its observer of each answer and connection event on its event loop
//!   (atomic counters; label values are configured zone names, reply
//!   kinds and fixed outcome names only, so no request can grow the
//!   series) — and read at scrape time from the caches and the TLS-RPT
//!   sender. OpenMetrics when the scraper asks for it (Prometheus does),
//!   otherwise Prometheus's text format with counter families named by
//!   their `_total` samples, which `promtool check metrics` accepts.
//! - **Web page.** Loopback by default; plain HTML with a
//!   `Content-Security-Policy` that allows no script, every value escaped.
//!   `/check?domain=` runs the checker through a zone's DNS, anchor,
//!   roots, proxy and controls (`&map=NAME`, default the first zone): the
//!   view only the MTA itself has. At most four checks run at once; more
//!   get 503. Without `allow-remote`, a request whose `Host` is neither an
//!   address nor `localhost` gets 421: a web page elsewhere that points a
//!   name of its own at 127.0.0.1 (DNS rebinding) cannot read the cache
//!   or start checks through the browser of someone on this machine.
//! - **systemd.** `Type=notify` (`READY=1` once every listener is bound,
//!   `RELOADING=1` … `READY=1` around a reload, `STOPPING=1`), socket
//!   activation for the socketmap socket (a `listen` entry naming an
//!   address systemd handed over is not bound again, so one configuration
//!   works with and without the socket unit), `DynamicUser` with
//!   `ProtectSystem=strict` and its own state and runtime directories. The
//!   hardened unit cannot reach Postfix's private directory or run its
//!   setgid `postdrop`; the unit's comment gives the drop-in TLS-RPT by
//!   Postfix needs.
//! - **Check.** `smtp-tls-policy check` is the former checker example:
//!   every lookup through the resolver it is given, the policy host's
//!   addresses included; with `--map` the zone's settings.
//!
