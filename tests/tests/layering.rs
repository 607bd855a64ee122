//! The house has no circles and its data flows one way: checked here, over the manifests and the `use`
//! lines, so CI fails the day a crate or a module imports one that imports it back.
//!
//! - Crates: every workspace member's `[dependencies]` and `[build-dependencies]` on another member point
//!   strictly down the layers below (dev-dependencies are left out: a proc-macro's UI tests compile
//!   against the facade, as thiserror's do). A new member must be given a layer here.
//! - Modules: inside each crate, the top-level modules and the `crate::`/`super::` paths between them
//!   (test code at the bottom of a file, after `#[cfg(test)]`, is left out) form no cycle.
//! - The environment is read only where the settings are (so the build's `rerun-if-env-changed` list,
//!   derived from them, covers every variable), or where Cargo and the CUDA backend define the variable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::workspace;

/// Each member's layer: a crate may depend only on crates of a lower layer.
const LAYERS: &[(&str, u32)] = &[
    ("tuner-spec", 0),
    ("tuner-llm", 1),
    ("tuner-macro", 1),
    ("tuner-search", 2),
    ("tuner-cuda", 3),
    ("tuner-build", 3),
    ("tuner-runtime", 4),
    ("tuner-cli", 4),
    ("autotune-kernels", 5),
    ("autotune-examples", 5),
    ("autotune-tests", 5),
];

/// Files that may read the environment, and why.
const ENV_READERS: &[(&str, &str)] = &[
    ("crates/build/src/settings.rs", "the settings, read once per entry point"),
    ("crates/build/src/lib.rs", "Cargo's CARGO_MANIFEST_DIR and OUT_DIR"),
    ("crates/llm/src/lib.rs", "LlmSettings::from_env, for library users who pick an LLM strategy"),
    ("crates/cli/src/crate_args.rs", "Cargo's CARGO, to run `cargo metadata`"),
    ("crates/cuda/src/compile.rs", "CUDA_PATH / CUDA_HOME, declared in the settings' backend variables"),
    ("tuner-macro/src/expand.rs", "Cargo's OUT_DIR"),
];

struct Member {
    name: String,
    dir: PathBuf,
    deps: Vec<String>,
}

fn members() -> Vec<Member> {
    let root: toml::Table = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap().parse().unwrap();
    let paths = root["workspace"]["members"].as_array().expect("members").iter().map(|m| m.as_str().unwrap());
    let mut out = Vec::new();
    for path in paths {
        let dir = workspace().join(path);
        let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap().parse().unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_owned();
        let mut deps = Vec::new();
        for table in ["dependencies", "build-dependencies"] {
            if let Some(t) = manifest.get(table).and_then(|t| t.as_table()) {
                deps.extend(t.keys().cloned());
            }
        }
        out.push(Member { name, dir, deps });
    }
    out
}

fn layer(name: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

#[test]
fn crates_depend_only_down_the_layers() {
    let members = members();
    let names: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
    for m in &members {
        let own = layer(&m.name).unwrap_or_else(|| panic!("{} has no layer in tests/tests/layering.rs", m.name));
        for d in m.deps.iter().filter(|d| names.contains(d.as_str())) {
            let theirs = layer(d).expect("every member has a layer");
            assert!(theirs < own, "{} (layer {own}) depends on {d} (layer {theirs}): dependencies point down", m.name);
        }
    }
}

#[test]
fn a_user_crate_names_one_tuner_crate() {
    // The kernels crate, the examples and the out-of-workspace fixture, as a user writes them.
    for manifest in ["kernels/Cargo.toml", "examples/Cargo.toml", "tests/fixtures/offline/Cargo.toml"] {
        let t: toml::Table = std::fs::read_to_string(workspace().join(manifest)).unwrap().parse().unwrap();
        for table in ["dependencies", "build-dependencies"] {
            let tuner: Vec<&String> = t
                .get(table)
                .and_then(|d| d.as_table())
                .map(|d| d.keys().filter(|k| k.starts_with("tuner")).collect())
                .unwrap_or_default();
            assert!(tuner.iter().all(|k| *k == "tuner-runtime"), "{manifest} [{table}] names {tuner:?}");
        }
    }
}

/// The `crate::a` / `super::a` module names a source text refers to, before its tests.
fn referenced_modules(text: &str, own_parent: &[String]) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let line = line.split("//").next().unwrap_or("");
        for (prefix, base) in [("crate::", Vec::new()), ("super::", own_parent.to_vec())] {
            let mut rest = line;
            while let Some(i) = rest.find(prefix) {
                // `tuner_search::crate::` cannot occur; a preceding identifier character means another path.
                let before = rest[..i].chars().next_back();
                rest = &rest[i + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let first = base.first().cloned().unwrap_or(name);
                if !first.is_empty() && first.chars().next().is_some_and(|c| c.is_lowercase()) {
                    out.insert(first);
                }
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`cache.rs`, `strategy/surrogate.rs` → `strategy`),
/// `None` for the crate root and binaries.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.trim_end_matches(".rs").to_owned();
    (!matches!(first.as_str(), "lib" | "main" | "bin")).then_some(first)
}

/// A cycle in `edges`, when there is one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == m).expect("on the stack");
                    let mut c = stack[start..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The module graph of the crate whose `src/` is `src`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = top_module(src, &file) else { continue };
        // `super::` in `strategy/hybrid.rs` is `strategy` itself; in a top-level file it is the root.
        let depth = file.strip_prefix(src).unwrap().components().count();
        let parent = if depth > 1 { vec![module.clone()] } else { Vec::new() };
        let text = std::fs::read_to_string(&file).unwrap();
        let refs = referenced_modules(&text, &parent);
        let entry = edges.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
    // Only edges between modules of this crate count (`crate::error_chain` is a function of the root).
    let modules: BTreeSet<String> = edges.keys().cloned().collect();
    for targets in edges.values_mut() {
        targets.retain(|t| modules.contains(t));
    }
    edges
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    for m in members() {
        let src = m.dir.join("src");
        let graph = module_graph(&src);
        if let Some(c) = cycle(&graph) {
            panic!("{}: modules import each other: {}", m.name, c.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("tuner".into()).or_default().insert("strategy".into());
    g.entry("strategy".into()).or_default().insert("trial".into());
    assert_eq!(cycle(&g), None);
    g.entry("strategy".into()).or_default().insert("tuner".into());
    assert_eq!(cycle(&g), Some(vec!["strategy".into(), "tuner".into(), "strategy".into()]));
    let refs = referenced_modules(
        "use crate::trial::Trial;\nuse super::{Context, Strategy};\n// crate::nope\n#[cfg(test)]\nuse crate::tests;",
        &["strategy".into()],
    );
    assert_eq!(refs, ["strategy".to_owned(), "trial".to_owned()].into_iter().collect());
}

#[test]
fn the_environment_is_read_only_where_the_settings_are() {
    let mut files = Vec::new();
    for m in members() {
        rust_files(&m.dir.join("src"), &mut files);
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.find("#[cfg(test)]").map_or(text.as_str(), |i| &text[..i]);
        let reads = code.lines().filter(|l| !l.trim_start().starts_with("//")).any(|l| l.contains("env::var"));
        let rel = file.strip_prefix(workspace()).unwrap().to_string_lossy().replace('\\', "/");
        if reads {
            assert!(
                ENV_READERS.iter().any(|(f, _)| *f == rel),
                "{rel} reads the environment: read it through tuner_build::Settings (so the build reruns when it changes)"
            );
        }
    }
}
