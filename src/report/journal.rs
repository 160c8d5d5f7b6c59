//! A [`ReportStore`] on disk: an append-only journal of increments and a
//! compacted snapshot (feature `fs`).
//!
//! Each [`add`](ReportStore::add) appends one line per increment, each
//! line carrying its sequence number and a checksum, in one write followed
//! by `fdatasync`: when `add` returns, the sessions survive a crash. A
//! line cut short by a crash (or one whose checksum fails) is dropped when
//! the store is opened, so a session is counted once or not at all.
//! Compaction writes the whole state with the last sequence number it
//! holds to a temporary file, syncs it and renames it over the snapshot,
//! then starts an empty journal the same way; lines at or below the
//! snapshot's number are skipped on replay, so a crash between the two
//! steps never counts a session twice.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Aggregator;
use super::collect::{Increment, ReportStore, StoreError, Window};
use super::deliver::fnv1a;
use super::encode::CountRecord;
use crate::cache::write_atomically;

/// Journal lines after which [`JournalStore`] compacts by itself.
pub const COMPACT_AFTER_LINES: usize = 100_000;

const JOURNAL: &str = "journal.log";
const SNAPSHOT: &str = "counts.json";

/// A durable [`ReportStore`] in a directory of its own (see the module
/// docs: journal, checksums, atomic compaction).
#[derive(Debug)]
pub struct JournalStore {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    windows: BTreeMap<Window, Aggregator>,
    /// The last sequence number written.
    seq: u64,
    journal: File,
    lines: usize,
    /// Records skipped when the store was opened.
    skipped: Vec<StoreError>,
}

impl JournalStore {
    /// Opens (or creates) the store in `dir`, replaying the snapshot and
    /// the journal. Records that do not read back are skipped, and listed
    /// by [`skipped`](Self::skipped); a torn last line is cut off.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut windows = BTreeMap::new();
        let mut skipped = Vec::new();
        let snapshot_path = dir.join(SNAPSHOT);
        let mut seq = 0;
        match fs::read(&snapshot_path) {
            Ok(bytes) => match serde_json::from_slice::<Snapshot>(&bytes) {
                Ok(snapshot) => {
                    seq = snapshot.seq;
                    for (n, entry) in snapshot.counts.iter().enumerate() {
                        match entry.increment() {
                            Ok(i) => apply(&mut windows, &i),
                            Err(reason) => skipped.push(corrupt(&snapshot_path, n + 1, reason)),
                        }
                    }
                }
                Err(e) => skipped.push(corrupt(&snapshot_path, 1, e.to_string())),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&snapshot_path)(e)),
        }
        let journal_path = dir.join(JOURNAL);
        let mut good_len = 0u64;
        let mut lines = 0;
        match File::open(&journal_path) {
            Ok(file) => {
                let mut reader = BufReader::new(file);
                let mut line = Vec::new();
                let mut n = 0;
                loop {
                    line.clear();
                    let read = reader.read_until(b'\n', &mut line).map_err(io(&journal_path))?;
                    if read == 0 || line.last() != Some(&b'\n') {
                        // The end, or a line a crash cut short: cut off below.
                        break;
                    }
                    n += 1;
                    good_len += read as u64;
                    lines += 1;
                    match read_line(&line[..line.len() - 1]) {
                        Ok(record) if record.seq <= seq => {}
                        Ok(record) => {
                            seq = record.seq;
                            match record.entry {
                                Entry::Add(i) => apply(&mut windows, &i),
                                Entry::Remove(w) => {
                                    windows.remove(&w);
                                }
                            }
                        }
                        Err(reason) => skipped.push(corrupt(&journal_path, n, reason)),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&journal_path)(e)),
        }
        let journal = OpenOptions::new().create(true).append(true).open(&journal_path).map_err(io(&journal_path))?;
        // Cut off a torn last line, so that the next line starts clean.
        if journal.metadata().map_err(io(&journal_path))?.len() > good_len {
            journal.set_len(good_len).map_err(io(&journal_path))?;
            journal.sync_data().map_err(io(&journal_path))?;
        }
        Ok(Self { dir, state: Mutex::new(State { windows, seq, journal, lines, skipped }) })
    }

    /// The records skipped when the store was opened (each says where).
    pub fn skipped(&self) -> Vec<String> {
        self.lock().skipped.iter().map(ToString::to_string).collect()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the whole state as the snapshot and starts an empty journal
    /// (both by atomic rename).
    pub fn compact(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        self.compact_locked(&mut state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn compact_locked(&self, state: &mut State) -> Result<(), StoreError> {
        let counts = state
            .windows
            .iter()
            .flat_map(|(w, agg)| agg.increments().map(move |(p, f, n)| CountRecord::new(*w, p, f, n)))
            .collect();
        let snapshot = Snapshot { seq: state.seq, counts };
        let bytes = serde_json::to_vec(&snapshot).unwrap_or_default();
        self.replace(SNAPSHOT, &bytes)?;
        self.replace(JOURNAL, b"")?;
        let path = self.dir.join(JOURNAL);
        state.journal = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| StoreError::Io { path: path.display().to_string(), source })?;
        state.lines = 0;
        Ok(())
    }

    /// Writes `name` atomically (see `cache::snapshot::write_atomically`).
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(name);
        write_atomically(&path, bytes).map_err(|source| StoreError::Io { path: path.display().to_string(), source })
    }

    fn append(&self, state: &mut State, entries: Vec<Entry>) -> Result<(), StoreError> {
        let mut text = Vec::new();
        let mut seq = state.seq;
        for entry in &entries {
            seq += 1;
            write_line(&mut text, seq, entry);
        }
        let path = self.dir.join(JOURNAL);
        let io = |source| StoreError::Io { path: path.display().to_string(), source };
        let before = state.journal.metadata().map_err(io)?.len();
        let written = state.journal.write_all(&text).and_then(|()| state.journal.sync_data());
        if let Err(e) = written {
            // The call failed, so none of it may count: whole lines that
            // reached the file would, so take the file back to where it was.
            let _ = state.journal.set_len(before);
            return Err(io(e));
        }
        state.seq = seq;
        state.lines += entries.len();
        for entry in entries {
            match entry {
                Entry::Add(i) => apply(&mut state.windows, &i),
                Entry::Remove(w) => {
                    state.windows.remove(&w);
                }
            }
        }
        if state.lines >= COMPACT_AFTER_LINES {
            self.compact_locked(state)?;
        }
        Ok(())
    }
}

