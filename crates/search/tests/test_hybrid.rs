//! The hybrid strategy: with no endpoint it is the surrogate, seed for seed; with one, the LLM's
//! proposals pass through the surrogate, which measures the promising ones and drops the poor ones.

#![cfg(feature = "llm")]

mod synthetic;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;
use tuner_llm::{LlmClient, LlmConfig};
use tuner_search::strategy::{Hybrid, LlmEvolution, Surrogate};
use tuner_search::{Config, Point, Strategy, Trial, Tuner};

/// A local OpenAI-compatible server that answers every chat request with `content`.
fn fake_endpoint(content: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let url = format!("http://{}/v1", listener.local_addr().expect("bound"));
    let body = json!({
        "id": "x", "object": "chat.completion", "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    })
    .to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("a socket clone"));
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request = vec![0u8; len];
            let _ = reader.read_exact(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    url
}

fn run(
    problem: &synthetic::Problem,
    strategy: impl Strategy,
    budget: usize,
    seed: u64,
) -> (Vec<Trial>, serde_json::Map<String, serde_json::Value>) {
    let objective = |c: &Config| problem.outcome(c).score().unwrap_or(0.0);
    let mut tuner = Tuner::new(problem.space.clone(), objective)
        .max_evaluations(budget)
        .population_size(20)
        .seed(seed)
        .verbose(false)
        .strategy(strategy);
    let _ = tuner.tune();
    (tuner.history().to_vec(), tuner.strategy_report())
}

#[test]
fn without_an_endpoint_it_is_the_surrogate() {
    let problem = synthetic::gemm(false);
    for seed in [1, 2] {
        let (a, report) = run(&problem, Hybrid::surrogate_only("no endpoint in this test"), 60, seed);
        let (b, _) = run(&problem, Surrogate::new(), 60, seed);
        let points = |h: &[Trial]| h.iter().map(|t| t.point.clone()).collect::<Vec<_>>();
        assert_eq!(points(&a), points(&b), "seed {seed}");
        assert_eq!(report.get("fallback"), Some(&json!(true)));
        assert_eq!(report.get("strategy"), Some(&json!("hybrid")));
    }
}

#[test]
fn the_surrogate_measures_the_promising_llm_proposals_and_drops_the_poor_ones() {
    let problem = synthetic::gemm(false);
    // The model proposes the optimum and the five slowest configs of the space, every time it is asked.
    let mut ranked: Vec<(&Point, f64)> = problem.times.iter().filter_map(|(p, t)| t.map(|t| (p, t))).collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let optimum = ranked[0].0.clone();
    let worst: Vec<Point> = ranked.iter().rev().take(5).map(|(p, _)| (*p).clone()).collect();
    let configs: Vec<serde_json::Value> =
        std::iter::once(&optimum).chain(&worst).map(|p| problem.space.config(p).to_json()).collect();
    let url = fake_endpoint(json!({ "configs": configs }).to_string());
    let client = LlmClient::new(LlmConfig::new(url).timeout(Duration::from_secs(10)).retries(1)).expect("a client");
    let (history, report) = run(&problem, Hybrid::new(LlmEvolution::new(client)), 80, 3);

    let evaluated = |p: &Point| history.iter().position(|t| t.point == *p);
    assert!(evaluated(&optimum).is_some(), "the LLM's optimum is measured");
    let poor = worst.iter().filter(|p| evaluated(p).is_some()).count();
    assert!(poor <= 1, "{poor} of the five slowest configs were measured");
    let offered = report.get("llm_offered_to_surrogate").and_then(|v| v.as_u64()).expect("reported");
    let taken = report.get("llm_taken_by_surrogate").and_then(|v| v.as_u64()).expect("reported");
    assert!(taken >= 1 && taken < offered, "took {taken} of {offered} LLM proposals");
    assert!(report.get("llm_calls").and_then(|v| v.as_u64()).is_some_and(|c| c >= 2));
    let mut points: Vec<&Point> = history.iter().map(|t| &t.point).collect();
    points.sort();
    points.dedup();
    assert_eq!(points.len(), history.len(), "no config measured twice");
}
