//! Tuning one kernel on one device into a cache entry: what the build script does on a miss and what
//! `cargo autotune tune` does for every miss.
//!
//! This module knows nothing about GPUs. It takes a [`KernelObjective`] — anything that scores configs
//! and remembers the time each one took — and runs the [`Tuner`] with the strategy the options name. The
//! real benchmark (`tuner_cuda`) and a recorded table ([`Replay`]) are both kernel objectives, so the
//! whole path from spec to entry is tested in CI without a GPU.
//!
//! The default config is always measured, first, as the search's first trial (it counts against
//! `AUTOTUNE_MAX_EVALUATIONS`): the entry records its time so that `cargo autotune list` can show what
//! tuning bought, a search that finds nothing better still leaves the default as the best config, and
//! the model-based strategies learn from it. A kernel's hand-written default is usually in a good
//! region: on the H100 SGEMM table, starting there took the surrogate from 0.61 to 0.93 of 300 seeds
//! within 2% of the optimum at 50 evaluations (docs/surrogate.md).
//!
//! # Warm starts
//!
//! A kernel tuned at several sizes or on several GPUs already knows good configs: after the default, a
//! tune measures the best configs of the same kernel's other fresh entries ([`warm_starts`]: this GPU's
//! entries at neighbouring sizes first, nearest first, then other GPUs' at the same size, then the rest by
//! size distance), at most [`MAX_WARM_STARTS`], each valid at this point and measured once, counted in
//! the budget exactly as the default is. The entry records each start, where it came from and its time
//! ([`Start`]).
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

use crate::cache::{cache_key, config_in, config_json, Cached, Entry, Start, TuningInfo, FORMAT_VERSION};
use tuner_search::objective::{Objective, Outcome};
use tuner_search::strategy::{StrategyKind, StrategyOptions};
use tuner_search::tuner::{TuneError, Tuner};
use tuner_search::KernelObjective;
use tuner_spec::config::Config;
use tuner_spec::device::DeviceFingerprint;
use tuner_spec::dispatch::Dispatch;
use tuner_spec::CheckedSpec;

/// How to search (read from the environment by [`crate::settings::Settings`]).
#[derive(Clone, Debug)]
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
    /// A flag that stops the search (the CLI's Ctrl-C); a stopped tune is [`TuningError::Interrupted`],
    /// and no entry is made of it.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The endpoint of the LLM strategies, read once with the other settings.
    #[cfg(feature = "llm")]
    pub llm: tuner_llm::LlmSettings,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            strategy: StrategyKind::tool_default(),
            max_evaluations: 60,
            seed: 0,
            population_size: 20,
            batch: None,
            verbose: false,
            stop: None,
            #[cfg(feature = "llm")]
            llm: tuner_llm::LlmSettings::default(),
        }
    }
}

/// Why a kernel could not be tuned.
#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    #[error("kernel `{kernel}`: interrupted after {evaluations} evaluations; no entry was written")]
    Interrupted { kernel: String, evaluations: usize },
    #[error("kernel `{kernel}`: tuning found no valid config")]
    Tune {
        kernel: String,
        #[source]
        source: TuneError,
    },
}

