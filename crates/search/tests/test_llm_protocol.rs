//! Protocol edge cases of the LLM client and strategy that a real server cannot produce on demand: 429 with
//! `Retry-After`, 5xx, 401, a schema refusal, malformed and truncated bodies, a hung server, and replies
//! with values outside the space, duplicates and prose around the JSON.
//!
//! The endpoint is a tiny scripted HTTP server on 127.0.0.1:0 inside the test, the one place a fake
//! endpoint is right; the real model is exercised in `test_llm_local.rs`.
#![cfg(feature = "llm")]

mod fake_llm;

use std::time::{Duration, Instant};

use std::net::TcpListener;

use fake_llm::{chat_body, ok, status, FakeServer, Step};
use serde_json::json;
use tuner_llm::{ChatRequest, LlmClient, LlmConfig, LlmError, Message};
use tuner_search::strategy::LlmEvolution;
use tuner_search::{Space, Tuner};

fn client(url: &str) -> LlmClient {
    LlmClient::new(LlmConfig::new(url).backoff(Duration::from_millis(20)).retries(3)).unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user("propose configs")],
        temperature: Some(0.8),
        seed: Some(7),
        schema: Some(json!({"type": "object"})),
    }
}

#[test]
fn retries_429_after_the_servers_retry_after() {
    let server = FakeServer::start(vec![
        Step::Respond {
            status: 429,
            headers: vec![("retry-after".into(), "1".into())],
            body: r#"{"error":{"message":"rate limited"}}"#.into(),
        },
        ok(r#"{"configs":[]}"#),
    ]);
    let t0 = Instant::now();
    let reply = client(&server.url).chat(&request()).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(950), "waited {:?}, not the 1 s the server asked", t0.elapsed());
    assert_eq!(reply.attempts, 2);
    assert_eq!(reply.usage.prompt_tokens, 100);
}

