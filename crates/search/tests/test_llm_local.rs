//! `LlmEvolution` against a real model: llama.cpp's `llama-server` serving Qwen2.5-Coder-0.5B-Instruct on
//! loopback, started by `. .ci/llm-server.sh start`, which exports `AUTOTUNE_TEST_LLM_URL` (and the server
//! binary and model, from which the fault test starts a second server of its own).
//!
//! In CI (`CI` set) a missing server is a failure. Only a local run without one skips, and says so.
//! Each call to the model takes seconds on a 2-core CPU, so the runs are short and the tests take turns.
#![cfg(feature = "llm")]

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tuner_llm::LlmConfig;
use tuner_search::strategy::{LlmEvolution, Overlap};
use tuner_search::{Config, Objective, Outcome, Replay, Tuner};

/// One model call at a time: the server has one slot and the machine two cores.
static TURN: Mutex<()> = Mutex::new(());

const MODEL: &str = "qwen2.5-coder-0.5b";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The variable's value, or `None` when a local run may skip (it says so); in CI a missing one fails.
fn required(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ if in_ci() => panic!(
            "{var} is not set, and CI needs the local LLM server: `. .ci/llm-server.sh start` starts it and sets it"
        ),
        _ => {
            eprintln!(
                "skipping {test}: {var} is not set (start the local LLM server with `. .ci/llm-server.sh start`)"
            );
            None
        }
    }
}

fn healthy(base_url: &str) -> bool {
    let health = format!("{}/health", base_url.trim_end_matches('/').trim_end_matches("/v1"));
    reqwest::blocking::Client::new()
        .get(health)
        .timeout(Duration::from_secs(5))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

fn table(name: &str) -> Replay {
    Replay::load(format!("{}/../../tests/data/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A replay objective that takes `delay` per config, as a GPU benchmark would.
struct Slow<'a> {
    replay: &'a Replay,
    delay: Duration,
    after_each: Box<dyn FnMut(usize) + 'a>,
    count: usize,
}

impl Objective for Slow<'_> {
    fn evaluate(&mut self, config: &Config) -> Outcome {
        std::thread::sleep(self.delay);
        self.count += 1;
        (self.after_each)(self.count);
        self.replay.outcome(config)
    }
}

/// Checks what must hold for any run: the whole budget spent on distinct configs of the space, and every
/// proposal of the model either accepted (then evaluated) or rejected with a reason.
fn check_run(tuner: &Tuner<'_>, replay: &Replay, budget: usize, journal: &tuner_search::strategy::Journal) {
    assert_eq!(tuner.evaluation_count(), budget, "the run used its whole budget");
    let mut distinct = HashSet::new();
    for t in tuner.history() {
        assert!(replay.space().is_valid(&t.point), "evaluated a config outside the space: {}", t.config);
        assert!(distinct.insert(t.point.clone()), "evaluated {} twice", t.config);
    }
    let report = tuner.strategy_report();
    let journal = journal.lock().unwrap();
    assert_eq!(journal.len() as u64, report["llm_proposed"].as_u64().unwrap(), "{report:?}");
    for e in journal.iter() {
        match (&e.accepted, &e.rejected) {
            (Some(p), None) => {
                assert!(replay.space().is_valid(p), "accepted {} outside the space", e.raw);
                assert!(tuner.history().iter().any(|t| t.point == *p), "accepted {} but not evaluated", e.raw);
            }
            (None, Some(why)) => assert!(!why.is_empty()),
            _ => panic!("a proposal is either accepted or rejected with a reason: {e:?}"),
        }
    }
}

#[test]
fn tunes_a_replay_table_with_the_real_model() {
    let Some(url) = required("AUTOTUNE_TEST_LLM_URL", "tunes_a_replay_table_with_the_real_model") else { return };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    assert!(healthy(&url), "the local LLM server at {url} does not answer /health");
    let replay = table("transpose");
    let strategy = LlmEvolution::with_config(LlmConfig::new(&url).model(MODEL)).max_llm_batch(4).overlap(Overlap::Auto);
    let journal = strategy.journal();
    let budget = 16;
    let t0 = Instant::now();
    // 150 ms per config: a batch of 4 takes 0.6 s, enough for `Overlap::Auto` to send the next request
    // while a batch is measured.
    let objective = Slow { replay: &replay, delay: Duration::from_millis(150), after_each: Box::new(|_| {}), count: 0 };
    let mut tuner = Tuner::new(replay.space().clone(), objective)
        .max_evaluations(budget)
        .population_size(4)
        .temperature(0.8)
        .verbose(false)
        .seed(5)
        .strategy(strategy);
    let best = tuner.tune().unwrap();
    let report = tuner.strategy_report();
    eprintln!(
        "real model run: {:.1}s, report {}",
        t0.elapsed().as_secs_f64(),
        serde_json::Value::Object(report.clone())
    );

    check_run(&tuner, &replay, budget, &journal);
    assert!(replay.time(&best).unwrap().unwrap() >= replay.optimum().0);
    assert_eq!(report["fallback"], false, "{report:?}");
    assert_eq!(report["llm_errors"], 0, "{report:?}");
    let calls = report["llm_calls"].as_u64().unwrap();
    assert!(calls >= 3, "one random batch, then a model call per batch: {report:?}");
    assert_eq!(report["llm_structured_output"].as_u64().unwrap(), calls, "llama-server takes the JSON schema");
    assert!(report["llm_overlapped_calls"].as_u64().unwrap() >= 1, "the slow objective hid a call: {report:?}");
    assert!(report["prompt_tokens"].as_u64().unwrap() > 100 * calls, "{report:?}");
    assert!(report["completion_tokens"].as_u64().unwrap() > 0, "{report:?}");
    assert!(report["cost_usd"].is_null(), "a local model has no price: {report:?}");
    // Every reply held configs. Whether any is new is up to the model (the 0.5B model mostly repeats what
    // it is shown, see docs/llm.md), so the test does not ask for it: it would be flaky, not informative.
    assert!(report["llm_proposed"].as_u64().unwrap() >= calls, "{report:?}");
}

/// A llama-server of this test's own, killed when dropped (so a failing test leaves nothing behind).
struct OwnServer {
    child: Arc<Mutex<Option<Child>>>,
    url: String,
}

impl OwnServer {
    /// Starts `bin` with the flags `.ci/llm-server.sh` chose for this CPU (`AUTOTUNE_TEST_LLM_ARGS`, e.g.
    /// `--no-repack`, without which llama.cpp crashes on AMX CPUs while loading the model).
    fn start(bin: &str, model: &str) -> OwnServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cpu_args = std::env::var("AUTOTUNE_TEST_LLM_ARGS").unwrap_or_default();
        let log = std::env::temp_dir().join(format!("autotune-own-llama-{port}.log"));
        let child = Command::new(bin)
            .args(["-m", model, "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", "2048", "-np", "1", "-t", "1", "--alias", MODEL])
            .args(cpu_args.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display())))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let server = OwnServer { child: Arc::new(Mutex::new(Some(child))), url: format!("http://127.0.0.1:{port}/v1") };
        let t0 = Instant::now();
        while !healthy(&server.url) {
            if let Some(status) = server.child.lock().unwrap().as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "the second llama-server exited while starting ({status}, flags {cpu_args:?}):\n{}",
                    tail.join("\n")
                );
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "the second llama-server did not start in 120 s");
            std::thread::sleep(Duration::from_millis(250));
        }
        server
    }

    /// A handle that kills the server.
    fn killer(&self) -> impl Fn() {
        let child = self.child.clone();
        move || {
            if let Some(mut c) = child.lock().unwrap().take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        (self.killer())();
    }
}

