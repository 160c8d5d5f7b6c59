//! Snapshots of the live policies, to keep downgrade protection across a
//! restart (RFC 8461 §10: a sender that forgets its policies is as
//! exposed as one that never had them).
//!
//! The format is text, one entry a record, sealed by a SHA-256 of all that
//! precedes the last line:
//!
//! ```text
//! smtp-tls-policy-cache 1
//! <domain> <id> <fetched_at> <policy length>
//! <policy text, exactly that many bytes>
//! …
//! end <entry count> <sha-256 hex>
//! ```
//!
//! The policy text is the policy's `Display` form, read back with
//! [`Policy::parse_stored`] (whose bound covers the `Display` form of any
//! policy body the fetch accepts), so every live policy round-trips.
//!
//! A snapshot that is truncated, altered or otherwise corrupt (its framing
//! or checksum) is refused whole: nothing of it is loaded. An entry whose
//! content this version does not accept (a domain, id or policy that no
//! longer parses) is left out alone, and the others are loaded.

use std::sync::Arc;
use std::time::SystemTime;

use ring::digest::{SHA256, digest};

use super::{Cached, PolicyCache, secs};
use crate::name::DomainName;
use crate::sts::{MAX_STORED_POLICY_BYTES, Policy, PolicyId};

const HEADER: &str = "smtp-tls-policy-cache 1\n";

/// Why a snapshot was not loaded. Nothing of it was: the cache is as it
/// was before.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The snapshot could not be read or written.
    #[error("cache snapshot {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// It does not begin with the snapshot header of this version.
    #[error(
        "not a cache snapshot of this version (expected the header {HEADER:?}); it was not loaded — delete it or let the next save replace it"
    )]
    UnknownFormat,
    /// It ends before its final line: a write was interrupted.
    #[error(
        "the cache snapshot is truncated (a write was interrupted?); it was not loaded — the next save replaces it"
    )]
    Truncated,
    /// It does not parse, or its checksum does not match.
    #[error("the cache snapshot is corrupt at byte {offset}: {reason}; it was not loaded — the next save replaces it")]
    Corrupt {
        /// Where.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restored {
    /// Policies loaded into the cache (live, and newer than what it held).
    pub loaded: usize,
    /// Entries left out because this version does not accept their
    /// content, each with the domain (as written) and why; the other
    /// entries were loaded.
    pub skipped: Vec<(String, String)>,
}

impl PolicyCache {
    /// The live policies at `now`, as snapshot bytes.
    pub fn snapshot(&self, now: SystemTime) -> Vec<u8> {
        let entries = self.live_policies(secs(now));
        let mut out = String::from(HEADER);
        let mut count = 0usize;
        for (domain, c) in &entries {
            let text = c.policy.to_string();
            // Never write what restore would refuse (a policy parsed from
            // at most MAX_POLICY_BYTES always fits).
            if text.len() > MAX_STORED_POLICY_BYTES {
                continue;
            }
            out.push_str(&format!("{domain} {} {} {}\n{text}\n", c.id, c.fetched_at, text.len()));
            count += 1;
        }
        let sum = hex(digest(&SHA256, out.as_bytes()).as_ref());
        out.push_str(&format!("end {count} {sum}\n"));
        out.into_bytes()
    }

