//! `cargo-autotune replay` as a user runs it: the real binary, real table files.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cargo-autotune"))
}

fn data(name: &str) -> String {
    format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn replay_json(extra: &[&str]) -> serde_json::Value {
    let out = bin()
        .args([
            "replay",
            "--table",
            &data("reduce.json"),
            "--strategy",
            "de",
            "--budget",
            "40",
            "--seed",
            "4",
            "--json",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn replay_json_reports_the_search() {
    let v = replay_json(&[]);
    for key in ["best_config", "best_time", "optimum_time", "ratio", "evaluations", "found_at"] {
        assert!(v.get(key).is_some(), "missing `{key}` in {v}");
    }
    assert_eq!(v["evaluations"], 40);
    assert_eq!(v["strategy"], "de");
    let (best, opt, ratio) =
        (v["best_time"].as_f64().unwrap(), v["optimum_time"].as_f64().unwrap(), v["ratio"].as_f64().unwrap());
    assert!((ratio - best / opt).abs() < 1e-12 && ratio >= 1.0);
    let found_at = v["found_at"].as_u64().unwrap();
    assert!((1..=40).contains(&found_at));
    // The reported best is the table's record for that config.
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("reduce.json")).unwrap()).unwrap();
    let c = &v["best_config"];
    let key = format!("{},{},{},{}", c["block"], c["items"], c["shfl"], c["blocks_per_sm"]);
    assert_eq!(table["cache"][&key]["time"].as_f64(), Some(best));
    assert_eq!(v["optimum_time"].as_f64(), Some(0.17272640466690065));
}

#[test]
fn replay_is_reproducible_by_seed() {
    assert_eq!(replay_json(&[]), replay_json(&[]));
}

#[test]
fn cargo_subcommand_form_works_too() {
    let out = bin()
        .args(["autotune", "replay", "--table", &data("transpose.json"), "--budget", "72", "--strategy", "random"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ratio 1.0000"), "the whole table was searched: {text}");
}

#[test]
fn verbose_prints_the_seed_line() {
    let out = bin()
        .args(["replay", "--table", &data("transpose.json"), "--budget", "5", "--strategy", "random", "-v"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("Evaluation 1/5: config={'tile': "), "{first}");
    assert!(first.contains(", score="), "{first}");
    assert!(text.contains("Best config: {"), "{text}");
}

#[test]
fn errors_name_the_problem_and_exit_2() {
    let out = bin().args(["replay", "--table", "/nonexistent/t.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read table /nonexistent/t.json"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"device_name":"x","kernel_name":"k","tune_params_keys":["a"],"tune_params":{"a":[1,2]},"objective":"time","cache":{"1":{"a":3,"time":1.0}}}"#).unwrap();
    let out = bin().args(["replay", "--table"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("3 is not an allowed value of `a`"), "{err}");
    let out = bin().args(["replay", "--table", &data("transpose.json"), "--constraint", "tile >"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid constraint `tile >`"));
}

#[cfg(unix)]
#[test]
fn ctrl_c_ends_the_run_with_the_best_so_far() {
    // A real SIGINT to a real process, sent once the first evaluation has been printed; each replayed
    // evaluation takes 20 ms as a GPU benchmark would, so the run is still going when it arrives.
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = bin()
        .args([
            "replay",
            "--table",
            &data("reduce.json"),
            "--budget",
            "300",
            "--population",
            "1",
            "-v",
            "--strategy",
            "random",
            "--simulate-ms",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("Evaluation 1/300"), "{first}");
    send_sigint(child.id());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    // The best so far is still printed, and the run says it was cut short: status 130, as shells expect.
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130: {rest:?}");
    let evaluated = 1 + rest.iter().filter(|l| l.starts_with("Evaluation ")).count();
    assert!(evaluated < 300, "stopped early after {evaluated}");
    assert!(rest.iter().any(|l| l.starts_with("Stopped early by interrupt")), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("best config:")), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("interrupted:  stopped by Ctrl-C")), "{rest:?}");
}

#[cfg(unix)]
fn send_sigint(pid: u32) {
    let ok = Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success();
    assert!(ok);
}

#[test]
fn replay_with_no_table_tunes_the_embedded_h100_sgemm_table() {
    let out = bin().args(["replay", "--budget", "30", "--json"]).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["table"], "embedded:h100/sgemm.json");
    assert_eq!(v["evaluations"], 30);
    assert_eq!(v["optimum_time"].as_f64(), Some(0.3872320055961609));
    assert!(v["ratio"].as_f64().unwrap() >= 1.0);
    // It starts from the SGEMM spec's default, as a tune on the GPU does; `--start none` starts cold.
    assert_eq!(
        v["start"],
        serde_json::json!({"bm": 128, "bn": 128, "bk": 8, "tm": 8, "tn": 8, "vec": 4, "pad": 4, "map": 0, "db": 1})
    );
    let out = bin().args(["replay", "--budget", "5", "--json", "--start", "none"]).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["start"], serde_json::Value::Null);
}
