//! The build-script driver behind `fn main() { tuner_runtime::build::tune_crate().expect("autotune"); }`.
//!
//! [`tune_crate_with`] (which the facade's `tune_crate` calls with the CUDA backend's detector) finds every `#[autotune]` launcher of the crate being built ([`crate::scan`]), looks up
//! its cache entries ([`crate::cache`]) and writes `$OUT_DIR/autotune/<fn>.rs` ([`crate::codegen`]),
//! which the macro includes. What happens on a miss depends on the machine:
//!
//! | cache                     | GPU (feature `cuda`)         | no GPU                     | `AUTOTUNE_OFFLINE=1`   |
//! |---------------------------|------------------------------|----------------------------|------------------------|
//! | entry for this GPU        | bake it                      | —                          | bake it                |
//! | entries for other devices | tune, write, bake all        | bake them (picked at run time) | bake them, warn    |
//! | no fresh entry            | tune, write, bake            | default config + warning   | error naming the fix   |
//!
//! A corrupt entry is always an error naming the file: a build never guesses around damaged data.
//!
//! # Cargo's rules
//!
//! Stdout carries `cargo::` directives only; progress goes to stderr. Once a build script prints one
//! `rerun-if-changed`, Cargo stops watching the package, so every input is listed: `build.rs`, `src/`
//! (scanned recursively), each kernel source and each cache directory, plus `rerun-if-env-changed` for
//! every variable of [`settings::vars`], the one list the settings are read through. A warm `cargo
//! build` then runs nothing.
//!
//! # A rerun that costs nothing
//!
//! Touching any file under `src/` reruns the script. It first hashes what its output depends on (the
//! attribute texts and launcher names, the kernel sources they name, the cache directories' files, the
//! settings and this crate's version: [`digest`]) and, when that matches the digest the last successful
//! run stored in `OUT_DIR`, replays that run's directives and returns: no parsing, no cache reads, no GPU
//! detection. Otherwise it runs in full; the GPU is looked for only then, and only when the settings allow
//! tuning. Generated files are rewritten only when their content changes, so rustc sees no change either. A cache directory that does not exist
//! is listed too — Cargo reruns the script on every build until it does — because otherwise the entries
//! `cargo autotune tune` later writes there would go unnoticed.
//!
//! Writing into the committed cache from a build script breaks Cargo's "write only to `OUT_DIR`" advice;
//! it happens only on a miss on a GPU machine, atomically, with a warning to commit the file. (The new
//! file makes Cargo run the script once more on the next build, which is then a hit.) `cargo
//! autotune tune` is the preferred writer. [`tune_crate`] returns a `Result` as Cargo advises for build
//! helpers; [`Error`]'s `Debug` prints the whole cause chain, so `.expect("autotune")` reads well.

// A build fails at most once per run, so the size of its error does not matter; its variants keep their
// context inline so that the message needs no allocation juggling.
#![allow(clippy::result_large_err)]

pub mod cache;
pub mod codegen;
pub mod digest;
pub mod scan;
pub mod settings;
#[doc(hidden)]
pub mod testing;
pub mod tuning;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use tuner_search::Gpu;

use crate::cache::{point_key, short, Cache, CacheError, Cached};
use crate::codegen::CodegenError;
use crate::scan::{scan_crate, Kernel, ScanError};
pub use crate::settings::{is_truthy, SearchSettings, Settings, SettingsError, CACHE_DIR_ENV, OFFLINE_ENV};
use tuner_spec::spec::point_text;

/// Why the build script failed.
#[derive(thiserror::Error)]
pub enum Error {
    #[error("`{0}` is not set: tuner_runtime::build::tune_crate() must be called from a build script")]
    NotABuildScript(&'static str),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(
        "{OFFLINE_ENV} is set but there is no cached config for kernel `{kernel}`{at} (content key {key}{stale}); \
         searched {dirs}; run `cargo autotune tune --manifest-path {manifest}` on a GPU machine and commit the \
         entries it writes, or unset {OFFLINE_ENV}",
        at = if .sizes.is_empty() { String::new() } else { format!(" at {}", .sizes.join("; ")) },
        dirs = .dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        manifest = .manifest.display(),
        stale = if .stale.is_empty() { String::new() } else { format!("; stale: {}", .stale.join(", ")) },
    )]
    OfflineMiss {
        kernel: String,
        /// The content key of the first missing point.
        key: String,
        /// The missing size points, when the kernel declares several.
        sizes: Vec<String>,
        dirs: Vec<PathBuf>,
        manifest: PathBuf,
        stale: Vec<String>,
    },
    #[error("cannot write build-script output")]
    Output(#[source] std::io::Error),
    #[error("the benchmark worker this build script served as ended with status {0}")]
    Worker(i32),
}

