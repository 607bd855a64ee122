//! The tuning cache: one pretty-JSON file per kernel, device and size point, committed with the crate.
//!
//! # Keys
//!
//! A kernel's *content key* at a size point is blake3 over a format version, the blake3 of the kernel
//! source bytes and the [`KernelSpec`] *at that point* ([`KernelSpec::at`]: the bench sizes set to the
//! point, no `sizes(…)` list) as JSON: it changes whenever the `.cu` file or the attribute changes, but not
//! when another bucket is added or removed. An entry's *cache key* adds the device's identity (name and
//! compute capability, see [`tuner_spec::device`]). A kernel without `sizes(…)` has one point, its bench
//! sizes, whose spec serialises exactly as before buckets existed: its entries keep their keys. Every part is
//! length-prefixed and the hasher is keyed for this use, so no two inputs can collide by concatenation.
//!
//! # Files
//!
//! An entry lives in `<dir>/<kernel>-<device slug>-<sizes>-<first 12 hex digits of the key>.json`, e.g.
//! `kernels/autotune/sgemm-h200-m1024-n1024-k1024-1a2b3c4d5e6f.json`: readable in a diff, unique per
//! kernel, device, size and content. (Entries written before size buckets have no `<sizes>` part; they
//! are read the same way.) Like sqlx's offline data, each entry stores everything its key was computed from
//! (format version, source hash, full spec, full fingerprint) next to the result (best and default
//! configs, their score and time, and how the tuning ran), so a read can verify the entry on its own.
//!
//! # Lookup order
//!
//! The directories searched, in order, are one array ([`Cache::for_crate`]):
//!
//! 1. `$AUTOTUNE_CACHE_DIR`, when set (relative paths are taken from the crate root);
//! 2. `<crate root>/autotune/`.
//!
//! New entries go to the first one. For each device the first fresh entry found wins.
//!
//! # Reading is validating
//!
//! A cache file is data from outside the compiler: it may be truncated, hand-edited or crafted. Reading
//! checks the JSON shape (unknown fields are refused), the format version, that the stored key matches the
//! stored contents and the file name, that the stored spec is valid, and that the best and default configs
//! belong to the stored space. Any failure is a [`CacheError::Corrupt`] naming the file, with the reason as
//! its source. An entry that is intact but was tuned for another version of the kernel source or attribute
//! is *stale*: the build ignores it and `cargo autotune check` reports it.
//!
//! # Writing
//!
//! Entries are written with [`tuner_search::fsutil::write_atomic`] (temp file + rename in the same directory),
//! so a reader never sees half a file and two builds tuning the same kernel at once each leave a complete
//! entry; the last rename wins, and both are valid.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use tuner_spec::config::Config;
use tuner_spec::device::DeviceFingerprint;
use tuner_spec::space::{ConfigError, JsonConfigError, Space};
use tuner_spec::spec::{KernelSpec, SpecError};

/// The version of the entry format and of the key derivation. Bump it when either changes.
pub const FORMAT_VERSION: u32 = 1;
/// The environment variable naming an extra cache directory, searched first and written to.
pub const CACHE_DIR_ENV: &str = "AUTOTUNE_CACHE_DIR";
/// The crate's own cache directory, relative to its root.
pub const CRATE_CACHE_DIR: &str = "autotune";

const KEY_CONTEXT: &str = "tuner-runtime cache key v1";
/// The times an entry may record, in milliseconds: a nanosecond (no launch is faster) to a day (no tune
/// measures a slower one). Anything else is a hand edit, and would print as a nonsensical speed-up.
pub const TIME_RANGE_MS: (f64, f64) = (1e-6, 8.64e7);
/// Hex digits of the key kept in file names.
const SHORT: usize = 12;

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot list cache directory {path}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read cache entry {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write cache entry {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt cache entry {path}: delete it and run `cargo autotune tune`")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: Corruption,
    },
}

