//! Which crates `tune`, `check` and `list` work on: `--manifest-path`, `-p`, or the manifest around the
//! current directory, as cargo itself picks it.
//!
//! A package manifest names one crate. A workspace manifest (a virtual one, or a root package that has
//! a `[workspace]`) names every member: the members are asked of cargo (`$CARGO metadata --no-deps`,
//! as external cargo commands should), and those that declare `#[autotune]` launchers are the ones
//! worked on, which is what a CI step run from the root wants. A path that is not a `Cargo.toml`, or a
//! manifest that is neither a package nor a workspace, is an error naming it: a command never reports
//! success on a crate it did not look at.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use clap::Args;

/// The flags every crate-level command shares.
#[derive(Debug, Args)]
pub struct CrateArgs {
    /// Path to the crate's (or the workspace's) Cargo.toml (default: the nearest one above the current
    /// directory).
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// The workspace package to work on.
    #[arg(short, long, value_name = "NAME")]
    pub package: Option<String>,
    /// JSON Lines on stdout (see `cli::json`); diagnostics stay on stderr.
    #[arg(long)]
    pub json: bool,
}

/// The crates a command works on, and the manifest they came from (for messages).
#[derive(Debug)]
pub struct Crates {
    pub manifest: PathBuf,
    /// Crate roots (the directories of their Cargo.toml), in the workspace's order.
    pub roots: Vec<PathBuf>,
    /// Whether the manifest was a workspace's (then `roots` holds its members).
    pub workspace: bool,
}

impl CrateArgs {
    /// The one crate root a command works on; a workspace manifest with several members is an error
    /// that lists them.
    pub fn crate_root(&self) -> anyhow::Result<PathBuf> {
        let crates = self.crates()?;
        match crates.roots.as_slice() {
            [one] if !crates.workspace => Ok(one.clone()),
            _ => bail!(
                "{} is a workspace; pass -p <package> or the member's --manifest-path (members: {})",
                crates.manifest.display(),
                crates.roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The crates the flags name: the package's, or every member of a workspace.
    pub fn crates(&self) -> anyhow::Result<Crates> {
        let manifest = match (&self.manifest_path, &self.package) {
            (manifest, Some(name)) => package_manifest(manifest.as_deref(), name)?,
            (Some(p), None) => p.clone(),
            (None, None) => nearest_manifest()?,
        };
        if manifest.file_name().map_or(true, |n| n != "Cargo.toml") {
            bail!("{} is not a Cargo.toml; pass the crate's or the workspace's manifest", manifest.display());
        }
        let manifest = manifest.canonicalize().with_context(|| format!("cannot find {}", manifest.display()))?;
        let root = manifest.parent().context("a manifest has a parent directory")?.to_owned();
        let text = std::fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
        let table: toml::Table =
            text.parse().with_context(|| format!("{} is not a valid manifest", manifest.display()))?;
        let is_package = table.contains_key("package");
        let is_workspace = table.contains_key("workspace");
        if self.package.is_some() || (is_package && !is_workspace) {
            return Ok(Crates { manifest, roots: vec![root], workspace: false });
        }
        if !is_workspace {
            bail!("{} has neither a [package] nor a [workspace] table", manifest.display());
        }
        let members = workspace_members(&manifest)?;
        Ok(Crates { manifest, roots: members, workspace: true })
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

/// `cargo metadata --no-deps` of the workspace around `manifest` (or the current directory).
fn metadata(manifest: Option<&Path>) -> anyhow::Result<serde_json::Value> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    if let Some(m) = manifest {
        cmd.arg("--manifest-path").arg(m);
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{} metadata` to read the workspace", cargo.to_string_lossy()))?;
    if !out.status.success() {
        bail!("`cargo metadata` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).context("`cargo metadata` printed invalid JSON")
}

fn packages(meta: &serde_json::Value) -> anyhow::Result<&Vec<serde_json::Value>> {
    meta["packages"].as_array().context("`cargo metadata` lists no packages")
}

fn workspace_members(manifest: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta = metadata(Some(manifest))?;
    let members: Vec<&str> =
        meta["workspace_members"].as_array().map(|m| m.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    let roots = packages(&meta)?
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)))
        .filter_map(|p| p["manifest_path"].as_str())
        .filter_map(|m| Path::new(m).parent().map(Path::to_owned))
        .collect();
    Ok(roots)
}

fn package_manifest(workspace_manifest: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let meta = metadata(workspace_manifest)?;
    let packages = packages(&meta)?;
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    packages
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .map(PathBuf::from)
        .with_context(|| format!("no package `{name}` in the workspace (packages: {})", names.join(", ")))
}
