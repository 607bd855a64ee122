//! The tuner's contract: invalid results are recorded with their reason and the run goes on; no config
//! is evaluated twice; the budget counts real evaluations and stops at an exhausted space.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use tuner_search::{Config, Space, StrategyKind, TuneError, Tuner};

fn space() -> Space {
    Space::builder()
        .param("block", [64, 128, 256, 512, 1024])
        .param("items", [1, 2, 4, 8])
        .constraint("block * items <= 4096")
        .build()
        .unwrap()
}

/// A smooth objective peaking at block=256, items=4.
fn score(c: &Config) -> f64 {
    let b = c.int("block").unwrap() as f64;
    let i = c.int("items").unwrap() as f64;
    1000.0 - (b.log2() - 8.0).powi(2) * 50.0 - (i.log2() - 2.0).powi(2) * 40.0
}

fn run_with_bad(bad: impl Fn(&Config) -> Option<f64> + 'static, reason: &str) {
    let mut tuner = Tuner::new(space(), move |c: &Config| {
        if let Some(v) = bad(c) {
            return v;
        }
        score(c)
    })
    .max_evaluations(15)
    .verbose(false)
    .seed(3)
    .boxed_strategy(StrategyKind::Random.build());
    let best = tuner.tune().unwrap();
    assert_eq!(tuner.evaluation_count(), 15, "the run went on after the invalid result");
    let bad: Vec<_> = tuner.history().iter().filter(|t| t.score.is_none()).collect();
    assert!(!bad.is_empty(), "some config hit the invalid result");
    for t in &bad {
        assert_eq!(t.config.int("items"), Some(2));
        assert!(t.failure.as_deref().unwrap().contains(reason), "{:?}", t.failure);
    }
    assert_ne!(best.int("items"), Some(2), "an invalid config is never the best");
}

#[test]
fn zero_score_is_invalid() {
    run_with_bad(|c| (c.int("items") == Some(2)).then_some(0.0), "returned 0");
}

#[test]
fn negative_infinity_is_invalid() {
    run_with_bad(|c| (c.int("items") == Some(2)).then_some(f64::NEG_INFINITY), "returned -inf");
}

#[test]
fn nan_is_invalid() {
    run_with_bad(|c| (c.int("items") == Some(2)).then_some(f64::NAN), "returned NaN");
}

#[test]
fn panic_is_invalid_with_its_message() {
    run_with_bad(
        |c| {
            if c.int("items") == Some(2) {
                panic!("kernel launch failed for items=2");
            }
            None
        },
        "objective panicked: kernel launch failed for items=2",
    );
}

#[test]
fn no_valid_config_is_an_error_after_the_whole_budget() {
    let mut tuner = Tuner::new(space(), |_: &Config| f64::NAN).max_evaluations(7).verbose(false);
    let e = tuner.tune().unwrap_err();
    assert!(matches!(e, TuneError::NoValidConfig { evaluations: 7, .. }), "{e}");
    assert!(e.to_string().contains("objective returned NaN"), "{e}");
    assert_eq!(tuner.best_config(), None);
    assert_eq!(tuner.history().len(), 7);
}

#[test]
fn budget_beyond_the_space_ends_when_exhausted_without_repeats() {
    let valid = space().valid_count().unwrap();
    for kind in [StrategyKind::Random, StrategyKind::De, StrategyKind::Local] {
        let mut tuner =
            Tuner::new(space(), score).max_evaluations(1000).verbose(false).seed(1).boxed_strategy(kind.build());
        tuner.tune().unwrap();
        assert_eq!(tuner.evaluation_count(), valid, "{kind:?} evaluates every valid config once");
        let distinct: HashSet<_> = tuner.history().iter().map(|t| t.config.clone()).collect();
        assert_eq!(distinct.len(), valid, "{kind:?} never repeats a config");
        assert!(tuner.history().iter().all(|t| space().point(&t.config).is_ok()), "only valid configs");
        assert_eq!(tuner.best_config().unwrap().int("block"), Some(256));
        assert_eq!(tuner.best_config().unwrap().int("items"), Some(4));
    }
}

#[test]
fn results_are_reproducible_by_seed() {
    let run = |seed| {
        let mut t = Tuner::new(space(), score)
            .max_evaluations(9)
            .verbose(false)
            .seed(seed)
            .boxed_strategy(StrategyKind::De.build());
        t.tune().unwrap();
        t.history().iter().map(|t| t.config.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn stop_flag_ends_early_with_best_so_far_and_history_intact() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let mut count = 0;
    let mut tuner = Tuner::new(space(), move |c: &Config| {
        count += 1;
        if count == 5 {
            flag.store(true, Ordering::SeqCst); // as Ctrl-C does, in the middle of a batch
        }
        score(c)
    })
    .max_evaluations(50)
    .population_size(3)
    .verbose(false)
    .stop_flag(stop);
    let best = tuner.tune().unwrap();
    assert!(tuner.interrupted());
    assert_eq!(tuner.evaluation_count(), 5, "stops after the evaluation in progress");
    let best_in_history = tuner.history().iter().filter_map(|t| t.score).fold(f64::MIN, f64::max);
    assert_eq!(tuner.best_score(), Some(best_in_history));
    assert_eq!(score(&best), best_in_history);
}

#[test]
fn start_configs_are_measured_first_in_order_and_count_against_the_budget() {
    let at = |block: i64, items: i64| {
        let s = space();
        let p = s.point_of_pairs([("block".to_owned(), block.into()), ("items".to_owned(), items.into())]).unwrap();
        s.config(&p)
    };
    let start = [at(1024, 1), at(64, 8), at(1024, 1)];
    let mut tuner = Tuner::new(space(), score)
        .max_evaluations(6)
        .verbose(false)
        .seed(1)
        .boxed_strategy(StrategyKind::Surrogate.build())
        .start_with(&start)
        .unwrap();
    tuner.tune().unwrap();
    let order: Vec<&Config> = tuner.history().iter().map(|t| &t.config).collect();
    assert_eq!(order[..2], [&start[0], &start[1]], "the start configs come first, each once");
    assert!(!order[2..].contains(&&start[0]) && !order[2..].contains(&&start[1]));
    assert_eq!(tuner.evaluation_count(), 6);

    // A start config outside the space is an error that names the problem.
    let config = |block: i64, items: i64| Config::new(start[0].names().into(), vec![block.into(), items.into()]);
    let err = Tuner::new(space(), score).start_with(&[config(64, 3)]).err().expect("items = 3 is not allowed");
    assert!(err.to_string().contains("`items` does not allow 3"), "{err}");
    let err = Tuner::new(space(), score).start_with(&[config(1024, 8)]).err().expect("1024 × 8 > 4096");
    assert!(err.to_string().contains("block * items <= 4096"), "{err}");
}
