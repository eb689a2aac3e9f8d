//! Where lines go: `tracing`, stdout, stderr, a rotating file, or any writer; never blocking
//! the async runtime.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tower_plugins_core::{ConfigError, ProblemKind};

/// When a file sink starts a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotate {
    /// Never.
    Never,
    /// At midnight UTC: the finished file is renamed `NAME.YYYY-MM-DD`.
    Daily,
    /// When the file would grow past this many bytes: `NAME` becomes `NAME.1`, `NAME.1`
    /// becomes `NAME.2`, ..., keeping 9.
    Size(u64),
}

impl Rotate {
    /// Parses `"never"`, `"daily"`, or a size such as `"100MB"`, `"512KB"`, `"1GB"`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "never" => return Ok(Rotate::Never),
            "daily" => return Ok(Rotate::Daily),
            _ => {}
        }
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let (n, unit) = t.split_at(digits);
        let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
            "B" => 1,
            "KB" | "K" | "KIB" => 1 << 10,
            "MB" | "M" | "MIB" => 1 << 20,
            "GB" | "G" | "GIB" => 1 << 30,
            _ => 0,
        };
        match n.parse::<u64>() {
            Ok(n) if n > 0 && mult > 0 => Ok(Rotate::Size(n.saturating_mul(mult))),
            _ => Err(ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                format!("invalid rotation {s:?}"),
            )
            .with_hint("write \"daily\", \"never\", or a size such as \"100MB\"")),
        }
    }
}

/// Where the writer thread writes.
pub(crate) enum Target {
    Stdout,
    Stderr,
    File(RotatingFile),
    Writer(Box<dyn Write + Send>),
}

/// A file that rotates by day or size.
pub(crate) struct RotatingFile {
    path: PathBuf,
    file: BufWriter<File>,
    rotate: Rotate,
    size: u64,
    day: u64,
}

