//! Tuning one kernel on one device into a cache entry: what the build script does on a miss and what
//! `cargo autotune tune` does for every miss.
//!
//! This module knows nothing about GPUs. It takes a [`KernelObjective`] — anything that scores configs
//! and remembers the time each one took — and runs the [`Tuner`] with the strategy the options name. The
//! real benchmark (`crate::cuda`) and a recorded table ([`Replay`]) are both kernel objectives, so the
//! whole path from spec to entry is tested in CI without a GPU.
//!
//! The default config is always measured, first, as the search's first trial (it counts against
//! `AUTOTUNE_MAX_EVALUATIONS`): the entry records its time so that `cargo autotune list` can show what
//! tuning bought, a search that finds nothing better still leaves the default as the best config, and
//! the model-based strategies learn from it. A kernel's hand-written default is usually in a good
//! region: on the H100 SGEMM table, starting there took the surrogate from 0.61 to 0.93 of 300 seeds
//! within 2% of the optimum at 50 evaluations (docs/surrogate.md).
//!
//! Options come from the environment so that `cargo build` can be steered without code changes:
//! `AUTOTUNE_STRATEGY` (`random`, `de`, `local`, `surrogate`, and with the `llm` feature `llm` and
//! `hybrid`), `AUTOTUNE_MAX_EVALUATIONS`, `AUTOTUNE_SEED`, `AUTOTUNE_BATCH` (configs per model round
//! of the surrogate and the hybrid: [`TuneOptions::batch`]) and `AUTOTUNE_POPULATION` (the tuner's
//! `population_size`, which caps every batch). With no strategy named, the default is
//! [`StrategyKind::default`]: the hybrid when the `llm` feature is on (for a build script: on its
//! `tuner-runtime` build-dependency), which takes an LLM endpoint's proposals (`OPENAI_BASE_URL`,
//! `OPENAI_API_KEY`) where the surrogate expects them to pay and is the surrogate alone without one;
//! otherwise the surrogate.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::cache::{cache_key, config_json, Entry, TuningInfo, FORMAT_VERSION};
use crate::config::Config;
use crate::device::DeviceFingerprint;
use crate::objective::{Objective, Outcome};
use crate::replay::Replay;
use crate::space::SpaceError;
use crate::spec::{KernelSpec, SpecError};
use crate::strategy::StrategyKind;
use crate::tuner::{TuneError, Tuner};

/// Environment variables the options read (the build script reruns when one changes).
pub const ENV_VARS: &[&str] = &[
    "AUTOTUNE_STRATEGY",
    "AUTOTUNE_MAX_EVALUATIONS",
    "AUTOTUNE_SEED",
    "AUTOTUNE_BATCH",
    "AUTOTUNE_POPULATION",
    "OPENAI_BASE_URL",
];

/// An objective over a kernel's configs that also reports the time of each config it measured.
pub trait KernelObjective: Objective {
    /// The measured time of `config` in milliseconds, once it has been evaluated and was valid.
    fn time_ms(&self, config: &Config) -> Option<f64>;
    /// What the score measures, for the entry (`1/time`, `GB/s`).
    fn describe(&self) -> String;
}

impl KernelObjective for Replay {
    fn time_ms(&self, config: &Config) -> Option<f64> {
        self.time(config).ok().flatten()
    }

    fn describe(&self) -> String {
        format!("replay of {} (1/time)", self.path().display())
    }
}

/// How to search.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneOptions {
    pub strategy: StrategyKind,
    pub max_evaluations: usize,
    pub seed: u64,
    /// The tuner's `population_size` (default 20): the population of the population-based strategies,
    /// and the most configs a batch holds for every strategy.
    pub population_size: usize,
    /// The most configs per model round of the surrogate and the hybrid; `None` keeps theirs: the
    /// surrogate picks one config per round, which reached 2% of the best SGEMM time on the H100 in 17
    /// of 24 runs by evaluation 50 against 3 of 30 with 10. 10, which compiles ten configs in
    /// parallel, took a 100-evaluation tune from a median 38 s to 31–42 s (docs/benchmarks.md).
    pub batch: Option<usize>,
    pub verbose: bool,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            strategy: StrategyKind::default(),
            max_evaluations: 60,
            seed: 0,
            population_size: 20,
            batch: None,
            verbose: false,
        }
    }
}

/// Why the options in the environment are not usable.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("{var}={value:?} is not one of: {allowed}")]
    Strategy { var: &'static str, value: String, allowed: String },
    #[error("{var}={value:?} is not a positive integer")]
    Number { var: &'static str, value: String },
}

/// Why a kernel could not be tuned.
#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    #[error("kernel `{kernel}`: invalid spec")]
    Spec {
        kernel: String,
        #[source]
        source: Box<SpecError>,
    },
    #[error("kernel `{kernel}`: invalid space")]
    Space {
        kernel: String,
        #[source]
        source: SpaceError,
    },
    #[error("kernel `{kernel}`: tuning found no valid config")]
    Tune {
        kernel: String,
        #[source]
        source: TuneError,
    },
}