/// What is wrong with a corrupt entry.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    #[error("not a cache entry")]
    Json(#[from] serde_json::Error),
    #[error("format version {found}, but this tool reads version {expected}")]
    FormatVersion { found: u64, expected: u32 },
    #[error("the stored key {stored} does not match the entry's contents (key {computed}): the entry was edited")]
    KeyMismatch { stored: String, computed: String },
    #[error("the file name says key {in_name}, but the entry's key is {stored}")]
    NameMismatch { in_name: String, stored: String },
    #[error("the entry is for kernel `{found}`, but its file name and spec say `{expected}`")]
    WrongKernel { found: String, expected: String },
    #[error("the stored spec is invalid")]
    Spec(#[source] Box<SpecError>),
    #[error("the {which} config: parameter `{param}` holds {found}, which is not an integer, boolean or string")]
    NotScalar { which: &'static str, param: String, found: String },
    #[error("the {which} config does not belong to the kernel's space")]
    Config {
        which: &'static str,
        #[source]
        source: ConfigError,
    },
    #[error("`{field}` is {value}, which is not a plausible time in milliseconds (between {} and {})", TIME_RANGE_MS.0, TIME_RANGE_MS.1)]
    BadTime { field: &'static str, value: f64 },
    #[error("the stored spec declares sizes(...); an entry is tuned at one point and stores the spec at it")]
    Buckets,
}

/// Why an intact entry does not apply to the kernel as it is now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Staleness {
    #[error("the kernel source changed since it was tuned")]
    Source,
    #[error("the #[autotune] attribute changed since it was tuned")]
    Spec,
    #[error("it was tuned at {0}, which the attribute's sizes(...) no longer declares")]
    Size(String),
    #[error("an entry for the same GPU comes earlier in the lookup order ({})", .0.display())]
    Shadowed(PathBuf),
}

/// How one tuning run went, stored with its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuningInfo {
    /// The search strategy (`local`, `de`, `llm-evolution`, …).
    pub strategy: String,
    /// What the score measures (`1/time`, `GB/s`, …).
    pub objective: String,
    pub evaluations: usize,
    /// Evaluations that produced a valid measurement.
    pub valid: usize,
    pub wall_seconds: f64,
    /// Seconds since the Unix epoch.
    pub tuned_at: u64,
    /// The tool that wrote the entry (`tuner-runtime 0.1.0`).
    pub tool: String,
}

/// One cache file's contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub format_version: u32,
    /// The full cache key, hex.
    pub key: String,
    /// The kernel's launcher name (the spec's name, repeated for readers of the file).
    pub kernel: String,
    /// blake3 of the kernel source bytes, hex.
    pub source_blake3: String,
    pub spec: KernelSpec,
    pub device: DeviceFingerprint,
    /// The best config found, in parameter order.
    pub best: Map<String, Json>,
    pub best_score: f64,
    pub best_time_ms: Option<f64>,
    /// The config a build without an entry would use, and its time on this device.
    pub default: Map<String, Json>,
    pub default_time_ms: Option<f64>,
    pub tuning: TuningInfo,
    /// The configs measured first, in order, and where each came from (warm starts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<Start>,
}

/// A config the tune measured before searching: the kernel's default, or the best config of another
/// entry of the same kernel (another device or a neighbouring size).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// `default`, or the file name of the entry it came from.
    pub from: String,
    pub config: Map<String, Json>,
    /// Its time in this tune, when it ran.
    pub time_ms: Option<f64>,
}

/// The content key of the declared `spec` at `point`.
pub fn point_key(source_blake3: &str, spec: &KernelSpec, point: &[(String, i64)]) -> String {
    content_key(source_blake3, &spec.at(point))
}

/// blake3 of a kernel's source bytes, hex.
pub fn source_hash(source: &[u8]) -> String {
    blake3::hash(source).to_hex().to_string()
}

/// The device-independent part of a key: format version, source and spec.
pub fn content_key(source_blake3: &str, spec: &KernelSpec) -> String {
    let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    h.update(&u64::from(FORMAT_VERSION).to_le_bytes());
    part(&mut h, source_blake3.as_bytes());
    part(&mut h, &serde_json::to_vec(spec).expect("a spec is plain data and always serialises"));
    h.finalize().to_hex().to_string()
}

/// The cache key of `spec` with source hash `source_blake3` tuned on `device`.
pub fn cache_key(source_blake3: &str, spec: &KernelSpec, device: &DeviceFingerprint) -> String {
    let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    part(&mut h, content_key(source_blake3, spec).as_bytes());
    part(&mut h, &serde_json::to_vec(&device.identity()).expect("a device identity always serialises"));
    h.finalize().to_hex().to_string()
}