fn today() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl RotatingFile {
    /// Opens (or creates) the file for appending: an unwritable path fails here, at load.
    pub(crate) fn open(path: PathBuf, rotate: Rotate) -> io::Result<Self> {
        let file = open_append(&path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile {
            path,
            file: BufWriter::with_capacity(64 * 1024, file),
            rotate,
            size,
            day: today(),
        })
    }

    fn rotate_if_needed(&mut self, next: u64, now: u64) -> io::Result<()> {
        let to = match self.rotate {
            Rotate::Never => return Ok(()),
            Rotate::Daily => {
                if now == self.day {
                    return Ok(());
                }
                let name = humantime::format_rfc3339(
                    UNIX_EPOCH + std::time::Duration::from_secs(self.day * 86_400),
                )
                .to_string();
                self.day = now;
                suffixed(&self.path, &name[..10])
            }
            Rotate::Size(max) => {
                if self.size == 0 || self.size + next <= max {
                    return Ok(());
                }
                for i in (1..9).rev() {
                    let from = numbered(&self.path, i);
                    if from.exists() {
                        std::fs::rename(&from, numbered(&self.path, i + 1))?;
                    }
                }
                numbered(&self.path, 1)
            }
        };
        self.file.flush()?;
        std::fs::rename(&self.path, &to)?;
        self.file = BufWriter::with_capacity(64 * 1024, open_append(&self.path)?);
        self.size = 0;
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.write_line_on(line, today())
    }

    /// Writes `line` as if the UTC day number were `now` (tests drive the calendar).
    fn write_line_on(&mut self, line: &[u8], now: u64) -> io::Result<()> {
        self.rotate_if_needed(line.len() as u64, now)?;
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// `access.log` → `access.log.3`.
pub(crate) fn numbered(path: &Path, i: u32) -> PathBuf {
    suffixed(path, &i.to_string())
}

/// `access.log` → `access.log.<suffix>`.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

impl Target {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Target::Stdout => io::stdout().lock().write_all(line),
            Target::Stderr => io::stderr().lock().write_all(line),
            Target::File(f) => f.write_line(line),
            Target::Writer(w) => w.write_all(line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Stdout => io::stdout().flush(),
            Target::Stderr => io::stderr().flush(),
            Target::File(f) => f.file.flush(),
            Target::Writer(w) => w.flush(),
        }
    }
}

/// The sending side of the writer thread.
///
/// Lines are appended to one shared buffer under a short lock (no allocation and no channel
/// node per line, no memory freed on another thread); the writer thread swaps the buffer out
/// every [`DRAIN_EVERY`] and writes it. When the buffer holds `capacity` lines (at most
/// [`MAX_BUFFER_LINES`]) or [`MAX_BUFFER_BYTES`], new lines are dropped and counted, and the
/// count is written to the log at the next drain.
#[derive(Clone)]
pub(crate) struct Writer {
    shared: Arc<Queue>,
}

struct Queue {
    pending: Mutex<Pending>,
    capacity: usize,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("dropped", &self.shared.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

/// The most lines the writer's queue may be set to hold (`buffer`).
pub const MAX_BUFFER_LINES: usize = 1_000_000;

/// The most bytes the writer's queue holds, whatever its line count: lines of hostile
/// requests (long user agents and targets) cannot make a stalled writer's queue grow past it.
pub const MAX_BUFFER_BYTES: usize = 64 << 20;

/// How often the writer thread drains the buffer. Senders never wake it (that would cost a
/// system call per line); a line waits at most this long before it is written.
pub(crate) const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

impl Writer {
    /// Starts the writer thread. It ends when every `Writer` clone is gone, after writing
    /// what was queued.
    pub(crate) fn spawn(target: Target, capacity: usize) -> io::Result<Self> {
        let shared = Arc::new(Queue {
            pending: Mutex::new(Pending::default()),
            capacity: capacity.clamp(1, MAX_BUFFER_LINES),
            dropped: AtomicU64::new(0),
        });
        let q = shared.clone();
        std::thread::Builder::new()
            .name("request-log-writer".to_owned())
            .spawn(move || run(target, q))?;
        Ok(Writer { shared })
    }

    /// Queues a line (with its newline); never blocks on I/O.
    pub(crate) fn send(&self, line: &[u8]) {
        let mut p = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if p.lines >= self.shared.capacity || p.bytes.len() + line.len() > MAX_BUFFER_BYTES {
            drop(p);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        p.bytes.extend_from_slice(line);
        p.lines += 1;
    }

    /// Lines dropped so far because the writer could not keep up (and not yet reported).
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

fn run(mut target: Target, q: Arc<Queue>) {
    let mut failed = false;
    let mut spare = Pending::default();
    loop {
        // The last handle besides ours gone: drain once more and stop.
        let last = Arc::strong_count(&q) == 1;
        {
            let mut p = q
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::swap(&mut *p, &mut spare);
        }
        let mut wrote = false;
        for line in spare.bytes.split_inclusive(|b| *b == b'\n') {
            wrote = true;
            if let Err(e) = target.write_line(line) {
                if !failed {
                    eprintln!("request_log: cannot write the access log: {e}");
                    failed = true;
                }
            } else {
                failed = false;
            }
        }
        spare.bytes.clear();
        spare.lines = 0;
        let n = q.dropped.swap(0, Ordering::Relaxed);
        if n > 0 {
            let note =
                format!("request_log: {n} lines dropped: the log writer could not keep up\n");
            let _ = target.write_line(note.as_bytes());
            wrote = true;
        }
        if wrote {
            let _ = target.flush();
        }
        if last {
            return;
        }
        std::thread::sleep(DRAIN_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_sizes_parse() {
        assert_eq!(Rotate::parse("daily").unwrap(), Rotate::Daily);
        assert_eq!(Rotate::parse("never").unwrap(), Rotate::Never);
        assert_eq!(Rotate::parse("100MB").unwrap(), Rotate::Size(100 << 20));
        assert_eq!(Rotate::parse("512 KB").unwrap(), Rotate::Size(512 << 10));
        for bad in ["", "weekly", "0MB", "10 parsecs", "MB"] {
            assert!(Rotate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn size_rotation_keeps_numbered_files() {
        let dir = std::env::temp_dir().join(format!("rl-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let mut f = RotatingFile::open(path.clone(), Rotate::Size(100)).unwrap();
        for i in 0..25 {
            f.write_line(format!("line {i:02} ................ 30b\n").as_bytes())
                .unwrap();
        }
        f.file.flush().unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        // 30-byte lines, at most 100 bytes per file: 3 lines each.
        assert_eq!(read(&path).lines().count(), 1);
        assert!(read(&path).starts_with("line 24"));
        assert_eq!(read(&numbered(&path, 1)).lines().count(), 3);
        assert!(read(&numbered(&path, 1)).starts_with("line 21"));
        assert!(numbered(&path, 8).exists());
        assert!(!numbered(&path, 9).exists() || read(&numbered(&path, 9)).starts_with("line 00"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn daily_rotation_names_the_finished_day() {
        let dir = std::env::temp_dir().join(format!("rl-daily-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let mut f = RotatingFile::open(path.clone(), Rotate::Daily).unwrap();
        // 2025-11-20 is day 20412 since the epoch.
        f.day = 20_412;
        f.write_line_on(b"first day\n", 20_412).unwrap();
        f.write_line_on(b"second day\n", 20_413).unwrap();
        f.write_line_on(b"second day again\n", 20_413).unwrap();
        f.write_line_on(b"third day\n", 20_414).unwrap();
        f.file.flush().unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("access.log.2025-11-20"), "first day\n");
        assert_eq!(
            read("access.log.2025-11-21"),
            "second day\nsecond day again\n"
        );
        assert_eq!(read("access.log"), "third day\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_paths_fail_at_open() {
        assert!(RotatingFile::open("/nonexistent-dir/x/access.log".into(), Rotate::Never).is_err());
    }
}
