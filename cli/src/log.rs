//! Log lines reach stderr from a thread of their own, so that an answer
//! never waits for the terminal or the journal: each event is one message
//! on a bounded channel; when [`PENDING`] lines wait, new ones are
//! dropped, and the count of dropped lines is written with the next line
//! that gets through.
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};

use tracing_subscriber::fmt::MakeWriter;

/// Lines that may wait for the writer thread.
pub const PENDING: usize = 4096;

/// The `MakeWriter` of the subscriber.
#[derive(Clone)]
pub struct NonBlocking {
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl NonBlocking {
    /// Starts the writer thread on stderr.
    pub fn stderr() -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(PENDING);
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = Arc::clone(&dropped);
        let _ = std::thread::Builder::new().name("log".into()).spawn(move || {
            let mut err = std::io::stderr().lock();
            for line in rx {
                let n = lost.swap(0, Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(err, "({n} log lines dropped: the log writer could not keep up)");
                }
                let _ = err.write_all(&line);
            }
        });
        Self { tx, dropped }
    }
}

/// One event's line, sent when the subscriber is done with it.
pub struct Line {
    buf: Vec<u8>,
    sink: NonBlocking,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.sink.tx.try_send(std::mem::take(&mut self.buf)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.sink.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { buf: Vec::with_capacity(256), sink: self.clone() }
    }
}

/// Installs the subscriber: `format` text or JSON, `level` a filter such as
/// `info` or `smtp_tls_policy=debug,info`.
pub fn init(format: crate::config::LogFormat, level: &str) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter: tracing_subscriber::filter::Targets = level
        .parse()
        .map_err(|e| format!("log level {level:?}: {e} (expected e.g. info or smtp_tls_policy=debug,info)"))?;
    let writer = NonBlocking::stderr();
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        crate::config::LogFormat::Text => {
            registry.with(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false)).try_init()
        }
        crate::config::LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().with_writer(writer)).try_init()
        }
    };
    installed.map_err(|e| e.to_string())
}