#[test]
fn a_server_killed_mid_run_leaves_the_run_on_fallback_with_history_intact() {
    let test = "a_server_killed_mid_run_leaves_the_run_on_fallback_with_history_intact";
    let (Some(bin), Some(model)) =
        (required("AUTOTUNE_TEST_LLM_SERVER", test), required("AUTOTUNE_TEST_LLM_MODEL", test))
    else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let server = OwnServer::start(&bin, &model);
    let kill = server.killer();
    let replay = table("stencil");
    let config = LlmConfig::new(&server.url).model(MODEL).retries(2).backoff(Duration::from_millis(200));
    let strategy = LlmEvolution::with_config(config).max_llm_batch(4).overlap(Overlap::Never);
    let journal = strategy.journal();
    let budget = 24;
    let killed_after = 8; // the random batch and the model's first batch
    let objective = Slow {
        replay: &replay,
        delay: Duration::ZERO,
        after_each: Box::new(move |n| {
            if n == killed_after {
                kill();
            }
        }),
        count: 0,
    };
    let mut tuner = Tuner::new(replay.space().clone(), objective)
        .max_evaluations(budget)
        .population_size(4)
        .verbose(false)
        .seed(11)
        .strategy(strategy);
    tuner.tune().expect("nothing the LLM does makes tune() fail");
    let report = tuner.strategy_report();
    eprintln!("fault run report {}", serde_json::Value::Object(report.clone()));

    check_run(&tuner, &replay, budget, &journal);
    assert_eq!(report["fallback"], true, "{report:?}");
    let reason = report["fallback_reason"].as_str().unwrap();
    assert!(reason.contains("unavailable") && reason.contains("cannot connect"), "{reason}");
    assert_eq!(report["llm_calls"], 2, "one call before the kill, one that found the server gone: {report:?}");
    assert_eq!(report["llm_errors"], 1, "{report:?}");
    assert!(report["completion_tokens"].as_u64().unwrap() > 0, "the first call was answered: {report:?}");
    // History intact: the evaluations before the kill are all there, in order, and the run went on after.
    assert!(tuner.history().len() > killed_after);
}