fn part(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The short form of a key used in file names and messages.
pub fn short(key: &str) -> &str {
    key.get(..SHORT).unwrap_or(key)
}

impl Entry {
    /// The file name this entry is stored under.
    pub fn file_name(&self) -> String {
        match sizes_slug(self.point()) {
            sizes if sizes.is_empty() => format!("{}-{}-{}.json", self.kernel, self.device.slug(), short(&self.key)),
            sizes => format!("{}-{}-{sizes}-{}.json", self.kernel, self.device.slug(), short(&self.key)),
        }
    }

    /// The size point it was tuned at: its spec's bench sizes.
    pub fn point(&self) -> &[(String, i64)] {
        &self.spec.bench.sizes
    }

    /// The entry as written to disk: pretty JSON with a trailing newline.
    pub fn to_pretty_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("an entry is plain data and always serialises");
        s.push('\n');
        s
    }

    /// Parses and verifies an entry read from `path` (see the module docs for what is checked).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Entry, CacheError> {
        Entry::parse_inner(bytes, path).map_err(|source| CacheError::Corrupt { path: path.to_owned(), source })
    }

    fn parse_inner(bytes: &[u8], path: &Path) -> Result<Entry, Corruption> {
        // The version is read first so that an entry from another format says so, rather than failing on
        // whichever field changed.
        let raw: Json = serde_json::from_slice(bytes)?;
        let version = raw.get("format_version").and_then(Json::as_u64);
        if let Some(found) = version.filter(|v| *v != u64::from(FORMAT_VERSION)) {
            return Err(Corruption::FormatVersion { found, expected: FORMAT_VERSION });
        }
        let entry: Entry = serde_json::from_value(raw)?;
        if entry.kernel != entry.spec.name {
            return Err(Corruption::WrongKernel { found: entry.kernel.clone(), expected: entry.spec.name.clone() });
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            let named = stem.split('-').next().unwrap_or_default();
            if named != entry.kernel {
                return Err(Corruption::WrongKernel { found: entry.kernel.clone(), expected: named.to_owned() });
            }
            let in_name = stem.rsplit('-').next().unwrap_or_default();
            if in_name != short(&entry.key) {
                return Err(Corruption::NameMismatch { in_name: in_name.to_owned(), stored: entry.key.clone() });
            }
        }
        let computed = cache_key(&entry.source_blake3, &entry.spec, &entry.device);
        if computed != entry.key {
            return Err(Corruption::KeyMismatch { stored: entry.key.clone(), computed });
        }
        if !entry.spec.buckets.is_empty() {
            return Err(Corruption::Buckets);
        }
        let checked = entry.spec.check().map_err(|e| Corruption::Spec(Box::new(e)))?;
        config_in(checked.space(), &entry.best, "best")?;
        config_in(checked.space(), &entry.default, "default")?;
        for start in &entry.starts {
            config_in(checked.space(), &start.config, "start")?;
            if let Some(v) = start.time_ms.filter(|v| !(TIME_RANGE_MS.0..=TIME_RANGE_MS.1).contains(v)) {
                return Err(Corruption::BadTime { field: "starts[].time_ms", value: v });
            }
        }
        for (field, value) in [("best_time_ms", entry.best_time_ms), ("default_time_ms", entry.default_time_ms)] {
            if let Some(v) = value.filter(|v| !(TIME_RANGE_MS.0..=TIME_RANGE_MS.1).contains(v)) {
                return Err(Corruption::BadTime { field, value: v });
            }
        }
        Ok(entry)
    }

    /// The best config, checked against `space` (the declared one, for codegen).
    pub fn best_config(&self, space: &Space) -> Result<Config, Corruption> {
        config_in(space, &self.best, "best")
    }

    /// The default config, checked against `space`.
    pub fn default_config(&self, space: &Space) -> Result<Config, Corruption> {
        config_in(space, &self.default, "default")
    }

    /// Whether this entry was tuned for the kernel as it is now: the same source, a point the declared
    /// spec lists, and the declared spec at that point.
    pub fn staleness(&self, source_blake3: &str, declared: &KernelSpec) -> Option<Staleness> {
        if self.source_blake3 != source_blake3 {
            Some(Staleness::Source)
        } else if self.spec != declared.at(self.point()) {
            Some(Staleness::Spec)
        } else if !declared.points().iter().any(|p| p == self.point()) {
            Some(Staleness::Size(tuner_spec::spec::point_text(self.point())))
        } else {
            None
        }
    }

    /// How much faster the best config is than the default, when both were timed.
    pub fn speedup(&self) -> Option<f64> {
        Some(self.default_time_ms? / self.best_time_ms?)
    }
}

/// A size point as a file-name part: `m1024-n1024-k1024` (names reduced to lowercase letters and digits).
pub fn sizes_slug(point: &[(String, i64)]) -> String {
    let part = |(n, v): &(String, i64)| {
        let name: String = n.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
        format!("{name}{v}")
    };
    point.iter().map(part).collect::<Vec<_>>().join("-")
}