impl TuneOptions {
    /// What building the strategy takes from these options.
    pub fn strategy_options(&self) -> StrategyOptions {
        StrategyOptions {
            batch: self.batch,
            #[cfg(feature = "llm")]
            llm: self.llm.clone(),
        }
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

/// The most configs of other entries a tune measures first.
pub const MAX_WARM_STARTS: usize = 4;

/// A config to measure first, and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct WarmStart {
    pub config: Config,
    /// The file name of the entry it is the best config of.
    pub from: String,
}

/// The warm starts of a tune of `spec` (checked at its point) on `device`, from `others` (the kernel's
/// fresh entries): see the module docs for the order. Configs that do not belong to this point's space
/// (a tile that does not divide its sizes) or that repeat an earlier one (or the default) are left out.
pub fn warm_starts(spec: &CheckedSpec, device: &DeviceFingerprint, others: &[Cached]) -> Vec<WarmStart> {
    let here: Vec<i64> = spec.bench.sizes.iter().map(|(_, v)| *v).collect();
    let mut ranked: Vec<(u8, f64, usize)> = others
        .iter()
        .enumerate()
        .filter(|(_, c)| !(c.entry.device.same_hardware(device) && c.entry.point() == spec.bench.sizes.as_slice()))
        .map(|(i, c)| {
            let sizes: Vec<i64> = c.entry.point().iter().map(|(_, v)| *v).collect();
            let distance = Dispatch::distance(&sizes, &here);
            let rank = if c.entry.device.same_hardware(device) {
                0
            } else if distance == 0.0 {
                1
            } else {
                2
            };
            (rank, distance, i)
        })
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out: Vec<WarmStart> = Vec::new();
    for (_, _, i) in ranked {
        let cached = &others[i];
        let Ok(config) = config_in(spec.space(), &cached.entry.best, "best") else { continue };
        if config == *spec.default_config() || out.iter().any(|w| w.config == config) {
            continue;
        }
        let from = cached
            .path
            .file_name()
            .map_or_else(|| cached.path.display().to_string(), |n| n.to_string_lossy().into_owned());
        out.push(WarmStart { config, from });
        if out.len() == MAX_WARM_STARTS {
            break;
        }
    }
    out
}

/// Why one size point of a kernel could not be tuned.
#[derive(Debug, thiserror::Error)]
pub enum PointError {
    /// The declared spec does not check at the point.
    #[error(transparent)]
    Spec(#[from] tuner_spec::SpecError),
    /// The GPU could not make a benchmark for the kernel (the reference config failed, no worker…).
    #[error(transparent)]
    Objective(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Tuning(#[from] TuningError),
}

/// Tunes the scanned `kernel` at `point` on `gpu`: the declared spec at that point, its warm starts from
/// the kernel's `fresh` entries ([`warm_starts`]), a benchmark from the GPU, the search. `announce` hears
/// the warm starts before any GPU work (the build script and the CLI each print their line). The entry is
/// returned, not written.
pub fn tune_point(
    kernel: &crate::scan::Kernel,
    point: &[(String, i64)],
    gpu: &mut dyn tuner_search::Gpu,
    options: &TuneOptions,
    fresh: &[Cached],
    announce: impl FnOnce(&[WarmStart]),
) -> Result<Entry, PointError> {
    let device = gpu.fingerprint().clone();
    let spec = kernel.spec.at(point).check()?;
    let warm = warm_starts(&spec, &device, fresh);
    announce(&warm);
    let source = String::from_utf8_lossy(&kernel.source).into_owned();
    let mut objective = gpu.objective(&spec, &source).map_err(PointError::Objective)?;
    Ok(tune_kernel(&spec, &kernel.source_blake3, &device, &mut *objective, options, &warm)?)
}

/// Tunes `spec` (checked at one size point; its kernel source hashes to `source_blake3`) on `device`
/// with `objective`, measuring the default and then `warm` first, and returns the cache entry to write.
pub fn tune_kernel(
    spec: &CheckedSpec,
    source_blake3: &str,
    device: &DeviceFingerprint,
    objective: &mut dyn KernelObjective,
    options: &TuneOptions,
    warm: &[WarmStart],
) -> Result<Entry, TuningError> {
    let kernel = spec.name.clone();
    let space = spec.space().clone();
    let default = spec.default_config().clone();
    let started = Instant::now();
    let mut first = vec![default.clone()];
    first.extend(warm.iter().map(|w| w.config.clone()).filter(|c| *c != default));

    let (best, best_score, evaluations, valid) = {
        // The default is the search's first trial: the entry needs its time anyway, and the model-based
        // strategies learn from it (a kernel's default is usually a fair config: docs/surrogate.md).
        let mut tuner = Tuner::new(space, Lend(&mut *objective))
            .max_evaluations(options.max_evaluations)
            .seed(options.seed)
            .population_size(options.population_size)
            .verbose(options.verbose)
            .boxed_strategy(options.strategy.build_with(&options.strategy_options()))
            .start_with(&first)
            .expect("the default and the warm starts are points of the spec's space");
        if let Some(stop) = &options.stop {
            tuner = tuner.stop_flag(stop.clone());
        }
        // The default, first, wins ties, and is the best config when nothing else ran.
        let found = tuner.tune().map_err(|source| TuningError::Tune { kernel: kernel.clone(), source });
        if tuner.interrupted() {
            return Err(TuningError::Interrupted { kernel, evaluations: tuner.evaluation_count() });
        }
        let found = found?;
        let valid = tuner.history().iter().filter(|t| t.score.is_some()).count();
        (found, tuner.best_score().unwrap_or(f64::NAN), tuner.evaluation_count(), valid)
    };
    let default_time_ms = objective.time_ms(&default);
    let best_time_ms = objective.time_ms(&best);
    let tuned_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut starts = Vec::with_capacity(first.len());
    if !warm.is_empty() {
        starts.push(Start { from: "default".into(), config: config_json(&default), time_ms: default_time_ms });
        for w in warm.iter().filter(|w| w.config != default) {
            let time_ms = objective.time_ms(&w.config);
            starts.push(Start { from: w.from.clone(), config: config_json(&w.config), time_ms });
        }
    }
    Ok(Entry {
        format_version: FORMAT_VERSION,
        key: cache_key(source_blake3, spec, device),
        kernel: kernel.clone(),
        source_blake3: source_blake3.to_owned(),
        spec: spec.spec().clone(),
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
        starts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{source_hash, Cache};
    use tuner_search::replay::Replay;
    use tuner_spec::value::Value;

    /// A spec whose space is exactly the replay table's (`tests/data/transpose.json`).
    pub(crate) fn transpose_spec(replay: &Replay) -> CheckedSpec {
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
        tuner_spec::KernelSpec::parse("transpose", tokens).unwrap().check().unwrap()
    }

    fn lit(v: &Value) -> String {
        match v {
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => format!("{s:?}"),
        }
    }

    fn replay() -> Replay {
        Replay::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/transpose.json")).unwrap()
    }

    fn h100() -> DeviceFingerprint {
        DeviceFingerprint { name: "NVIDIA H100".into(), compute_capability: (9, 0), driver: None, nvrtc: None }
    }

    #[test]
    fn a_replayed_tuning_makes_a_valid_entry_no_worse_than_the_default() {
        let mut r = replay();
        let spec = transpose_spec(&r);
        let options = TuneOptions { max_evaluations: 25, seed: 3, ..TuneOptions::default() };
        let entry = tune_kernel(&spec, &source_hash(b"src"), &h100(), &mut r, &options, &[]).unwrap();
        assert!(entry.speedup().unwrap() >= 1.0, "{entry:?}");
        // The default is the search's first trial, within the budget.
        assert_eq!(entry.tuning.evaluations, 25);
        assert_eq!(entry.default_time_ms, r.time(spec.default_config()).unwrap());
        // What the tuner writes, the cache reads back as fresh.
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_dirs(vec![dir.path().to_owned()]);
        cache.write(&entry).unwrap();
        let found = cache.lookup(&spec, &source_hash(b"src")).unwrap();
        assert!(found.corrupt.is_empty(), "{:?}", found.corrupt);
        assert_eq!(found.fresh.len(), 1);
        let best = found.fresh[0].entry.best_config(spec.space()).unwrap();
        assert_eq!(r.time(&best).unwrap(), entry.best_time_ms);
    }
}
