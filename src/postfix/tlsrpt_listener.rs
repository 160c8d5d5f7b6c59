//! The TLSRPT datagram socket (feature `resolver`, Unix): receives what
//! Postfix's libtlsrpt sends (see [`super::tlsrpt`]) and records it in a
//! [`Collector`].

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::tlsrpt::{MAX_DATAGRAM, datagram_sessions};
use crate::report::{Collector, ReportStore};

/// Counts of what the listener took.
#[derive(Debug, Default)]
struct Counters {
    datagrams: AtomicU64,
    invalid: AtomicU64,
    unrecorded: AtomicU64,
}

/// A thread receiving libtlsrpt datagrams on a Unix datagram socket and
/// recording their sessions, at the time they arrive, in a collector.
/// Postfix points `smtp_tlsrpt_socket_name` at the socket.
#[derive(Debug)]
pub struct TlsrptListener {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl TlsrptListener {
    /// Binds `path` (a stale socket file there is replaced) and starts the
    /// thread. Postfix must be able to write to the socket: set its mode
    /// or directory so that the `postfix` user can.
    pub fn start<S: ReportStore + 'static>(path: impl AsRef<Path>, collector: Arc<Collector<S>>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            std::fs::remove_file(&path)?;
        }
        let socket = UnixDatagram::bind(&path)?;
        // A bounded wait, so that `stop` is seen.
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&counters));
        let thread = std::thread::Builder::new().name("tlsrpt-datagrams".into()).spawn(move || {
            let mut buffer = vec![0u8; MAX_DATAGRAM];
            while !flag.load(Ordering::Relaxed) {
                let n = match socket.recv(&mut buffer) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue;
                    }
                    Err(_) => continue,
                };
                count.datagrams.fetch_add(1, Ordering::Relaxed);
                match datagram_sessions(&buffer[..n]) {
                    Ok(sessions) => {
                        if collector.record(SystemTime::now(), &sessions).is_err() {
                            count.unrecorded.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        count.invalid.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })?;
        Ok(Self { path, stop, counters, thread: Some(thread) })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Datagrams received so far.
    pub fn datagrams(&self) -> u64 {
        self.counters.datagrams.load(Ordering::Relaxed)
    }

    /// Datagrams refused as not valid (their sessions are not counted).
    pub fn invalid(&self) -> u64 {
        self.counters.invalid.load(Ordering::Relaxed)
    }

    /// Datagrams whose sessions the store failed to record.
    pub fn unrecorded(&self) -> u64 {
        self.counters.unrecorded.load(Ordering::Relaxed)
    }

    /// Stops the thread (within 200 ms) and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for TlsrptListener {
    fn drop(&mut self) {
        self.shutdown();
    }
}
