//! A write-ahead log with group commit: many writers append, one thread writes
//! and fsyncs a batch, then acknowledges every writer in it. A write is
//! acknowledged only once it is on disk, so it survives `kill -9`.
//!
//! Frame: `len: u32 LE | crc32: u32 LE | payload`. Recovery stops at the first
//! torn or corrupt frame and truncates the file there.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::watch;

use super::StoreError;

/// Largest frame we write or accept on recovery.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
const HEADER: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Durable {
    lsn: u64,
    failed: bool,
}

/// What the writer thread is doing, so an append wakes it only when it
/// waits for a first frame (a futex wake per append was a tenth of the
/// server's CPU under load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Waiting for a first frame: an append wakes it.
    Idle,
    /// Writing or syncing: it looks at the buffer again when done.
    Busy,
}

struct Pending {
    buf: Vec<u8>,
    frames: usize,
    last_lsn: u64,
    shutdown: bool,
    writer: Writer,
    /// Tests hold the writer back to see what is shown before a write is
    /// durable.
    #[cfg(test)]
    held: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// `Pending::last_lsn`, readable without the lock (every read asks).
    appended: AtomicU64,
}

pub struct Wal {
    shared: Arc<Shared>,
    durable: watch::Receiver<Durable>,
    /// No file, no writer thread: every write is "durable" at once (the
    /// in-memory store of the simulator, whose crashes are logical).
    volatile: bool,
}

/// Read every intact frame of a log file. A torn tail (the last frame cut
/// short or half-written by a crash) is truncated; a bad frame with intact
/// data after it is corruption, and opening fails rather than dropping
/// acknowledged writes.
pub fn recover(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match frame_at(&bytes, at) {
            Frame::Ok(payload, next) => {
                frames.push(payload.to_vec());
                at = next;
            }
            Frame::Torn => break,
            Frame::Corrupt => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}: corrupt frame at byte {at} with data after it",
                        path.display()
                    ),
                ))
            }
        }
    }
    if at < bytes.len() {
        tracing::warn!(
            kept = at,
            dropped = bytes.len() - at,
            "wal: truncating torn tail"
        );
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(at as u64)?;
        f.sync_all()?;
    }
    Ok(frames)
}

enum Frame<'a> {
    Ok(&'a [u8], usize),
    /// Cut short or bad checksum, and nothing after it: an interrupted append.
    Torn,
    /// Bad, with more bytes after it.
    Corrupt,
}

fn frame_at(bytes: &[u8], at: usize) -> Frame<'_> {
    let Some(header) = bytes.get(at..at + HEADER) else {
        return Frame::Torn;
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let end = at + HEADER + len;
    let Some(payload) = bytes.get(at + HEADER..end) else {
        return Frame::Torn;
    };
    if len <= MAX_FRAME_BYTES && crc32fast::hash(payload) == crc {
        return Frame::Ok(payload, end);
    }
    if end == bytes.len() {
        Frame::Torn
    } else {
        Frame::Corrupt
    }
}