/// Reads a JSON config object into a config of `space`, checking every value.
pub fn config_in(space: &Space, map: &Map<String, Json>, which: &'static str) -> Result<Config, Corruption> {
    space.config_of_json(map).map_err(|e| match e {
        JsonConfigError::NotScalar { param, found } => Corruption::NotScalar { which, param, found },
        JsonConfigError::Config(source) => Corruption::Config { which, source },
    })
}

/// A config as the JSON object an entry stores.
pub fn config_json(config: &Config) -> Map<String, Json> {
    config.iter().map(|(n, v)| (n.to_owned(), v.to_json())).collect()
}

/// What the cache directories hold ([`Cache::list`]).
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Files named like entries, in lookup order.
    pub entries: Vec<PathBuf>,
    /// Temporary files of writes that did not finish.
    pub temps: Vec<TempFile>,
    /// Anything else: not an entry of any launcher, never read by a build.
    pub strays: Vec<PathBuf>,
}

/// The temporary file of an atomic write ([`tuner_search::fsutil::write_atomic`]).
#[derive(Clone, Debug)]
pub struct TempFile {
    pub path: PathBuf,
    /// The writer's process id, from the name.
    pub writer: Option<u32>,
    /// Whether that process is still running (then the write may be in progress).
    pub alive: bool,
}

/// The kernel an entry file name belongs to: `<kernel>-<device slug>-<12 hex digits>.json`, where the
/// kernel is a Rust identifier and the slug is lowercase letters, digits and dashes.
pub fn entry_kernel(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".json")?;
    let (rest, key) = stem.rsplit_once('-')?;
    if key.len() != SHORT || !key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return None;
    }
    let (kernel, slug) = rest.split_once('-')?;
    let ident = !kernel.is_empty()
        && !kernel.starts_with(|c: char| c.is_ascii_digit())
        && kernel.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let slug_ok = !slug.is_empty() && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (ident && slug_ok).then_some(kernel)
}

/// Whether process `pid` is running (on Linux, by `/proc`; elsewhere it is assumed to be).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// A verified entry and where it was read from.
#[derive(Clone, Debug)]
pub struct Cached {
    pub path: PathBuf,
    pub entry: Entry,
}

/// What the cache holds for one kernel as it is now.
#[derive(Debug, Default)]
pub struct KernelCache {
    /// Entries tuned for this source and spec, one per device, in lookup order.
    pub fresh: Vec<Cached>,
    /// Intact entries tuned for another version of the kernel, or shadowed by an earlier directory.
    pub stale: Vec<(Cached, Staleness)>,
    /// Entries that failed verification.
    pub corrupt: Vec<CacheError>,
}

impl KernelCache {
    /// The fresh entry for `device`'s hardware at `point`, if any.
    pub fn for_point(&self, device: &DeviceFingerprint, point: &[(String, i64)]) -> Option<&Cached> {
        self.fresh.iter().find(|c| c.entry.device.same_hardware(device) && c.entry.point() == point)
    }

    /// The declared points `device` has no fresh entry for.
    pub fn missing_on(&self, device: &DeviceFingerprint, spec: &KernelSpec) -> Vec<Vec<(String, i64)>> {
        spec.points().into_iter().filter(|p| self.for_point(device, p).is_none()).collect()
    }

    /// The declared points no device has a fresh entry for.
    pub fn missing_everywhere(&self, spec: &KernelSpec) -> Vec<Vec<(String, i64)>> {
        spec.points().into_iter().filter(|p| !self.fresh.iter().any(|c| c.entry.point() == p.as_slice())).collect()
    }
}

/// The cache directories of one crate, in lookup order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    dirs: Vec<PathBuf>,
}

impl Cache {
    /// The lookup order documented in the module docs, with `env_dir` the value of `$AUTOTUNE_CACHE_DIR`.
    pub fn for_crate(crate_root: &Path, env_dir: Option<&Path>) -> Cache {
        let mut dirs = Vec::with_capacity(2);
        if let Some(d) = env_dir.filter(|d| !d.as_os_str().is_empty()) {
            dirs.push(crate_root.join(d));
        }
        let own = crate_root.join(CRATE_CACHE_DIR);
        if !dirs.contains(&own) {
            dirs.push(own);
        }
        Cache { dirs }
    }

