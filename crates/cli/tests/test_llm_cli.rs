//! `cargo autotune replay --strategy llm` as a process: the endpoint comes from its environment only,
//! read once with the other settings; without one it is the built-in search, said once.

#[path = "../../search/tests/fake_llm/mod.rs"]
mod fake_llm;

use fake_llm::{ok, FakeServer};
use serde_json::Value as Json;

/// `cargo autotune replay --strategy llm --json` as a process, with the endpoint (or none) in its
/// environment only.
fn replay_llm(env: &[(&str, &str)], extra: &[&str]) -> (Json, String) {
    let table = format!("{}/../../tests/data/transpose.json", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-autotune"));
    cmd.args(["replay", "--table", &table, "--strategy", "llm", "--budget", "12", "--population", "4", "--json"]);
    cmd.args(extra);
    for var in tuner_llm::ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stderr: {stderr}");
    (serde_json::from_slice(&out.stdout).expect("stdout is one JSON object"), stderr)
}

#[test]
fn cli_without_an_endpoint_uses_the_builtin_search_and_says_so_once() {
    let (v, stderr) = replay_llm(&[], &[]);
    assert_eq!(v["evaluations"], 12);
    assert_eq!(v["fallback"], true);
    assert_eq!(v["llm_calls"], 0);
    assert_eq!(v["cost_usd"], 0.0);
    assert_eq!(v["fallback_strategy"], "surrogate");
    assert_eq!(stderr.matches("no LLM endpoint configured").count(), 1, "{stderr}");
    assert!(stderr.contains("OPENAI_BASE_URL"), "the line names the switch: {stderr}");
}

#[test]
fn cli_json_carries_the_llm_figures() {
    let server =
        FakeServer::start(vec![ok(r#"{"configs":[{"tile":16,"rows":2,"pad":1},{"tile":99,"rows":2,"pad":1}]}"#)]);
    let (v, _) = replay_llm(&[("OPENAI_BASE_URL", &server.url), ("OPENAI_API_KEY", "sk-cli-secret")], &["-v"]);
    for key in ["llm_calls", "llm_rejected", "prompt_tokens", "completion_tokens", "cost_usd", "fallback"] {
        assert!(v.get(key).is_some(), "missing `{key}` in {v}");
    }
    assert_eq!(v["fallback"], false);
    assert_eq!(v["llm_calls"], 2, "a random batch, then two model batches: {v}");
    assert_eq!(v["prompt_tokens"], 200);
    assert!(v["llm_rejected"].as_u64().unwrap() >= 2, "tile 99 each time: {v}");
    assert!(v["cost_usd"].as_f64().unwrap() > 0.0, "gpt-4o-mini by default: {v}");
    assert!(!v.to_string().contains("sk-cli-secret"));
    assert_eq!(server.requests()[0].authorization.as_deref(), Some("Bearer sk-cli-secret"));
}