/// The strategies that can be named in `AUTOTUNE_STRATEGY`.
fn strategies() -> Vec<(&'static str, StrategyKind)> {
    #[cfg_attr(not(feature = "llm"), allow(unused_mut))]
    let mut all = vec![
        ("random", StrategyKind::Random),
        ("de", StrategyKind::De),
        ("local", StrategyKind::Local),
        ("surrogate", StrategyKind::Surrogate),
    ];
    #[cfg(feature = "llm")]
    all.extend([("llm", StrategyKind::Llm), ("hybrid", StrategyKind::Hybrid)]);
    all
}

impl TuneOptions {
    /// Reads the options from the environment through `get` (so tests need not touch the process
    /// environment); unset variables keep their defaults.
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<TuneOptions, OptionsError> {
        let mut o = TuneOptions::default();
        if let Some(value) = get("AUTOTUNE_STRATEGY").filter(|v| !v.is_empty()) {
            o.strategy = strategies().into_iter().find(|(n, _)| *n == value).map(|(_, k)| k).ok_or_else(|| {
                OptionsError::Strategy {
                    var: "AUTOTUNE_STRATEGY",
                    value: value.clone(),
                    allowed: strategies().iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                }
            })?;
        }
        let number = |var: &'static str| -> Result<Option<u64>, OptionsError> {
            match get(var).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(value) => match value.parse::<u64>() {
                    Ok(n) if n > 0 || var == "AUTOTUNE_SEED" => Ok(Some(n)),
                    _ => Err(OptionsError::Number { var, value }),
                },
            }
        };
        if let Some(n) = number("AUTOTUNE_MAX_EVALUATIONS")? {
            o.max_evaluations = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("AUTOTUNE_SEED")? {
            o.seed = n;
        }
        if let Some(n) = number("AUTOTUNE_BATCH")? {
            o.batch = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(n) = number("AUTOTUNE_POPULATION")? {
            o.population_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(o)
    }

    /// [`TuneOptions::from_env_with`] over the process environment.
    pub fn from_env() -> Result<TuneOptions, OptionsError> {
        TuneOptions::from_env_with(|k| std::env::var(k).ok())
    }
}

/// Lends a kernel objective to the tuner without giving it up.
struct Lend<'a>(&'a mut dyn KernelObjective);

impl Objective for Lend<'_> {
    fn evaluate(&mut self, config: &Config) -> Outcome {
        self.0.evaluate(config)
    }
    fn batched(&self) -> bool {
        self.0.batched()
    }
    fn evaluate_batch(&mut self, configs: &[Config]) -> Vec<Outcome> {
        self.0.evaluate_batch(configs)
    }
    fn prefetch(&mut self, configs: &[Config]) {
        self.0.prefetch(configs)
    }
}