    /// A cache over exactly these directories (the first is written to).
    pub fn with_dirs(dirs: Vec<PathBuf>) -> Cache {
        assert!(!dirs.is_empty(), "a cache has at least one directory");
        Cache { dirs }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Where new entries are written.
    pub fn write_dir(&self) -> &Path {
        &self.dirs[0]
    }

    /// Every file in the cache directories, sorted out: entries (named `<kernel>-<device>-<key>.json`), the
    /// temporary files of interrupted writes, and strays (anything else). The one place a cache directory
    /// is listed: a lookup reads only entries, so a stray file (`vector_add-notes.json`) or a temporary
    /// file left by a killed writer is never read as an entry; `check` and `list` report them. Entries are
    /// in lookup order, sorted by name within a directory; missing directories hold nothing.
    pub fn list(&self) -> Result<Listing, CacheError> {
        let mut out = Listing::default();
        for dir in &self.dirs {
            let items = match std::fs::read_dir(dir) {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CacheError::List { path: dir.clone(), source }),
            };
            let mut paths = Vec::new();
            for item in items {
                let item = item.map_err(|source| CacheError::List { path: dir.clone(), source })?;
                paths.push(item.path());
            }
            paths.sort();
            for path in paths {
                let Some(name) = file_name(&path) else {
                    out.strays.push(path);
                    continue;
                };
                if let Some(writer) = tuner_search::fsutil::temp_writer(name) {
                    out.temps.push(TempFile { alive: writer.is_some_and(process_alive), writer, path });
                } else if name.starts_with('.') || !path.is_file() {
                    // Dot files (`.gitkeep`) and directories are not the cache's business.
                } else if entry_kernel(name).is_some() {
                    out.entries.push(path);
                } else {
                    out.strays.push(path);
                }
            }
        }
        Ok(out)
    }

    /// Every entry file of `kernel`, in lookup order.
    pub fn files_of(&self, kernel: &str) -> Result<Vec<PathBuf>, CacheError> {
        Ok(self.list()?.entries.into_iter().filter(|p| file_name(p).and_then(entry_kernel) == Some(kernel)).collect())
    }

    /// Every entry file in the cache directories, in lookup order.
    pub fn all_files(&self) -> Result<Vec<PathBuf>, CacheError> {
        Ok(self.list()?.entries)
    }

