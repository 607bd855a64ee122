//! What a build script's output depends on, hashed, so that a rerun with nothing new returns at once.
//!
//! Cargo reruns the script whenever any file under `src/` changes, including a `touch` or an edit that
//! does not concern a kernel. The output (the directives, the generated `$OUT_DIR/autotune/<fn>.rs` and
//! any cache entry written) depends only on:
//!
//! - the text of each `#[autotune(...)]` attribute and the signature after it, found by a textual scan
//!   that over-approximates what the syn-based [`crate::scan`] finds (an attribute in a comment counts too);
//! - the kernel sources those attributes name;
//! - every file in the cache directories, by content;
//! - the settings as read ([`crate::Settings::read`]) and this crate's version.
//!
//! So a rerun hashes those (reading no more than the launchers, the kernel sources and the cache, and
//! parsing nothing), and when the hash matches the one the last successful run stored beside its
//! generated files, it prints that run's directives again and returns. A change the scan cannot see
//! (a GPU installed under an unchanged target directory) needs `cargo clean -p <crate>` or a touched
//! `build.rs`, which Cargo watches too.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::BuildEnv;

/// The file beside the generated code that stores the last run's digest and directives.
const FILE: &str = "autotune/.digest";

/// The digest of everything the build's output depends on, as a hex string.
pub fn of_inputs(env: &BuildEnv) -> String {
    let mut h = blake3::Hasher::new();
    let mut part = |tag: &str, bytes: &[u8]| {
        h.update(tag.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part("tool", concat!("tuner-build ", env!("CARGO_PKG_VERSION")).as_bytes());
    part("root", env.crate_root.to_string_lossy().as_bytes());
    for (var, value) in &env.settings.read {
        part(var, value.as_deref().unwrap_or("\0unset").as_bytes());
    }
    let mut files = Vec::new();
    rust_files(&env.crate_root.join("src"), &mut files);
    files.sort();
    for file in &files {
        part("file", file.to_string_lossy().as_bytes());
        let Ok(text) = std::fs::read_to_string(file) else {
            part("unreadable", b"");
            continue;
        };
        for attr in attributes(&text) {
            part("attr", attr.as_bytes());
            if let Some(kernel) = kernel_path(attr) {
                match std::fs::read(env.crate_root.join(kernel)) {
                    Ok(source) => part("kernel", blake3::hash(&source).as_bytes()),
                    Err(_) => part("kernel missing", kernel.as_bytes()),
                }
            }
        }
    }
    let cache = Cache::for_crate(&env.crate_root, env.settings.cache_dir.as_deref());
    for dir in cache.dirs() {
        part("dir", dir.to_string_lossy().as_bytes());
        let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => continue,
        };
        names.sort();
        for path in names {
            part("entry", path.to_string_lossy().as_bytes());
            match std::fs::read(&path) {
                Ok(bytes) => part("content", blake3::hash(&bytes).as_bytes()),
                Err(_) => part("unreadable", b""),
            }
        }
    }
    h.finalize().to_hex().to_string()
}

/// The directives of the last successful run, when its digest is `digest` and its generated files are
/// still there.
pub fn recorded(out_dir: &Path, digest: &str) -> Option<String> {
    let text = std::fs::read_to_string(out_dir.join(FILE)).ok()?;
    let (first, rest) = text.split_once('\n')?;
    let (generated, directives) = rest.split_once('\n')?;
    let all_there = generated.split(' ').filter(|n| !n.is_empty()).all(|n| out_dir.join("autotune").join(n).is_file());
    (first == digest && all_there).then(|| directives.to_owned())
}

/// Stores `digest` and the run's `directives` beside the generated files (best effort: a rerun without
/// it simply runs in full).
pub fn record(out_dir: &Path, digest: &str, directives: &[u8]) {
    let generated: Vec<String> = std::fs::read_dir(out_dir.join("autotune"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".rs"))
                .collect()
        })
        .unwrap_or_default();
    let mut text = format!("{digest}\n{}\n", generated.join(" ")).into_bytes();
    text.extend_from_slice(directives);
    let _ = tuner_search::fsutil::write_atomic(&out_dir.join(FILE), &text);
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let path = e.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Each `#[autotune(...)]` (or `#[path::autotune(...)]`) attribute in `text`, with the item header after
/// it up to its body's `{` or a `;`: the attribute's text and the launcher's name and signature.
pub fn attributes(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("#[").map(|i| from + i) {
        from = i + 2;
        let path_end = text[from..].find(|c: char| c == '(' || c == ']').map_or(text.len(), |j| from + j);
        let path: String = text[from..path_end].chars().filter(|c| !c.is_whitespace()).collect();
        if path != "autotune" && !path.ends_with("::autotune") {
            continue;
        }
        let Some(close) = matching_bracket(bytes, i + 1) else {
            out.push(&text[i..]);
            break;
        };
        let header_end = text[close..].find(['{', ';']).map_or(text.len(), |j| close + j);
        out.push(&text[i..header_end]);
        from = close;
    }
    out
}

/// The index just past the bracket that closes the one at `open`, skipping string and char literals.
fn matching_bracket(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The `kernel = "…"` path of an attribute's text, when it has one.
fn kernel_path(attr: &str) -> Option<&str> {
    let mut rest = attr;
    while let Some(i) = rest.find("kernel") {
        let before = rest[..i].chars().next_back();
        let after = rest[i + "kernel".len()..].trim_start();
        rest = &rest[i + "kernel".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(value) = after.strip_prefix('=').map(str::trim_start).and_then(|v| v.strip_prefix('"')) {
            return value.split('"').next();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_attributes_with_their_headers_and_kernels() {
        let text = r#"
use tuner_runtime::autotune;
#[derive(Debug)]
struct S;
#[autotune(kernel = "cuda/a.cu", entry = "a", space(block = [64, 128]),
           bench(n = 1 << 20, args = [inout f32[n], n], grid = "ceil_div(n, block)", block = "block"))]
pub fn a(x: u32) -> u32 { x }
#[tuner_runtime::autotune(entry = "b", kernel="cuda/b.cu", space(v = ["]", "("]))]
fn b();
"#;
        let attrs = attributes(text);
        assert_eq!(attrs.len(), 2, "{attrs:?}");
        assert!(attrs[0].starts_with("#[autotune(kernel") && attrs[0].ends_with("pub fn a(x: u32) -> u32 "));
        assert_eq!(kernel_path(attrs[0]), Some("cuda/a.cu"));
        assert!(attrs[1].ends_with("fn b()"), "{}", attrs[1]);
        assert_eq!(kernel_path(attrs[1]), Some("cuda/b.cu"));
        assert!(attributes("#[derive(Debug)] #[cfg(test)] fn c() {}").is_empty());
    }
}