/// Tunes `spec` (whose kernel source hashes to `source_blake3`) on `device` with `objective`, and returns
/// the cache entry to write.
pub fn tune_kernel(
    spec: &KernelSpec,
    source_blake3: &str,
    device: &DeviceFingerprint,
    objective: &mut dyn KernelObjective,
    options: &TuneOptions,
) -> Result<Entry, TuningError> {
    let kernel = spec.name.clone();
    spec.check().map_err(|e| TuningError::Spec { kernel: kernel.clone(), source: Box::new(e) })?;
    let space = spec.space().map_err(|source| TuningError::Space { kernel: kernel.clone(), source })?;
    let default =
        spec.default_config().map_err(|e| TuningError::Spec { kernel: kernel.clone(), source: Box::new(e) })?;
    let started = Instant::now();

    let (best, best_score, evaluations, valid) = {
        // The default is the search's first trial: the entry needs its time anyway, and the model-based
        // strategies learn from it (a kernel's default is usually a fair config: docs/surrogate.md).
        let mut tuner = Tuner::new(space, Lend(&mut *objective))
            .max_evaluations(options.max_evaluations)
            .seed(options.seed)
            .population_size(options.population_size)
            .verbose(options.verbose)
            .progress(false)
            .boxed_strategy(options.strategy.build_with(options.batch))
            .start_with(std::slice::from_ref(&default))
            .expect("default_config is a point of the spec's space");
        // The default, first, wins ties, and is the best config when nothing else ran.
        let found = tuner.tune().map_err(|source| TuningError::Tune { kernel: kernel.clone(), source })?;
        let valid = tuner.history().iter().filter(|t| t.score.is_some()).count();
        (found, tuner.best_score().unwrap_or(f64::NAN), tuner.evaluation_count(), valid)
    };
    let default_time_ms = objective.time_ms(&default);
    let best_time_ms = objective.time_ms(&best);
    let tuned_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Ok(Entry {
        format_version: FORMAT_VERSION,
        key: cache_key(source_blake3, spec, device),
        kernel: kernel.clone(),
        source_blake3: source_blake3.to_owned(),
        spec: spec.clone(),
        device: device.clone(),
        best: config_json(&best),
        best_score,
        best_time_ms,
        default: config_json(&default),
        default_time_ms,
        tuning: TuningInfo {
            strategy: format!("{:?}", options.strategy).to_lowercase(),
            objective: objective.describe(),
            evaluations,
            valid,
            wall_seconds: started.elapsed().as_secs_f64(),
            tuned_at,
            tool: concat!("tuner-runtime ", env!("CARGO_PKG_VERSION")).to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{source_hash, Cache};
    use crate::value::Value;

    /// A spec whose space is exactly the replay table's (`tests/data/transpose.json`).
    pub(crate) fn transpose_spec(replay: &Replay) -> KernelSpec {
        let t = replay.table();
        let tokens: proc_macro2::TokenStream = format!(
            "kernel = \"cuda/transpose.cu\", entry = \"transpose\", space({}), \
             bench(n = 4096, args = [in f32[n * n], out f32[n * n], n], grid = \"n\", block = \"32\")",
            t.params
                .iter()
                .map(|(n, vs)| format!("{n} = [{}]", vs.iter().map(lit).collect::<Vec<_>>().join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .parse()
        .unwrap();
        KernelSpec::parse("transpose", tokens).unwrap()
    }

    fn lit(v: &Value) -> String {
        match v {
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => format!("{s:?}"),
        }
    }

    fn replay() -> Replay {
        Replay::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/transpose.json")).unwrap()
    }

    fn h100() -> DeviceFingerprint {
        DeviceFingerprint { name: "NVIDIA H100".into(), compute_capability: (9, 0), driver: None, nvrtc: None }
    }

    #[test]
    fn a_replayed_tuning_makes_a_valid_entry_no_worse_than_the_default() {
        let mut r = replay();
        let spec = transpose_spec(&r);
        let options = TuneOptions { max_evaluations: 25, seed: 3, ..TuneOptions::default() };
        let entry = tune_kernel(&spec, &source_hash(b"src"), &h100(), &mut r, &options).unwrap();
        assert!(entry.speedup().unwrap() >= 1.0, "{entry:?}");
        // The default is the search's first trial, within the budget.
        assert_eq!(entry.tuning.evaluations, 25);
        assert_eq!(entry.default_time_ms, r.time(&spec.default_config().unwrap()).unwrap());
        // What the tuner writes, the cache reads back as fresh.
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_dirs(vec![dir.path().to_owned()]);
        cache.write(&entry).unwrap();
        let found = cache.lookup(&spec, &source_hash(b"src")).unwrap();
        assert!(found.corrupt.is_empty(), "{:?}", found.corrupt);
        assert_eq!(found.fresh.len(), 1);
        let best = found.fresh[0].entry.best_config(&spec.space().unwrap()).unwrap();
        assert_eq!(r.time(&best).unwrap(), entry.best_time_ms);
    }

    #[test]
    fn options_come_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(TuneOptions::from_env_with(env(&[])).unwrap(), TuneOptions::default());
        let o = TuneOptions::from_env_with(env(&[
            ("AUTOTUNE_STRATEGY", "de"),
            ("AUTOTUNE_MAX_EVALUATIONS", "12"),
            ("AUTOTUNE_SEED", "0"),
            ("AUTOTUNE_POPULATION", "1"),
            ("AUTOTUNE_BATCH", "10"),
        ]))
        .unwrap();
        assert_eq!((o.strategy, o.max_evaluations, o.seed, o.population_size), (StrategyKind::De, 12, 0, 1));
        assert_eq!(o.batch, Some(10));
        let e = TuneOptions::from_env_with(env(&[("AUTOTUNE_STRATEGY", "magic")])).unwrap_err();
        assert!(
            e.to_string().contains("AUTOTUNE_STRATEGY=\"magic\" is not one of: random, de, local, surrogate"),
            "{e}"
        );
        // With no strategy named, the default (the hybrid reads the endpoint itself); a named one wins.
        let endpoint = TuneOptions::from_env_with(env(&[("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")])).unwrap();
        #[cfg(feature = "llm")]
        assert_eq!(endpoint.strategy, StrategyKind::Hybrid);
        #[cfg(not(feature = "llm"))]
        assert_eq!(endpoint.strategy, StrategyKind::Surrogate);
        let named = TuneOptions::from_env_with(env(&[("OPENAI_BASE_URL", "http://x"), ("AUTOTUNE_STRATEGY", "de")]));
        assert_eq!(named.unwrap().strategy, StrategyKind::De);
        assert!(TuneOptions::from_env_with(env(&[("AUTOTUNE_MAX_EVALUATIONS", "0")])).is_err());
        let e = TuneOptions::from_env_with(env(&[("AUTOTUNE_POPULATION", "0")])).unwrap_err();
        assert!(e.to_string().contains("AUTOTUNE_POPULATION=\"0\" is not a positive integer"), "{e}");
        let e = TuneOptions::from_env_with(env(&[("AUTOTUNE_BATCH", "ten")])).unwrap_err();
        assert!(e.to_string().contains("AUTOTUNE_BATCH=\"ten\" is not a positive integer"), "{e}");
    }
}
