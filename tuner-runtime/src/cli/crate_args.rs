//! Which crate `tune`, `check` and `list` work on: `--manifest-path`, `-p`, or the crate around the
//! current directory, as cargo itself picks it.
//!
//! `-p` asks cargo (`$CARGO metadata --no-deps`) for the workspace's packages, as external cargo
//! commands should, rather than reading manifests here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use clap::Args;

/// The flags every crate-level command shares.
#[derive(Debug, Args)]
pub struct CrateArgs {
    /// Path to the crate's Cargo.toml (default: the nearest one above the current directory).
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// The workspace package to work on.
    #[arg(short, long, value_name = "NAME")]
    pub package: Option<String>,
    /// JSON Lines on stdout (see `cli::json`); diagnostics stay on stderr.
    #[arg(long)]
    pub json: bool,
}

impl CrateArgs {
    /// The crate root (the directory of its Cargo.toml).
    pub fn crate_root(&self) -> anyhow::Result<PathBuf> {
        let manifest = match (&self.manifest_path, &self.package) {
            (Some(p), _) if self.package.is_none() => p.clone(),
            (manifest, Some(name)) => package_manifest(manifest.as_deref(), name)?,
            (None, None) => nearest_manifest()?,
            (Some(_), None) => unreachable!("covered by the first arm"),
        };
        let manifest = manifest.canonicalize().with_context(|| format!("cannot find {}", manifest.display()))?;
        Ok(manifest.parent().context("a manifest has a parent directory")?.to_owned())
    }

    /// The manifest path as the user should pass it back, for fix commands.
    pub fn manifest_of(root: &Path) -> PathBuf {
        root.join("Cargo.toml")
    }
}

fn nearest_manifest() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    cwd.ancestors()
        .map(|d| d.join("Cargo.toml"))
        .find(|m| m.is_file())
        .with_context(|| format!("no Cargo.toml in {} or above; pass --manifest-path", cwd.display()))
}

fn package_manifest(workspace_manifest: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    if let Some(m) = workspace_manifest {
        cmd.arg("--manifest-path").arg(m);
    }
    let out = cmd.output().context("cannot run `cargo metadata`")?;
    if !out.status.success() {
        bail!("`cargo metadata` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("`cargo metadata` printed invalid JSON")?;
    let packages = meta["packages"].as_array().context("`cargo metadata` lists no packages")?;
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    packages
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .map(PathBuf::from)
        .with_context(|| format!("no package `{name}` in the workspace (packages: {})", names.join(", ")))
}