#[test]
fn a_retry_after_beyond_the_limit_ends_the_call_without_sleeping() {
    let server = FakeServer::start(vec![Step::Respond {
        status: 429,
        headers: vec![("retry-after".into(), "3600".into())],
        body: "{}".into(),
    }]);
    let t0 = Instant::now();
    let err = client(&server.url).chat(&request()).unwrap_err();
    assert!(matches!(err, LlmError::RetryTooLate { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn retries_500_with_backoff_then_gives_up() {
    let server = FakeServer::start(vec![status(500, "oops"), status(503, "busy"), ok("{}")]);
    let reply = client(&server.url).chat(&request()).unwrap();
    assert_eq!(reply.attempts, 3);

    let dead = FakeServer::start(vec![status(500, "still broken")]);
    let err = client(&dead.url).chat(&request()).unwrap_err();
    assert!(matches!(err, LlmError::Unavailable { attempts: 4, .. }), "{err}");
    assert!(err.is_fatal());
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(dead.requests().len(), 4, "one attempt and three retries");
}

#[test]
fn unauthorized_ends_at_once_and_never_shows_the_key() {
    let server =
        FakeServer::start(vec![status(401, r#"{"error":{"message":"Incorrect API key provided: sk-sec****"}}"#)]);
    let c = LlmClient::new(LlmConfig::new(&server.url).api_key("sk-secret-key-42").backoff(Duration::from_millis(20)))
        .unwrap();
    let err = c.chat(&request()).unwrap_err();
    assert!(matches!(err, LlmError::Unauthorized { status: 401, .. }), "{err}");
    assert!(err.is_fatal());
    let text = format!("{err} {err:?} {c:?}");
    assert!(text.contains("OPENAI_API_KEY"), "the message names the fix: {text}");
    assert!(!text.contains("sk-secret-key-42"), "the key leaked: {text}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "401 is not retried");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-secret-key-42"));
}

#[test]
fn not_found_and_forbidden_are_fatal() {
    for code in [403u16, 404] {
        let server = FakeServer::start(vec![status(code, "no")]);
        let err = client(&server.url).chat(&request()).unwrap_err();
        assert!(err.is_fatal(), "{code}: {err}");
        assert_eq!(server.requests().len(), 1);
    }
}

#[test]
fn a_malformed_body_is_an_error_not_a_retry() {
    let server =
        FakeServer::start(vec![Step::Respond { status: 200, headers: vec![], body: "<html>proxy</html>".into() }]);
    let err = client(&server.url).chat(&request()).unwrap_err();
    assert!(matches!(err, LlmError::Malformed { .. }), "{err}");
    assert!(!err.is_fatal());
    assert_eq!(server.requests().len(), 1);

    let server = FakeServer::start(vec![status(200, r#"{"choices": []}"#)]);
    assert!(matches!(client(&server.url).chat(&request()).unwrap_err(), LlmError::Empty { .. }));
}

#[test]
fn a_truncated_body_is_retried() {
    let full = chat_body(r#"{"configs":[]}"#);
    let server =
        FakeServer::start(vec![Step::Truncate { declared: full.len(), body: full[..40].to_owned() }, ok("{}")]);
    let reply = client(&server.url).chat(&request()).unwrap();
    assert_eq!(reply.attempts, 2);
}

#[test]
fn a_hung_server_times_out() {
    let server = FakeServer::start(vec![Step::Hang(Duration::from_secs(5))]);
    let c = LlmClient::new(
        LlmConfig::new(&server.url).timeout(Duration::from_millis(500)).retries(1).backoff(Duration::ZERO),
    )
    .unwrap();
    let t0 = Instant::now();
    let err = c.chat(&request()).unwrap_err();
    assert!(matches!(err, LlmError::Unavailable { attempts: 2, .. }), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_refused_schema_is_dropped_and_plain_json_is_read() {
    let server = FakeServer::start(vec![
        status(400, r#"{"error":{"message":"response_format json_schema is not supported by this model"}}"#),
        ok("Here you go:\n```json\n{\"configs\": [{\"block\": 64, \"items\": 2}]}\n```"),
    ]);
    let c = client(&server.url);
    let reply = c.chat(&request()).unwrap();
    assert!(!reply.structured);
    assert!(!c.structured_output(), "the schema is not sent again");
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body["response_format"]["type"], "json_schema");
    assert!(seen[1].body.get("response_format").is_none());
    assert_eq!(seen[1].body["seed"], 7);
    assert_eq!(seen[1].body["temperature"], 0.8);
    let names = vec!["block".to_owned(), "items".to_owned()];
    let configs = tuner_llm::json::extract_configs(&reply.content, &names);
    assert_eq!(configs.len(), 1);
}

fn space() -> Space {
    Space::builder()
        .param("block", [64, 128, 256, 512])
        .param("items", [1, 2, 4, 8])
        .constraint("block * items <= 1024")
        .build()
        .unwrap()
}

/// The model's replies: prose around fenced JSON, with one config of each kind the strategy must reject.
const SLOPPY: &str = "Sure! Based on the parents, these should be faster:\n```json\n{\"configs\": [\n\
    {\"block\": 128, \"items\": 4},\n\
    {\"block\": 128, \"items\": 4},\n\
    {\"block\": 96, \"items\": 1},\n\
    {\"block\": 512, \"items\": 4},\n\
    {\"block\": 64, \"items\": 2, \"warps\": 4},\n\
    {\"block\": \"large\", \"items\": 1}\n]}\n```\nLet me know how they do.";

#[test]
fn the_strategy_validates_every_proposal() {
    let server = FakeServer::start(vec![ok(SLOPPY)]);
    let strategy = LlmEvolution::with_config(LlmConfig::new(&server.url).backoff(Duration::from_millis(10)));
    let journal = strategy.journal();
    let space = space();
    let mut tuner =
        Tuner::new(space.clone(), |c: &tuner_spec::Config| (c.int("block").unwrap() * c.int("items").unwrap()) as f64)
            .max_evaluations(12)
            .population_size(4)
            .temperature(0.3)
            .verbose(false)
            .seed(3)
            .strategy(strategy);
    tuner.tune().unwrap();
    let report = tuner.strategy_report();
    assert_eq!(tuner.evaluation_count(), 12, "rejections were replaced, the budget was spent");
    let mut points: Vec<_> = tuner.history().iter().map(|t| t.point.clone()).collect();
    assert!(points.iter().all(|p| space.is_valid(p)));
    points.sort();
    points.dedup();
    assert_eq!(points.len(), 12, "no config evaluated twice");

    assert_eq!(report["fallback"], false);
    assert!(report["llm_calls"].as_u64().unwrap() >= 2, "{report:?}");
    let by = &report["llm_rejected_by_reason"];
    assert!(by["outside_space"].as_u64().unwrap() >= 3 * 2, "96, `warps`, \"large\" per call: {report:?}");
    assert!(by["constraint"].as_u64().unwrap() >= 2, "512 * 4 > 1024: {report:?}");
    assert!(by["duplicate"].as_u64().unwrap() >= 2, "128/4 twice in a reply, then again: {report:?}");
    assert_eq!(report["prompt_tokens"].as_u64().unwrap(), 100 * report["llm_calls"].as_u64().unwrap());
    assert!(report["cost_usd"].is_f64(), "gpt-4o-mini is priced: {report:?}");

    let journal = journal.lock().unwrap();
    assert_eq!(journal.len() as u64, report["llm_proposed"].as_u64().unwrap());
    let accepted: Vec<_> = journal.iter().filter_map(|e| e.accepted.clone()).collect();
    assert!(accepted.len() <= 1, "only 128/4 is ever valid, once");
    for e in journal.iter().filter(|e| e.rejected.is_some()) {
        assert!(e.accepted.is_none());
    }
    assert!(journal.iter().any(|e| e.rejected.as_deref().is_some_and(|r| r.contains("`block`") && r.contains("96"))));
    assert!(journal.iter().any(|e| e.rejected.as_deref().is_some_and(|r| r.contains("warps"))));
    for p in &accepted {
        assert!(tuner.history().iter().any(|t| t.point == *p), "an accepted proposal was evaluated");
    }
    // The prompt shows the model its rejected proposals as failures.
    let seen = server.requests();
    assert!(seen.iter().all(|r| r.body["temperature"] == 0.3), "the tuner's temperature passes through");
    assert!(seen.iter().all(|r| r.body["seed"].is_u64()), "a seed drawn from the tuner's generator");
    assert_eq!(
        seen[0].body["response_format"]["json_schema"]["schema"]["properties"]["configs"]["items"]["properties"]
            ["block"]["enum"],
        json!([64, 128, 256, 512])
    );
    let last_prompt = seen.last().unwrap().body["messages"][1]["content"].as_str().unwrap().to_owned();
    assert!(last_prompt.contains("rejected"), "{last_prompt}");
    assert!(last_prompt.contains("block * items <= 1024"), "{last_prompt}");
}

#[test]
fn an_endpoint_failing_mid_run_leaves_the_run_on_classical_operators() {
    let server = FakeServer::start(vec![ok(r#"{"configs":[{"block":64,"items":4}]}"#), status(401, "revoked")]);
    let strategy = LlmEvolution::with_config(LlmConfig::new(&server.url).backoff(Duration::from_millis(10)));
    let mut tuner = Tuner::new(space(), |c: &tuner_spec::Config| c.int("block").unwrap() as f64)
        .max_evaluations(12)
        .population_size(3)
        .verbose(false)
        .seed(1)
        .strategy(strategy);
    tuner.tune().unwrap();
    let report = tuner.strategy_report();
    assert_eq!(tuner.evaluation_count(), 12, "13 valid configs; the whole budget was spent");
    assert_eq!(report["fallback"], true);
    assert!(report["fallback_reason"].as_str().unwrap().contains("OPENAI_API_KEY"), "{report:?}");
    assert_eq!(server.requests().len(), 2, "the endpoint is not asked again after a 401");
}

#[test]
fn a_dead_endpoint_from_the_start_still_tunes() {
    // Nothing listens on a port we bound and closed.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let strategy = LlmEvolution::with_config(
        LlmConfig::new(format!("http://127.0.0.1:{port}/v1")).retries(1).backoff(Duration::from_millis(10)),
    );
    let mut tuner = Tuner::new(space(), |c: &tuner_spec::Config| c.int("items").unwrap() as f64)
        .max_evaluations(10)
        .population_size(3)
        .verbose(false)
        .strategy(strategy);
    let best = tuner.tune().unwrap();
    assert_eq!(best.int("items"), Some(8));
    assert_eq!(tuner.strategy_report()["fallback"], true);
}
