//! `which`, `check` and `list` on a launcher tuned at several sizes (`tests/fixtures/sized`: an H100 at
//! three sizes, an A100 at one), as a user runs them: the real binary, the committed entries, no GPU.

use std::path::PathBuf;
use std::process::{Command, Output};

const H100: &str = "NVIDIA H100 80GB HBM3";

fn manifest() -> String {
    format!("{}/../../tests/fixtures/sized/Cargo.toml", env!("CARGO_MANIFEST_DIR"))
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-autotune"))
        .args(args)
        .args(["--manifest-path", &manifest()])
        .env_remove("AUTOTUNE_CACHE_DIR")
        .output()
        .expect("run cargo-autotune")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn which_says_what_a_launch_runs_and_why() {
    let out = cli(&[
        "which",
        "--kernel",
        "mm",
        "--device",
        "NVIDIA H200",
        "--cc",
        "9.0",
        "--size",
        "m=1024",
        "--size",
        "n=1024",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = &lines(&out)[0];
    assert_eq!(v["type"], "which");
    assert_eq!(v["source"], "entry");
    assert_eq!(v["device_match"], "same-capability");
    assert_eq!(v["entry_device"], H100);
    assert_eq!(v["entry_sizes"], serde_json::json!({"m": 1024, "n": 1024}));
    assert_eq!(v["config"], serde_json::json!({"bm": 32, "bn": 32}));
    assert_eq!(v["grid"], serde_json::json!([32, 32, 1]));
    assert_eq!(v["distance"], 0.0);
    // Between buckets, on the H100 itself: the nearest size whose tiles fit, and the entries passed over.
    let out = cli(&["which", "--kernel", "mm", "--device", H100, "--size", "m=4096", "--size", "n=3008", "--json"]);
    let v = &lines(&out)[0];
    assert_eq!((v["device_match"].as_str(), v["passed_over"].as_u64()), (Some("same"), Some(1)), "{v}");
    assert_eq!(v["entry_sizes"], serde_json::json!({"m": 1024, "n": 1024}));
    // No tuned tile fits: the default, said in words without --json.
    let out = cli(&["which", "--kernel", "mm", "--device", H100, "--size", "m=4096", "--size", "n=4048"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("mm at m=4096 n=4048 on NVIDIA H100 80GB HBM3 (sm_90):"), "{stdout}");
    assert!(stdout.contains("runs the default {\"bm\":16,\"bn\":16}") && stdout.contains("passed over 3"), "{stdout}");
}

#[test]
fn which_refuses_incomplete_queries_naming_what_is_missing() {
    let out = cli(&["which", "--kernel", "mm", "--device", H100, "--size", "m=1024"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("kernel `mm` has sizes m, n; give each with --size (missing: n)"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&["which", "--kernel", "mm", "--device", "NVIDIA B200", "--size", "m=1024", "--size", "n=1024"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pass --cc"), "{}", text(&out.stderr));
    let out = cli(&["which", "--kernel", "nn", "--device", H100, "--size", "m=1024", "--size", "n=1024"]);
    assert!(
        text(&out.stderr).contains("no #[autotune] launcher is named `nn`")
            && text(&out.stderr).contains("launchers: mm")
    );
    // A shape nothing fits is an error naming the sizes.
    let out = cli(&["which", "--kernel", "mm", "--device", H100, "--size", "m=100", "--size", "n=100"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no config fits m=100 n=100, not even the default"), "{}", text(&out.stderr));
}

#[test]
fn check_is_device_blind_and_check_device_reports_fallbacks_per_size() {
    let out = cli(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The H100 has its own entry at every size.
    let out = cli(&["check", "--device", H100]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // An H200 has none: each size falls back to the H100's entry there.
    let out = cli(&["check", "--device", "NVIDIA H200", "--cc", "9.0", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let fallbacks: Vec<serde_json::Value> = lines(&out).into_iter().filter(|l| l["type"] == "fallback").collect();
    let sizes: Vec<&str> = fallbacks.iter().map(|f| f["sizes"].as_str().unwrap()).collect();
    assert_eq!(sizes, ["m=1024 n=1024", "m=4096 n=4096", "m=16384 n=256"]);
    for f in &fallbacks {
        let runs = f["runs"].as_str().unwrap();
        assert!(runs.contains(H100) && runs.contains("another GPU of the same compute capability"), "{runs}");
        assert!(runs.contains(&format!("tuned at {}", f["sizes"].as_str().unwrap())), "{runs}");
    }
    // An A10 (8.6) takes the A100's one entry at every size (same major version).
    let out = cli(&["check", "--device", "NVIDIA A10", "--cc", "8.6"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("fallback: kernel `mm`").count(), 3, "{stderr}");
    assert!(stderr.contains("runs {\"bm\":64,\"bn\":64} from mm-a100-sxm4-80gb-m4096-n4096-"), "{stderr}");
}

#[test]
fn list_shows_every_size_and_device() {
    let out = cli(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for want in [
        "  at m=1024 n=1024",
        "  at m=4096 n=4096",
        "  at m=16384 n=256",
        "NVIDIA A100-SXM4-80GB: best {\"bm\":64,\"bn\":64}",
    ] {
        assert!(stdout.contains(want), "missing `{want}` in:\n{stdout}");
    }
}

/// An entry edited by hand to claim another size or another GPU no longer matches its key: `check`
/// refuses it, naming the file, and says the build would fail.
#[test]
fn hand_edited_entries_for_another_size_or_device_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = PathBuf::from(manifest()).parent().unwrap().join("autotune");
    let original = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().contains("h100-80gb-hbm3-m1024-n1024"))
        .expect("the H100 1024x1024 entry");
    let text0 = std::fs::read_to_string(&original).unwrap();
    for (what, edited) in [
        ("size", text0.replacen("\"m\",\n          1024", "\"m\",\n          2048", 1)),
        ("device", text0.replace(H100, "NVIDIA H200")),
    ] {
        assert_ne!(edited, text0, "the {what} edit changed nothing");
        let path = dir.path().join(original.file_name().unwrap());
        std::fs::write(&path, edited).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_cargo-autotune"))
            .args(["check", "--manifest-path", &manifest()])
            .env("AUTOTUNE_CACHE_DIR", dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&format!("invalid: corrupt cache entry {}", path.display())), "{what}: {stderr}");
        assert!(stderr.contains("does not match the entry's contents"), "{what}: {stderr}");
    }
}