pub fn encode_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Atomically replace `path` with a log holding exactly `frames`.
pub fn rewrite(path: &Path, frames: impl Iterator<Item = Vec<u8>>) -> std::io::Result<()> {
    let tmp = path.with_extension("compact");
    {
        let mut f = File::create(&tmp)?;
        let mut buf = Vec::new();
        for payload in frames {
            encode_frame(&mut buf, &payload);
            if buf.len() > 1 << 20 {
                f.write_all(&buf)?;
                buf.clear();
            }
        }
        f.write_all(&buf)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Wal {
    /// Open the log for appending and start its writer thread.
    pub fn open(path: &Path) -> std::io::Result<Wal> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                frames: 0,
                last_lsn: 0,
                shutdown: false,
                writer: Writer::Busy,
                #[cfg(test)]
                held: false,
            }),
            wake: Condvar::new(),
            appended: AtomicU64::new(0),
        });
        let (tx, rx) = watch::channel(Durable {
            lsn: 0,
            failed: false,
        });
        let thread_shared = Arc::clone(&shared);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let owned = path_owned(path);
        std::thread::Builder::new()
            .name(format!("wal-{}", name.unwrap_or_default()))
            .spawn(move || writer_loop(file, thread_shared, tx, owned))?;
        Ok(Wal {
            shared,
            durable: rx,
            volatile: false,
        })
    }

    /// A log that keeps nothing (see `volatile`).
    pub fn volatile() -> Wal {
        let (_tx, rx) = watch::channel(Durable {
            lsn: 0,
            failed: false,
        });
        Wal {
            shared: Arc::new(Shared {
                pending: Mutex::new(Pending {
                    buf: Vec::new(),
                    frames: 0,
                    last_lsn: 0,
                    shutdown: true,
                    writer: Writer::Busy,
                    #[cfg(test)]
                    held: false,
                }),
                wake: Condvar::new(),
                appended: AtomicU64::new(0),
            }),
            durable: rx,
            volatile: true,
        }
    }

    /// Queue a payload; returns its log sequence number. Call while holding the
    /// lock that orders writes, so log order equals apply order.
    pub fn append(&self, payload: &[u8]) -> Result<u64, StoreError> {
        if payload.len() > MAX_FRAME_BYTES {
            return Err(StoreError::Invalid("record too large".into()));
        }
        let mut p = self.shared.pending.lock().map_err(|_| poisoned())?;
        p.last_lsn += 1;
        let lsn = p.last_lsn;
        self.shared.appended.store(lsn, Ordering::Release);
        if self.volatile {
            return Ok(lsn);
        }
        encode_frame(&mut p.buf, payload);
        p.frames += 1;
        let wake = p.writer == Writer::Idle;
        drop(p);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(lsn)
    }

    /// Hold the writer back (nothing more becomes durable) or let it go.
    #[cfg(test)]
    pub fn hold(&self, on: bool) {
        if let Ok(mut p) = self.shared.pending.lock() {
            p.held = on;
        }
        self.shared.wake.notify_all();
    }

    /// The newest sequence number handed out.
    pub fn last_lsn(&self) -> Result<u64, StoreError> {
        Ok(self.shared.appended.load(Ordering::Acquire))
    }

    /// Wait until everything up to `lsn` is on disk.
    pub async fn wait_durable(&self, lsn: u64) -> Result<(), StoreError> {
        if lsn == 0 || self.volatile {
            return Ok(());
        }
        let mut rx = self.durable.clone();
        let state = rx
            .wait_for(|d| d.failed || d.lsn >= lsn)
            .await
            .map_err(|_| StoreError::Unavailable("wal writer stopped".into()))?;
        if state.failed {
            return Err(StoreError::Unavailable("wal write failed".into()));
        }
        Ok(())
    }
}

fn path_owned(p: &Path) -> PathBuf {
    p.to_path_buf()
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("wal lock poisoned".into())
}

/// Wait until there is something to write (or the log shuts down). A batch
/// is whatever was appended while the previous one was being synced: under
/// load that is many writers per fsync, with no added wait (a commit window
/// was measured: it only lengthened every chain of writes).
fn next_batch<'a>(
    shared: &'a Shared,
    mut p: MutexGuard<'a, Pending>,
) -> Option<MutexGuard<'a, Pending>> {
    p.writer = Writer::Idle;
    while (p.frames == 0 || held(&p)) && !p.shutdown {
        p = shared.wake.wait(p).ok()?;
    }
    p.writer = Writer::Busy;
    Some(p)
}

#[cfg(test)]
fn held(p: &Pending) -> bool {
    p.held
}

#[cfg(not(test))]
fn held(_: &Pending) -> bool {
    false
}

fn writer_loop(mut file: File, shared: Arc<Shared>, tx: watch::Sender<Durable>, path: PathBuf) {
    let mut spare = Vec::new();
    loop {
        let (lsn, shutdown) = {
            let Ok(p) = shared.pending.lock() else {
                return;
            };
            let Some(mut p) = next_batch(&shared, p) else {
                return;
            };
            std::mem::swap(&mut p.buf, &mut spare);
            p.frames = 0;
            (p.last_lsn, p.shutdown)
        };
        if !spare.is_empty() {
            let ok = file.write_all(&spare).and_then(|_| file.sync_data());
            spare.clear();
            if let Err(e) = ok {
                tracing::error!(path = %path.display(), error = %e, "wal write failed");
                tx.send_replace(Durable { lsn, failed: true });
                return;
            }
            tx.send_replace(Durable { lsn, failed: false });
        }
        if shutdown {
            return;
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Ok(mut p) = self.shared.pending.lock() {
            p.shutdown = true;
        }
        self.shared.wake.notify_all();
    }
}
