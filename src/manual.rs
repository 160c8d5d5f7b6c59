//! The crate's manual: design rationale and how it reads the RFCs. This
//! module holds no code.
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
//! policy id is held inline (no allocation). Figures are in the README,
//! from `cargo bench --bench sts`.