    /// Loads a snapshot: every policy in it still live at `now` and newer
    /// than what the cache holds. A corrupt or truncated snapshot loads
    /// nothing; an entry this version does not accept is skipped alone.
    pub fn restore(&self, bytes: &[u8], now: SystemTime) -> Result<Restored, SnapshotError> {
        let now = secs(now);
        let (entries, skipped) = parse(bytes)?;
        let live: Vec<_> = entries.into_iter().filter(|(_, c)| now < c.expires_at).collect();
        Ok(Restored { loaded: self.restore_policies(live, now), skipped })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupt(offset: usize, reason: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupt { offset, reason: reason.into() }
}

/// An entry's content that this version refuses: (domain as written, why).
type Skipped = (String, String);

/// The entries of a snapshot that parsed, and those left out.
type Parsed = (Vec<(DomainName, Cached)>, Vec<Skipped>);

/// Parses a whole snapshot, or fails without a partial result when its
/// framing or checksum is wrong; entries whose content does not parse are
/// returned apart.
fn parse(bytes: &[u8]) -> Result<Parsed, SnapshotError> {
    if !bytes.starts_with(HEADER.as_bytes()) {
        return Err(if HEADER.as_bytes().starts_with(bytes) {
            SnapshotError::Truncated
        } else {
            SnapshotError::UnknownFormat
        });
    }
    let mut pos = HEADER.len();
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    loop {
        let Some(len) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            return Err(SnapshotError::Truncated);
        };
        let line = std::str::from_utf8(&bytes[pos..pos + len]).map_err(|_| corrupt(pos, "not UTF-8"))?;
        let fields: Vec<&str> = line.split(' ').collect();
        if let ["end", count, sum] = fields[..] {
            if pos + len + 1 != bytes.len() {
                return Err(corrupt(pos + len + 1, "data after the end line"));
            }
            if hex(digest(&SHA256, &bytes[..pos]).as_ref()) != sum {
                return Err(corrupt(pos, "checksum mismatch"));
            }
            if count.parse::<usize>().ok() != Some(entries.len() + skipped.len()) {
                return Err(corrupt(pos, "entry count mismatch"));
            }
            return Ok((entries, skipped));
        }
        let [domain, id, fetched_at, text_len] = fields[..] else {
            return Err(corrupt(pos, "expected an entry line or the end line"));
        };
        let number = |s: &str| s.parse::<u64>().map_err(|_| corrupt(pos, format!("{s:?} is not a number")));
        let fetched_at = number(fetched_at)?;
        let text_len = usize::try_from(number(text_len)?).map_err(|_| corrupt(pos, "length too large"))?;
        let start = pos + len + 1;
        let end = start.checked_add(text_len).filter(|&e| e < bytes.len()).ok_or(SnapshotError::Truncated)?;
        if bytes[end] != b'\n' {
            return Err(corrupt(end, "policy text does not end where its length says"));
        }
        pos = end + 1;
        // The framing is sound: what follows concerns this entry alone.
        let entry = DomainName::parse(domain).map_err(|e| e.to_string()).and_then(|d| {
            let id = PolicyId::parse(id).map_err(|e| e.to_string())?;
            let policy = Policy::parse_stored(&bytes[start..end]).map_err(|e| e.to_string())?;
            Ok((d, id, policy))
        });
        match entry {
            // The expiry is recomputed, never read: a snapshot cannot
            // extend a policy past its max_age.
            Ok((d, id, policy)) => entries.push((d, Cached::new(id, Arc::new(policy), fetched_at))),
            Err(why) => skipped.push((domain.to_owned(), why)),
        }
    }
}

/// Writes a snapshot of `cache` to `path` atomically: to a temporary file
/// beside it, flushed to disk, then renamed over `path`. A crash leaves
/// either the old snapshot or the new one, never a mix.
#[cfg(feature = "fs")]
pub fn save_snapshot(cache: &PolicyCache, path: &std::path::Path, now: SystemTime) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io { path: path.display().to_string(), source };
    let bytes = cache.snapshot(now);
    write_atomically(path, &bytes).map_err(io)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced,
/// then renamed over `path`, and the directory synced where the platform
/// allows. A crash leaves the old content or the new, never a mix. Each
/// call has a temporary name of its own, so concurrent writers of one path
/// (a timer and a signal, two threads, two processes) never write into each
/// other's file; the last rename wins and installs whole content.
#[cfg(feature = "fs")]
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}.{n}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable where the platform allows.
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Loads the snapshot at `path` into `cache` (see
/// [`PolicyCache::restore`]). A missing file loads nothing and is not an
/// error: it is how a first start looks.
#[cfg(feature = "fs")]
pub fn load_snapshot(cache: &PolicyCache, path: &std::path::Path, now: SystemTime) -> Result<Restored, SnapshotError> {
    match std::fs::read(path) {
        Ok(bytes) => cache.restore(&bytes, now),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Restored::default()),
        Err(source) => Err(SnapshotError::Io { path: path.display().to_string(), source }),
    }
}
