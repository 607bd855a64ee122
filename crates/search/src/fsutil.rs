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
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file being written atomically: the bytes go to a temporary file beside `path`, and
/// [`AtomicFile::commit`] syncs it and renames it over `path`. Dropped without a commit (an error, a
/// panic), it removes the temporary file; a process killed meanwhile leaves it, named after its pid.
pub struct AtomicFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> std::io::Result<AtomicFile> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        let file = std::fs::File::create(&tmp)?;
        Ok(AtomicFile { path: path.to_owned(), tmp, file: Some(file) })
    }

    /// The temporary file's path.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Syncs the bytes written and renames the temporary file over the target.
    pub fn commit(mut self) -> std::io::Result<()> {
        let file = self.file.take().expect("a file is committed once");
        let synced = file.sync_all();
        drop(file);
        let result = synced.and_then(|_| std::fs::rename(&self.tmp, &self.path));
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("not committed").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
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