impl fmt::Debug for Error {
    /// The message and its causes, so that `tune_crate().expect("autotune")` prints something useful.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&tuner_spec::error_chain(self))
    }
}

/// What the build script was given: Cargo's variables and the settings, each read once.
#[derive(Clone, Debug)]
pub struct BuildEnv {
    /// `CARGO_MANIFEST_DIR`: the crate root.
    pub crate_root: PathBuf,
    /// `OUT_DIR`.
    pub out_dir: PathBuf,
    pub settings: Settings,
}

impl BuildEnv {
    /// Reads the build script's environment.
    pub fn from_process() -> Result<BuildEnv, Error> {
        let get = |k: &'static str| std::env::var_os(k).ok_or(Error::NotABuildScript(k));
        Ok(BuildEnv {
            crate_root: get("CARGO_MANIFEST_DIR")?.into(),
            out_dir: get("OUT_DIR")?.into(),
            settings: Settings::from_env()?,
        })
    }
}

/// Finds the GPU to tune on, or says why there is none.
pub type DetectGpu<'a> = &'a dyn Fn(&Settings) -> Result<Box<dyn Gpu>, String>;

/// The build-script entry: see the module docs. `detect` is asked for a GPU only when the digest says
/// something changed and the settings allow tuning.
pub fn tune_crate_with(detect: DetectGpu<'_>) -> Result<(), Error> {
    let env = BuildEnv::from_process()?;
    let digest = digest::of_inputs(&env);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Some(recorded) = digest::recorded(&env.out_dir, &digest) {
        return out.write_all(recorded.as_bytes()).map_err(Error::Output);
    }
    let mut gpu = if env.settings.offline {
        None
    } else {
        match detect(&env.settings) {
            Ok(gpu) => Some(gpu),
            Err(why) => {
                eprintln!("autotune: no GPU to tune on: {why}");
                None
            }
        }
    };
    let mut directives = Vec::new();
    let outcomes = run(&env, gpu.as_deref_mut(), &mut directives)?;
    out.write_all(&directives).map_err(Error::Output)?;
    // Only a run that tuned changed its inputs (it wrote a cache entry): then they are hashed again.
    let tuned = outcomes.iter().any(|(_, o)| matches!(o, Outcome::Tuned(_)));
    let digest = if tuned { digest::of_inputs(&env) } else { digest };
    digest::record(&env.out_dir, &digest, &directives);
    Ok(())
}

/// What one build did with each kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Baked from these cache files.
    Hit(Vec<PathBuf>),
    /// Tuned here (one entry per missing size point) and written to these files.
    Tuned(Vec<PathBuf>),
    /// No entry: the default config was baked.
    Default,
}

