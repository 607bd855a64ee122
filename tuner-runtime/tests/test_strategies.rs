//! Each built-in strategy reaches the optimum of a recorded H100 table within budget for most seeds,
//! and random search never repeats a config.

use std::collections::HashSet;
use std::path::PathBuf;

use tuner_runtime::{Replay, StrategyKind, Tuner};

fn table(name: &str) -> Replay {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(name);
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