impl ReportStore for JournalStore {
    fn add(&self, increments: &[Increment]) -> Result<(), StoreError> {
        let mut state = self.lock();
        self.append(&mut state, increments.iter().cloned().map(|i| Entry::Add(Box::new(i))).collect())
    }

    fn windows(&self) -> Result<Vec<Window>, StoreError> {
        Ok(self.lock().windows.keys().copied().collect())
    }

    fn counts(&self, window: Window) -> Result<Aggregator, StoreError> {
        Ok(self.lock().windows.get(&window).cloned().unwrap_or_default())
    }

    fn remove(&self, window: Window) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.windows.contains_key(&window) {
            return Ok(());
        }
        self.append(&mut state, vec![Entry::Remove(window)])
    }
}

fn apply(windows: &mut BTreeMap<Window, Aggregator>, i: &Increment) {
    windows.entry(i.window).or_default().add(&i.policy, i.failure.as_ref(), i.count);
}

fn corrupt(path: &Path, record: usize, reason: String) -> StoreError {
    StoreError::Corrupt { path: path.display().to_string(), record, reason }
}

enum Entry {
    Add(Box<Increment>),
    Remove(Window),
}

struct Record {
    seq: u64,
    entry: Entry,
}

/// One journal line: the JSON record, a tab, and the FNV-1a hash of the
/// JSON in hex.
#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    add: Option<CountRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remove: Option<(u64, u64)>,
}

fn write_line(out: &mut Vec<u8>, seq: u64, entry: &Entry) {
    let line = match entry {
        Entry::Add(i) => {
            Line { seq, add: Some(CountRecord::new(i.window, &i.policy, i.failure.as_ref(), i.count)), remove: None }
        }
        Entry::Remove(w) => Line { seq, add: None, remove: Some((w.start_secs(), w.length_secs())) },
    };
    let json = serde_json::to_vec(&line).unwrap_or_default();
    let sum = fnv1a(&json);
    out.extend_from_slice(&json);
    out.extend_from_slice(format!("\t{sum:016x}\n").as_bytes());
}

fn read_line(line: &[u8]) -> Result<Record, String> {
    let tab = line.iter().rposition(|&b| b == b'\t').ok_or("no checksum")?;
    let (json, sum) = (&line[..tab], &line[tab + 1..]);
    let sum = std::str::from_utf8(sum).ok().and_then(|s| u64::from_str_radix(s, 16).ok()).ok_or("bad checksum")?;
    if sum != fnv1a(json) {
        return Err("checksum does not match".into());
    }
    let line: Line = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let entry = match (line.add, line.remove) {
        (Some(add), None) => Entry::Add(Box::new(add.increment()?)),
        (None, Some((start, length))) => Entry::Remove(Window::from_parts(start, length).ok_or("bad window")?),
        _ => return Err("neither an increment nor a removal".into()),
    };
    Ok(Record { seq: line.seq, entry })
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    seq: u64,
    counts: Vec<CountRecord>,
}

/// An [`OutboxStore`](super::OutboxStore) in a directory: one JSON file per
/// report, replaced atomically (a synced temporary file renamed over it)
/// each time an attempt changes it, so that a crash loses no report and no
/// delivery state.
#[derive(Debug)]
pub struct DirOutbox {
    dir: PathBuf,
}

impl DirOutbox {
    /// Opens (or creates) the outbox in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
        Ok(Self { dir })
    }

    fn path(&self, report_id: &str) -> PathBuf {
        self.dir.join(format!("{:016x}.json", fnv1a(report_id.as_bytes())))
    }
}

impl super::OutboxStore for DirOutbox {
    fn put(&self, entry: &super::OutboxEntry) -> Result<(), StoreError> {
        let path = self.path(&entry.report.report_id);
        let bytes = serde_json::to_vec(entry).unwrap_or_default();
        write_atomically(&path, &bytes).map_err(|source| StoreError::Io { path: path.display().to_string(), source })
    }

    fn entries(&self) -> Result<Vec<super::OutboxEntry>, StoreError> {
        let io = |source| StoreError::Io { path: self.dir.display().to_string(), source };
        let mut entries = Vec::new();
        for item in fs::read_dir(&self.dir).map_err(io)? {
            let path = item.map_err(io)?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            // One unreadable file never stops the others.
            if let Some(entry) = fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    fn remove(&self, report_id: &str) -> Result<(), StoreError> {
        let path = self.path(report_id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::Io { path: path.display().to_string(), source: e })
            }
            _ => Ok(()),
        }
    }
}