/// Runs the build for `env`, printing directives to `out`; returns what happened to each kernel.
pub fn run(
    env: &BuildEnv,
    mut gpu: Option<&mut (dyn Gpu + 'static)>,
    out: &mut dyn Write,
) -> Result<Vec<(String, Outcome)>, Error> {
    let scan = scan_crate(&env.crate_root)?;
    let cache = Cache::for_crate(&env.crate_root, env.settings.cache_dir.as_deref());
    let mut d = Directives { out };
    let build_rs = env.crate_root.join("build.rs");
    if build_rs.exists() {
        d.rerun_if_changed(&build_rs)?;
    }
    d.rerun_if_changed(&env.crate_root.join("src"))?;
    for dir in cache.dirs() {
        d.rerun_if_changed(dir)?;
    }
    for var in settings::vars() {
        d.line(&format!("rerun-if-env-changed={var}"))?;
    }
    let manifest = env.crate_root.join("Cargo.toml");
    let mut outcomes = Vec::with_capacity(scan.kernels.len());
    for kernel in &scan.kernels {
        d.rerun_if_changed(&kernel.source_path)?;
        let outcome = build_kernel(env, &cache, kernel, gpu.as_deref_mut(), &manifest, &mut d)?;
        outcomes.push((kernel.spec.name.clone(), outcome));
    }
    Ok(outcomes)
}

fn build_kernel(
    env: &BuildEnv,
    cache: &Cache,
    kernel: &Kernel,
    gpu: Option<&mut (dyn Gpu + 'static)>,
    manifest: &Path,
    d: &mut Directives<'_>,
) -> Result<Outcome, Error> {
    let name = &kernel.spec.name;
    let found = cache.lookup(&kernel.spec, &kernel.source_blake3)?;
    // With a GPU, the points it has no entry of its own for are tuned; without one, a point no GPU has an
    // entry for is a miss.
    let missing = match &gpu {
        Some(gpu) => found.missing_on(gpu.fingerprint(), &kernel.spec),
        None => found.missing_everywhere(&kernel.spec),
    };
    if let Some(e) = found.corrupt.into_iter().next() {
        return Err(e.into());
    }
    let stale: Vec<String> = found.stale.iter().map(|(c, why)| format!("{} ({why})", c.path.display())).collect();
    let mut fresh: Vec<Cached> = found.fresh;
    let fix = format!("run `cargo autotune tune --manifest-path {}` on a GPU machine", manifest.display());
    let default = || kernel.spec.default_config().to_string();
    let points = kernel.spec.points();
    let sized = |p: &[(String, i64)]| if points.len() > 1 { format!(" at {}", point_text(p)) } else { String::new() };

    let outcome = match gpu {
        Some(gpu) => {
            let mut tuned = Vec::new();
            for point in &missing {
                match tune_here(env, cache, kernel, point, gpu, &fresh) {
                    Ok(cached) => {
                        let e = &cached.entry;
                        let speedup = e.speedup().map(|s| format!(", {s:.2}x the default")).unwrap_or_default();
                        d.warning(
                            name,
                            &format!(
                                "tuned{} on {} in {:.0}s: best {}{speedup}; wrote {}; commit it",
                                sized(point),
                                e.device.name,
                                e.tuning.wall_seconds,
                                serde_json::Value::Object(e.best.clone()),
                                cached.path.display()
                            ),
                        )?;
                        tuned.push(cached.path.clone());
                        fresh.push(cached);
                    }
                    Err(why) => {
                        d.warning(
                            name,
                            &format!(
                                "could not tune{} on this GPU ({why}); launches there use the nearest entry or the defaults {}; {fix}",
                                sized(point),
                                default()
                            ),
                        )?;
                    }
                }
            }
            if tuned.is_empty() {
                outcome_of(&fresh)
            } else {
                Outcome::Tuned(tuned)
            }
        }
        None => {
            if let Some(first) = missing.first().filter(|_| env.settings.offline) {
                return Err(Error::OfflineMiss {
                    kernel: name.clone(),
                    key: short(&point_key(&kernel.source_blake3, &kernel.spec, first)).to_owned(),
                    sizes: if points.len() > 1 { missing.iter().map(|p| point_text(p)).collect() } else { Vec::new() },
                    dirs: cache.dirs().to_vec(),
                    manifest: manifest.to_owned(),
                    stale,
                });
            }
            if !missing.is_empty() {
                let why =
                    if stale.is_empty() { String::new() } else { format!(" (stale entries: {})", stale.join(", ")) };
                let at = if points.len() > 1 {
                    format!(" at {}", missing.iter().map(|p| point_text(p)).collect::<Vec<_>>().join("; "))
                } else {
                    String::new()
                };
                let fallback = if fresh.is_empty() {
                    format!("using defaults {}", default())
                } else {
                    "launches there use the nearest tuned size".to_owned()
                };
                d.warning(
                    name,
                    &format!(
                        "no GPU and no cached config{at}{why}; {fallback}; {fix} and commit {}",
                        cache.write_dir().display()
                    ),
                )?;
            }
            outcome_of(&fresh)
        }
    };
    crate::codegen::write(&env.out_dir, &kernel.spec, &fresh)?;
    Ok(outcome)
}

fn outcome_of(fresh: &[Cached]) -> Outcome {
    if fresh.is_empty() {
        Outcome::Default
    } else {
        Outcome::Hit(fresh.iter().map(|c| c.path.clone()).collect())
    }
}

/// Tunes `kernel` at `point` on `gpu`, warm-started from the kernel's `fresh` entries, and writes the
/// entry.
fn tune_here(
    env: &BuildEnv,
    cache: &Cache,
    kernel: &Kernel,
    point: &[(String, i64)],
    gpu: &mut dyn Gpu,
    fresh: &[Cached],
) -> Result<Cached, Box<dyn std::error::Error + Send + Sync>> {
    let device = gpu.fingerprint().clone();
    let announce = |_: &[tuning::WarmStart]| {
        eprintln!("autotune: {}: tuning at {} on {device}", kernel.spec.name, point_text(point));
    };
    let entry = tuning::tune_point(kernel, point, gpu, &env.settings.tune_options(), fresh, announce)?;
    let path = cache.write(&entry)?;
    Ok(Cached { path, entry })
}

/// Writes `cargo::` directives, one per line.
struct Directives<'a> {
    out: &'a mut dyn Write,
}

impl Directives<'_> {
    fn line(&mut self, directive: &str) -> Result<(), Error> {
        writeln!(self.out, "cargo::{directive}").map_err(Error::Output)
    }

    fn rerun_if_changed(&mut self, path: &Path) -> Result<(), Error> {
        self.line(&format!("rerun-if-changed={}", path.display()))
    }

    /// One `cargo::warning` line, `autotune: <fn>: <message>`; newlines would end the directive early.
    fn warning(&mut self, kernel: &str, message: &str) -> Result<(), Error> {
        self.line(&format!("warning=autotune: {kernel}: {}", message.replace(['\n', '\r'], " ")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cache::{source_hash, Entry};
    use crate::testing::{fixture_crate, FakeGpu};

    struct Env {
        _dir: tempfile::TempDir,
        env: BuildEnv,
    }

    fn setup(offline: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("crate");
        fixture_crate(&root);
        let mut settings = Settings::default();
        settings.offline = offline;
        settings.search.max_evaluations = Some(6);
        let env = BuildEnv { out_dir: dir.path().join("out"), crate_root: root, settings };
        Env { _dir: dir, env }
    }

    fn directives(
        env: &BuildEnv,
        gpu: Option<&mut (dyn Gpu + 'static)>,
    ) -> (Result<Vec<(String, Outcome)>, Error>, String) {
        let mut out = Vec::new();
        let r = run(env, gpu, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn no_gpu_and_no_entry_bakes_the_default_with_one_warning() {
        let t = setup(false);
        let (r, out) = directives(&t.env, None);
        assert_eq!(r.unwrap(), vec![("scale".to_owned(), Outcome::Default)]);
        let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("cargo::warning=")).collect();
        assert_eq!(warnings.len(), 1, "{out}");
        assert!(warnings[0].starts_with("cargo::warning=autotune: scale: no GPU"), "{out}");
        assert!(
            warnings[0].contains("{'block': 64, 'items': 1}") && warnings[0].contains("cargo autotune tune"),
            "{out}"
        );
        let generated = std::fs::read_to_string(t.env.out_dir.join("autotune/scale.rs")).unwrap();
        assert!(generated.contains("block : 64u32 , items : 1u32"), "{generated}");
        // Every input is watched, and only directives reach stdout.
        let root = t.env.crate_root.display().to_string();
        for want in [format!("rerun-if-changed={root}/src"), format!("rerun-if-changed={root}/cuda/scale.cu")] {
            assert!(out.contains(&want), "missing {want} in {out}");
        }
        for var in settings::vars() {
            assert!(out.contains(&format!("cargo::rerun-if-env-changed={var}\n")), "missing {var}");
        }
        assert!(out.lines().all(|l| l.starts_with("cargo::")), "{out}");
    }

    #[test]
    fn a_gpu_tunes_a_miss_then_hits() {
        let t = setup(false);
        let mut gpu = FakeGpu::new(t._dir.path());
        let (r, out) = directives(&t.env, Some(&mut gpu));
        let path = match &r.unwrap()[0].1 {
            Outcome::Tuned(p) => p[0].clone(),
            other => panic!("expected a tuning, got {other:?}"),
        };
        assert!(path.starts_with(t.env.crate_root.join("autotune")), "{}", path.display());
        assert!(out.contains("cargo::warning=autotune: scale: tuned on Fake GPU"), "{out}");
        let entry = Entry::parse(&std::fs::read(&path).unwrap(), &path).unwrap();
        // The table's optimum is block * items == 256.
        let best = entry.best_config(entry.spec.check().unwrap().space()).unwrap();
        assert_eq!(best.int("block").unwrap() * best.int("items").unwrap(), 256, "{best}");
        // Second build: a hit, no warning, same generated code.
        let (r, out) = directives(&t.env, Some(&mut gpu));
        assert_eq!(r.unwrap()[0].1, Outcome::Hit(vec![path.clone()]));
        assert!(!out.contains("warning"), "{out}");
        // And with no GPU, the entry is baked for its device.
        let (r, _) = directives(&t.env, None);
        assert_eq!(r.unwrap()[0].1, Outcome::Hit(vec![path]));
        let generated = std::fs::read_to_string(t.env.out_dir.join("autotune/scale.rs")).unwrap();
        assert!(generated.contains("device : \"Fake GPU\""), "{generated}");
    }

    #[test]
    fn offline_misses_fail_naming_kernel_key_dirs_and_fix() {
        let t = setup(true);
        let (r, _) = directives(&t.env, None);
        let e = r.unwrap_err();
        let msg = format!("{e:?}");
        let kernel = crate::scan::scan_crate(&t.env.crate_root).unwrap().kernels.remove(0);
        let key = short(&point_key(&kernel.source_blake3, &kernel.spec, &kernel.spec.bench.sizes)).to_owned();
        for want in [
            "AUTOTUNE_OFFLINE is set but there is no cached config for kernel `scale`",
            &key,
            &t.env.crate_root.join("autotune").display().to_string(),
            "cargo autotune tune --manifest-path",
        ] {
            assert!(msg.contains(want), "missing `{want}` in {msg}");
        }
    }

    #[test]
    fn offline_hits_build_and_stale_entries_are_named() {
        let t = setup(false);
        let mut gpu = FakeGpu::new(t._dir.path());
        directives(&t.env, Some(&mut gpu)).0.unwrap();
        let mut offline = t.env.clone();
        offline.settings.offline = true;
        assert!(matches!(directives(&offline, None).0.unwrap()[0].1, Outcome::Hit(_)));
        // Changing the kernel source makes the entry stale: offline, that is a miss that says so.
        std::fs::write(t.env.crate_root.join("cuda/scale.cu"), "// v2\n").unwrap();
        let e = directives(&offline, None).0.unwrap_err();
        assert!(e.to_string().contains("stale: ") && e.to_string().contains("kernel source changed"), "{e}");
        assert_ne!(source_hash(b"// v2\n"), "");
    }

    #[test]
    fn corrupt_entries_fail_the_build_naming_the_file() {
        let t = setup(false);
        let mut gpu = FakeGpu::new(t._dir.path());
        let r = directives(&t.env, Some(&mut gpu)).0.unwrap();
        let Outcome::Tuned(paths) = &r[0].1 else { panic!("not tuned") };
        let path = &paths[0];
        let text = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, &text[..text.len() - 20]).unwrap();
        let e = directives(&t.env, None).0.unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(format!("{e:?}").contains("not a cache entry"), "{e:?}");
    }

    #[test]
    fn flags_are_truthy() {
        assert!(is_truthy(Some("1")) && is_truthy(Some("true")) && is_truthy(Some("yes")));
        assert!(!is_truthy(None) && !is_truthy(Some("")) && !is_truthy(Some("0")) && !is_truthy(Some("false")));
    }
}
