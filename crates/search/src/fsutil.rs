//! File writes that never leave a half-written file behind.
//!
//! Cache entries and tables are written to a uniquely named temporary file in the same directory, synced,
//! then renamed over the target. A rename within one directory is atomic on the platforms we support, so a
//! reader sees the old file or the new one, never a mix, and two writers racing leave one complete file.
//!
//! A writer killed between the two steps leaves its temporary file, `.<name>.<pid>.<n>.tmp`: the name says
//! which process wrote it ([`temp_writer`]), so a reader can tell a finished writer's leftover from a
//! write in progress. Temporary files are never read as the file they were for.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically, creating the parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// When `name` is the name of a temporary file of [`write_atomic`], the writer's process id (`None` when
/// the name has no readable one); otherwise `None` for the outer option.
pub fn temp_writer(name: &str) -> Option<Option<u32>> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = inner.rsplitn(3, '.');
    let _counter = parts.next();
    let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
    Some(pid)
}
