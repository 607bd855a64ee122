//! Finding a crate's annotated launchers: every `#[autotune(…)]` fn under `src/`, with its kernel source.
//!
//! The build script, `cargo autotune tune`, `check` and `list` all start here, so they agree on what the
//! crate's kernels are. Files are visited in sorted order, so every run sees the kernels in the same order.
//!
//! A launcher whose attribute does not parse, or a source file that is not valid Rust, is not an error
//! here: the compiler and the `#[autotune]` macro report those with spans, which is far more useful than
//! anything a build script can print. They are returned as [`Problem`]s for the CLI to show.

use std::path::{Path, PathBuf};

use crate::cache::source_hash;
use tuner_spec::spec::find_specs;
use tuner_spec::CheckedSpec;

/// Why a crate could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kernel `{kernel}` (declared in {declared_in}): cannot read its source {path}")]
    KernelSource {
        kernel: String,
        declared_in: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("two #[autotune] launchers are named `{kernel}` ({first} and {second}): names must be unique in a crate, since the cache and the generated code are named after them")]
    Duplicate { kernel: String, first: PathBuf, second: PathBuf },
}

/// One annotated launcher.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub spec: CheckedSpec,
    /// The Rust file that declares it.
    pub declared_in: PathBuf,
    /// The kernel source file.
    pub source_path: PathBuf,
    pub source: Vec<u8>,
    /// blake3 of `source`, hex.
    pub source_blake3: String,
}

/// Something the compiler will report better than we can.
#[derive(Clone, Debug)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
}

/// What a crate declares.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub kernels: Vec<Kernel>,
    /// Every `.rs` file under `src/`.
    pub rust_files: Vec<PathBuf>,
    pub problems: Vec<Problem>,
}

/// Scans `<crate_root>/src` for annotated launchers.
pub fn scan_crate(crate_root: &Path) -> Result<Scan, ScanError> {
    let mut scan = Scan::default();
    rust_files(&crate_root.join("src"), &mut scan.rust_files)?;
    for file in scan.rust_files.clone() {
        let text = std::fs::read_to_string(&file).map_err(|source| ScanError::Io { path: file.clone(), source })?;
        let found = match find_specs(&text) {
            Ok(found) => found,
            Err(e) => {
                scan.problems.push(Problem { path: file.clone(), message: format!("{e}: {}", e.0) });
                continue;
            }
        };
        for spec in found {
            let spec = match spec.map(|s| s.check().map_err(|e| tuner_spec::error_chain(&e))) {
                Ok(Ok(spec)) => spec,
                Ok(Err(message)) => {
                    scan.problems.push(Problem { path: file.clone(), message });
                    continue;
                }
                Err(e) => {
                    scan.problems.push(Problem { path: file.clone(), message: e.to_string() });
                    continue;
                }
            };
            if let Some(first) = scan.kernels.iter().find(|k| k.spec.name == spec.name) {
                return Err(ScanError::Duplicate {
                    kernel: spec.name.clone(),
                    first: first.declared_in.clone(),
                    second: file.clone(),
                });
            }
            let source_path = crate_root.join(&spec.kernel);
            let source = std::fs::read(&source_path).map_err(|source| ScanError::KernelSource {
                kernel: spec.name.clone(),
                declared_in: file.clone(),
                path: source_path.clone(),
                source,
            })?;
            scan.kernels.push(Kernel {
                source_blake3: source_hash(&source),
                spec,
                declared_in: file.clone(),
                source_path,
                source,
            });
        }
    }
    Ok(scan)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ScanError> {
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(ScanError::Io { path: dir.to_owned(), source }),
    };
    let mut entries = Vec::new();
    for item in listing {
        let item = item.map_err(|source| ScanError::Io { path: dir.to_owned(), source })?;
        entries.push(item.path());
    }
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use crate::testing::{fixture_crate, LAUNCHER};

    #[test]
    fn finds_launchers_in_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        fixture_crate(dir.path());
        let scan = scan_crate(dir.path()).unwrap();
        assert_eq!(scan.rust_files.len(), 2);
        assert_eq!(scan.kernels.len(), 1);
        let k = &scan.kernels[0];
        assert_eq!(k.spec.name, "scale");
        assert_eq!(k.source_blake3, source_hash(&std::fs::read(dir.path().join("cuda/scale.cu")).unwrap()));
        assert!(scan.problems.is_empty());
    }

    #[test]
    fn bad_attributes_are_left_to_the_compiler() {
        let dir = tempfile::tempdir().unwrap();
        fixture_crate(dir.path());
        std::fs::write(
            dir.path().join("src/bad.rs"),
            LAUNCHER.replace("space(block", "space(blok").replace("scale()", "bad()"),
        )
        .unwrap();
        std::fs::write(dir.path().join("src/broken.rs"), "fn (").unwrap();
        let scan = scan_crate(dir.path()).unwrap();
        assert_eq!(scan.kernels.len(), 1);
        assert_eq!(scan.problems.len(), 2, "{:?}", scan.problems);
    }

    #[test]
    fn duplicates_and_missing_sources_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        fixture_crate(dir.path());
        std::fs::write(dir.path().join("src/again.rs"), LAUNCHER).unwrap();
        let e = scan_crate(dir.path()).unwrap_err();
        assert!(e.to_string().contains("two #[autotune] launchers are named `scale`"), "{e}");
        std::fs::remove_file(dir.path().join("src/again.rs")).unwrap();
        std::fs::remove_file(dir.path().join("cuda/scale.cu")).unwrap();
        let e = scan_crate(dir.path()).unwrap_err();
        assert!(e.to_string().starts_with("kernel `scale` (declared in "), "{e}");
        assert!(e.to_string().contains("cuda/scale.cu"), "{e}");
    }
}
