//! Each built-in strategy reaches the optimum of a recorded H100 table within budget for most seeds,
//! and random search never repeats a config.

use std::collections::HashSet;
use std::path::PathBuf;

use tuner_search::{Replay, StrategyKind, Tuner};

fn table(name: &str) -> Replay {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name);
    Replay::load(&path).unwrap()
}

/// The fraction of `seeds` whose best config is the table's optimum after `budget` evaluations.
fn hit_rate(replay: &Replay, kind: StrategyKind, budget: usize, seeds: u64) -> f64 {
    let (optimum, _) = replay.optimum();
    let mut hits = 0;
    for seed in 0..seeds {
        let mut tuner = Tuner::new(replay.space().clone(), replay)
            .max_evaluations(budget)
            .verbose(false)
            .seed(seed)
            .boxed_strategy(kind.build());
        let best = tuner.tune().unwrap();
        if replay.time(&best).unwrap() == Some(optimum) {
            hits += 1;
        }
    }
    hits as f64 / seeds as f64
}

#[test]
fn every_strategy_finds_the_transpose_optimum_for_most_seeds() {
    // 72 recorded configs (60 valid); a budget of 50 leaves room for the search to matter.
    let replay = table("transpose.json");
    for kind in [StrategyKind::Random, StrategyKind::De, StrategyKind::Local] {
        let rate = hit_rate(&replay, kind, 50, 20);
        assert!(rate >= 0.6, "{kind:?} reached the optimum in {rate} of 20 seeds");
    }
}

#[test]
fn every_strategy_finds_the_stencil_optimum_for_most_seeds() {
    let replay = table("stencil.json");
    for kind in [StrategyKind::Random, StrategyKind::De, StrategyKind::Local] {
        let rate = hit_rate(&replay, kind, 100, 20);
        assert!(rate >= 0.6, "{kind:?} reached the optimum in {rate} of 20 seeds");
    }
}

#[test]
fn local_search_beats_random_on_the_reduce_table() {
    let replay = table("reduce.json");
    let local = hit_rate(&replay, StrategyKind::Local, 60, 20);
    let random = hit_rate(&replay, StrategyKind::Random, 60, 20);
    assert!(local >= 0.5, "local search reached the optimum in {local} of 20 seeds");
    assert!(local > random, "local {local} vs random {random}");
}

#[test]
fn random_never_repeats_a_config() {
    let replay = table("reduce.json");
    for seed in 0..20 {
        let mut tuner = Tuner::new(replay.space().clone(), &replay)
            .max_evaluations(300)
            .verbose(false)
            .seed(seed)
            .boxed_strategy(StrategyKind::Random.build());
        tuner.tune().unwrap();
        let configs: HashSet<String> = tuner.history().iter().map(|t| t.config.to_string()).collect();
        assert_eq!(configs.len(), tuner.evaluation_count());
        assert_eq!(tuner.evaluation_count(), 300, "the whole table, once each");
    }
}

#[test]
fn replay_space_is_the_recorded_set_and_lookups_outside_it_are_errors() {
    let replay = table("transpose.json");
    assert_eq!(replay.space().valid_count(), Some(72));
    let c = replay.space().config(&replay.space().valid_points().unwrap()[0]);
    assert!(replay.time(&c).is_ok());
    // A constraint narrows it; the optimum is taken within the narrowed space.
    let narrowed = table("transpose.json").constrain(&["pad == 0".into()]).unwrap();
    assert_eq!(narrowed.space().valid_count(), Some(24));
    assert!(narrowed.optimum().0 >= replay.optimum().0);
    assert!(table("transpose.json").constrain(&["pad == 7".into()]).is_err());
}

#[test]
fn the_reference_config_comes_from_the_summary_beside_the_table_and_a_broken_one_names_its_file() {
    // The committed SGEMM table: its recorder's summary names the spec's default.
    let sgemm = Replay::load(format!("{}/../../tables/h100/sgemm.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let reference = sgemm.reference().expect("sgemm.meta.json has a reference").to_string();
    assert_eq!(reference, "{'bm': 128, 'bn': 128, 'bk': 8, 'tm': 8, 'tn': 8, 'vec': 4, 'pad': 4, 'map': 0, 'db': 1}");
    assert!(table("transpose.json").reference().is_none(), "no summary, no reference");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transpose.json");
    std::fs::copy(format!("{}/../../tests/data/transpose.json", env!("CARGO_MANIFEST_DIR")), &path).unwrap();
    let meta = dir.path().join("transpose.meta.json");
    let with_meta = |text: &str| {
        std::fs::write(&meta, text).unwrap();
        Replay::load(&path)
    };
    let r = with_meta(r#"{"reference": {"config": {"tile": 64, "rows": 16, "pad": 1}, "time_ms": 0.19}}"#).unwrap();
    assert_eq!(r.reference().unwrap().to_string(), "{'tile': 64, 'rows': 16, 'pad': 1}");
    // A constraint that excludes the reference drops it.
    assert!(r.constrain(&["pad == 0".into()]).unwrap().reference().is_none());
    assert!(with_meta(r#"{"kernel": "transpose"}"#).unwrap().reference().is_none(), "a summary may have none");
    for (text, why) in [
        ("{not json", "not JSON"),
        (r#"{"reference": {"config": [64, 16, 1]}}"#, "reference.config is not an object"),
        (r#"{"reference": {"config": {"tile": 64, "rows": 16, "pad": 1.5}}}"#, "reference.config.pad"),
        (r#"{"reference": {"config": {"tile": 64, "rows": 16, "pad": 9}}}"#, "`pad` does not allow 9"),
    ] {
        let err = with_meta(text).expect_err(text).to_string();
        assert!(err.contains("transpose.meta.json") && err.contains(why), "{text}: {err}");
    }
}