    /// Reads and classifies every entry of `spec`'s kernel against the current source hash and spec.
    /// I/O errors listing a directory are errors; an unreadable or corrupt file is recorded in
    /// [`KernelCache::corrupt`].
    pub fn lookup(&self, spec: &KernelSpec, source_blake3: &str) -> Result<KernelCache, CacheError> {
        let mut out = KernelCache::default();
        for path in self.files_of(&spec.name)? {
            let entry = match std::fs::read(&path) {
                Ok(bytes) => Entry::parse(&bytes, &path),
                Err(source) => Err(CacheError::Read { path: path.clone(), source }),
            };
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.corrupt.push(e);
                    continue;
                }
            };
            let cached = Cached { path, entry };
            match cached.entry.staleness(source_blake3, spec) {
                Some(why) => out.stale.push((cached, why)),
                None if out.for_point(&cached.entry.device, cached.entry.point()).is_some() => {
                    // The same hardware already has a fresh entry at this point earlier in the lookup
                    // order: that one wins, and this one is reported as left over.
                    let winner = out.for_point(&cached.entry.device, cached.entry.point());
                    let winner = winner.map(|c| c.path.clone()).unwrap_or_default();
                    out.stale.push((cached, Staleness::Shadowed(winner)));
                }
                None => out.fresh.push(cached),
            }
        }
        Ok(out)
    }

    /// Writes `entry` atomically into the write directory and returns its path.
    pub fn write(&self, entry: &Entry) -> Result<PathBuf, CacheError> {
        let path = self.write_dir().join(entry.file_name());
        tuner_search::fsutil::write_atomic(&path, entry.to_pretty_json().as_bytes())
            .map_err(|source| CacheError::Write { path: path.clone(), source })?;
        Ok(path)
    }
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|n| n.to_str())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tuner_spec::spec::{Access, ArgSpec, BenchSpec, ElemType};

    pub(crate) fn spec() -> KernelSpec {
        KernelSpec {
            name: "vector_add".into(),
            kernel: "cuda/vector_add.cu".into(),
            entry: "vector_add".into(),
            params: vec![
                ("block".into(), vec![64.into(), 128.into(), 256.into()]),
                ("items".into(), vec![1.into(), 2.into(), 4.into()]),
            ],
            constraints: vec!["block * items <= 512".into()],
            default: None,
            bench: BenchSpec {
                sizes: vec![("n".into(), 1 << 20)],
                args: vec![
                    ArgSpec::Buffer { access: Access::In, elem: ElemType::F32, len: "n".into() },
                    ArgSpec::Buffer { access: Access::Out, elem: ElemType::F32, len: "n".into() },
                ],
                grid: vec!["ceil_div(n, block * items)".into()],
                block: vec!["block".into()],
                shared: None,
                bytes: Some("8 * n".into()),
                flops: None,
            },
            buckets: vec![],
        }
    }

    fn h100() -> DeviceFingerprint {
        DeviceFingerprint {
            name: "NVIDIA H100 80GB HBM3".into(),
            compute_capability: (9, 0),
            driver: Some("12.8".into()),
            nvrtc: Some("12.8".into()),
        }
    }

    fn entry(spec: &KernelSpec, source: &[u8], device: DeviceFingerprint) -> Entry {
        let source_blake3 = source_hash(source);
        let space = spec.check().unwrap().space().clone();
        let best = space.point_of_pairs([("block".to_owned(), 128.into()), ("items".to_owned(), 4.into())]).unwrap();
        Entry {
            format_version: FORMAT_VERSION,
            key: cache_key(&source_blake3, spec, &device),
            kernel: spec.name.clone(),
            source_blake3,
            spec: spec.clone(),
            device,
            best: config_json(&space.config(&best)),
            best_score: 2.0,
            best_time_ms: Some(0.5),
            default: config_json(spec.check().unwrap().default_config()),
            default_time_ms: Some(0.8),
            tuning: TuningInfo {
                strategy: "local".into(),
                objective: "1/time".into(),
                evaluations: 9,
                valid: 9,
                wall_seconds: 1.5,
                tuned_at: 0,
                tool: "tuner-runtime test".into(),
            },
            starts: vec![],
        }
    }

    fn write_raw(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn keys_depend_on_every_input_but_the_driver() {
        let s = spec();
        let k = cache_key(&source_hash(b"a"), &s, &h100());
        assert_eq!(k, cache_key(&source_hash(b"a"), &s, &h100()));
        assert_ne!(k, cache_key(&source_hash(b"b"), &s, &h100()));
        let mut s2 = s.clone();
        s2.constraints.push("items > 1".into());
        assert_ne!(k, cache_key(&source_hash(b"a"), &s2, &h100()));
        let mut a100 = h100();
        a100.compute_capability = (8, 0);
        assert_ne!(k, cache_key(&source_hash(b"a"), &s, &a100));
        let mut newer = h100();
        newer.driver = Some("13.0".into());
        assert_eq!(k, cache_key(&source_hash(b"a"), &s, &newer));
    }

    #[test]
    fn round_trip_through_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_dirs(vec![dir.path().to_owned()]);
        let e = entry(&spec(), b"src", h100());
        let path = cache.write(&e).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("vector_add-h100-80gb-hbm3-") && name.ends_with(".json"), "{name}");
        let found = cache.lookup(&spec(), &source_hash(b"src")).unwrap();
        assert_eq!(found.fresh.len(), 1);
        assert_eq!(found.fresh[0].entry, e);
        assert!(found.for_point(&h100(), &spec().bench.sizes).is_some());
        assert!(found.stale.is_empty() && found.corrupt.is_empty());
        assert_eq!(e.speedup(), Some(0.8 / 0.5));
        // Another kernel whose name starts the same is not picked up.
        let mut other = spec();
        other.name = "vector".into();
        assert!(cache.lookup(&other, &source_hash(b"src")).unwrap().fresh.is_empty());
    }

    #[test]
    fn changed_sources_and_specs_make_entries_stale() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_dirs(vec![dir.path().to_owned()]);
        cache.write(&entry(&spec(), b"src", h100())).unwrap();
        let found = cache.lookup(&spec(), &source_hash(b"src v2")).unwrap();
        assert!(found.fresh.is_empty());
        assert_eq!(found.stale[0].1, Staleness::Source);
        // Another bench size is another point: the entry is for a size the kernel no longer declares.
        let mut s2 = spec();
        s2.bench.sizes[0].1 = 1 << 21;
        let found = cache.lookup(&s2, &source_hash(b"src")).unwrap();
        assert_eq!(found.stale[0].1, Staleness::Size("n=1048576".into()));
        let mut s3 = spec();
        s3.constraints[0] = "block * items <= 256".into();
        let found = cache.lookup(&s3, &source_hash(b"src")).unwrap();
        assert_eq!(found.stale[0].1, Staleness::Spec);
    }

    /// Size buckets: each point has its own entry; adding a bucket keeps the other points' entries
    /// (those made before buckets existed too), removing one makes its entry stale.
    #[test]
    fn entries_are_per_point_and_survive_new_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_dirs(vec![dir.path().to_owned()]);
        let before = entry(&spec(), b"src", h100());
        cache.write(&before).unwrap();
        let mut bucketed = spec();
        bucketed.buckets = vec![vec![("n".into(), 1 << 20)], vec![("n".into(), 1 << 26)]];
        let found = cache.lookup(&bucketed, &source_hash(b"src")).unwrap();
        assert_eq!(found.fresh.len(), 1, "{:?}", found.stale);
        assert_eq!(found.missing_on(&h100(), &bucketed), vec![vec![("n".to_owned(), 1 << 26)]]);
        assert_eq!(found.missing_everywhere(&bucketed).len(), 1);
        // An entry at the other point, written under a name that says its size.
        let big = entry(&bucketed.at(&[("n".into(), 1 << 26)]), b"src", h100());
        let path = cache.write(&big).unwrap();
        assert!(path.file_name().unwrap().to_str().unwrap().starts_with("vector_add-h100-80gb-hbm3-n67108864-"));
        let found = cache.lookup(&bucketed, &source_hash(b"src")).unwrap();
        assert_eq!(found.fresh.len(), 2);
        assert!(found.missing_on(&h100(), &bucketed).is_empty());
        assert_eq!(found.missing_on(&DeviceFingerprint { name: "NVIDIA H200".into(), ..h100() }, &bucketed).len(), 2);
        // Dropping the 2^20 bucket leaves its entry stale, saying why.
        bucketed.buckets.remove(0);
        let found = cache.lookup(&bucketed, &source_hash(b"src")).unwrap();
        assert_eq!(found.fresh.len(), 1);
        assert_eq!(found.stale[0].1, Staleness::Size("n=1048576".into()));
        // A hand edit that moves an entry to another size no longer matches its key, naming the file.
        let mut moved = big.clone();
        moved.spec.bench.sizes[0].1 = 1 << 20;
        let text = moved.to_pretty_json();
        let p = write_raw(dir.path(), &big.file_name(), &text);
        let e = Entry::parse(text.as_bytes(), &p).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        assert!(tuner_spec::error_chain(&e).contains("does not match the entry's contents"), "{e}");
    }

    #[test]
    fn earlier_directories_win_per_device() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut e = entry(&spec(), b"src", h100());
        Cache::with_dirs(vec![b.path().to_owned()]).write(&e).unwrap();
        e.best = config_json(spec().check().unwrap().default_config());
        Cache::with_dirs(vec![a.path().to_owned()]).write(&e).unwrap();
        let found = Cache::with_dirs(vec![a.path().to_owned(), b.path().to_owned()])
            .lookup(&spec(), &source_hash(b"src"))
            .unwrap();
        assert_eq!(found.fresh.len(), 1);
        assert!(found.fresh[0].path.starts_with(a.path()));
        assert_eq!(found.stale.len(), 1);
        assert_eq!(found.stale[0].1, Staleness::Shadowed(found.fresh[0].path.clone()));
    }

    #[test]
    fn the_env_dir_comes_first() {
        let c = Cache::for_crate(Path::new("/k"), Some(Path::new("shared/cache")));
        assert_eq!(c.dirs(), &[PathBuf::from("/k/shared/cache"), PathBuf::from("/k/autotune")]);
        assert_eq!(Cache::for_crate(Path::new("/k"), None).dirs(), &[PathBuf::from("/k/autotune")]);
        assert_eq!(Cache::for_crate(Path::new("/k"), Some(Path::new("autotune"))).dirs().len(), 1);
    }

    /// Each corruption is an error naming the file, with the reason as its source.
    #[test]
    fn corrupt_entries_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_dirs(vec![dir.path().to_owned()]);
        let good = entry(&spec(), b"src", h100());
        let name = good.file_name();
        let json = good.to_pretty_json();
        let cases: Vec<(String, &str)> = vec![
            (json[..json.len() / 2].to_owned(), "not a cache entry"),
            (json.replace("\"format_version\": 1", "\"format_version\": 7"), "format version 7"),
            (json.replacen("\"block\": 128", "\"block\": 100", 1), "does not allow 100"),
            (json.replacen("\"block\": 128", "\"block\": \"128 }; panic!(); {\"", 1), "does not allow"),
            (json.replacen("\"block\": 128", "\"block\": 1.5", 1), "not an integer, boolean or string"),
            (json.replacen("\"block\": 128", "\"block\": [128]", 1), "not an integer, boolean or string"),
            (json.replacen("\"block\": 128", "\"block\": 256", 1), "breaks constraint"),
            (json.replacen("\"block\": 128", "\"blk\": 128", 1), "unknown parameter `blk`"),
            (json.replace("<= 512", "<= 1024"), "does not match the entry's contents"),
            (json.replace("\"best_time_ms\": 0.5", "\"best_time_ms\": -1.0"), "not a plausible time"),
            (json.replace("\"best_time_ms\": 0.5", "\"best_time_ms\": 1e-300"), "not a plausible time"),
            (json.replace("\"tuning\": {", "\"extra\": 1, \"tuning\": {"), "unknown field"),
        ];
        for (text, reason) in cases {
            let path = write_raw(dir.path(), &name, &text);
            let found = cache.lookup(&spec(), &source_hash(b"src")).unwrap();
            assert!(found.fresh.is_empty(), "accepted a corrupt entry ({reason})");
            let err = &found.corrupt[0];
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
            let chain = tuner_spec::error_chain(err);
            assert!(chain.contains(reason), "expected `{reason}` in: {chain}");
        }
        // A correct entry under another key's file name.
        std::fs::remove_file(dir.path().join(&name)).unwrap();
        write_raw(dir.path(), "vector_add-h100-000000000000.json", &json);
        let found = cache.lookup(&spec(), &source_hash(b"src")).unwrap();
        assert!(tuner_spec::error_chain(&found.corrupt[0]).contains("the file name says key 000000000000"));
    }

    /// Files that are no launcher's entries are never read as entries: a build of the kernel is not
    /// broken by them, and the listing reports them, with the temporary files of unfinished writes.
    #[test]
    fn strays_and_temporary_files_are_listed_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_dirs(vec![dir.path().to_owned()]);
        let good = entry(&spec(), b"src", h100());
        let path = cache.write(&good).unwrap();
        write_raw(dir.path(), "vector_add-notes.json", "{}");
        write_raw(dir.path(), "README.md", "notes");
        write_raw(dir.path(), ".gitkeep", "");
        // A writer that is gone (no process has this id on Linux: pids stop below 2^22) and one running now.
        let dead = write_raw(dir.path(), &format!(".{}.4294967295.0.tmp", good.file_name()), "{");
        let live = write_raw(dir.path(), &format!(".{}.{}.0.tmp", good.file_name(), std::process::id()), "{");
        let found = cache.lookup(&spec(), &source_hash(b"src")).unwrap();
        assert!(found.corrupt.is_empty(), "{:?}", found.corrupt);
        assert_eq!(found.fresh.len(), 1);
        let listing = cache.list().unwrap();
        assert_eq!(listing.entries, vec![path]);
        assert_eq!(listing.strays, vec![dir.path().join("README.md"), dir.path().join("vector_add-notes.json")]);
        let temps: Vec<(PathBuf, Option<u32>, bool)> =
            listing.temps.iter().map(|t| (t.path.clone(), t.writer, t.alive)).collect();
        assert!(temps.contains(&(dead, Some(4294967295), false)), "{temps:?}");
        if cfg!(target_os = "linux") {
            assert!(temps.contains(&(live, Some(std::process::id()), true)), "{temps:?}");
        }
        assert_eq!(entry_kernel("vector_add-h100-80gb-hbm3-0123456789ab.json"), Some("vector_add"));
        for not in ["vector_add-notes.json", "vector_add-h100-0123456789AB.json", "-h100-0123456789ab.json"] {
            assert_eq!(entry_kernel(not), None, "{not}");
        }
    }

    /// Writers racing on one entry always leave a complete, valid file.
    #[test]
    fn concurrent_writers_never_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_dirs(vec![dir.path().to_owned()]);
        let e = entry(&spec(), b"src", h100());
        std::thread::scope(|s| {
            for i in 0..8 {
                let (cache, mut e) = (&cache, e.clone());
                s.spawn(move || {
                    for j in 0..20 {
                        e.tuning.evaluations = i * 100 + j;
                        cache.write(&e).unwrap();
                        let found = cache.lookup(&spec(), &source_hash(b"src")).unwrap();
                        assert!(found.corrupt.is_empty(), "{:?}", found.corrupt);
                        assert_eq!(found.fresh.len(), 1);
                    }
                });
            }
        });
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files are left behind");
    }
}
