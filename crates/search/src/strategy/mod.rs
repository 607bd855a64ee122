//! Search strategies: each proposes the next batch of points to evaluate.
//!
//! A strategy sees the space, the full history and the tuner's seeded random generator through a
//! [`Context`], and returns points. It may return points that are invalid or already evaluated: the
//! tuner validates and deduplicates every proposal, and tops a short batch up with unseen random points,
//! so a strategy can never stall a run or cause a config to be evaluated twice. All randomness comes from
//! the context's generator, which makes every run reproducible by seed.

mod differential_evolution;
#[cfg(feature = "llm")]
mod hybrid;
#[cfg(feature = "llm")]
mod llm_evolution;
mod local_search;
mod random;
mod surrogate;

use std::collections::HashSet;

use crate::trial::Trial;
use tuner_spec::space::{Point, Space};

pub use differential_evolution::DifferentialEvolution;
#[cfg(feature = "llm")]
pub use hybrid::Hybrid;
#[cfg(feature = "llm")]
pub use llm_evolution::{Journal, JournalEntry, LlmEvolution, Overlap};
pub use local_search::LocalSearch;
pub use random::Random;
pub use surrogate::{Surrogate, SurrogateSettings, MAX_BATCH};

/// The random generator every strategy draws from: portable and stable across platforms and versions.
pub type Rng = rand_chacha::ChaCha8Rng;

/// What a strategy may look at when it proposes.
pub struct Context<'a> {
    pub space: &'a Space,
    /// Every evaluation so far, in order.
    pub history: &'a [Trial],
    /// Every point evaluated so far (the history's points, for quick lookup).
    pub seen: &'a HashSet<Point>,
    pub rng: &'a mut Rng,
    pub population_size: usize,
    pub temperature: f64,
    /// Evaluations left in the budget.
    pub remaining: usize,
}

impl Context<'_> {
    /// Whether `point` was evaluated already.
    pub fn seen(&self, point: &Point) -> bool {
        self.seen.contains(point)
    }

    /// The best valid trials so far, best first.
    pub fn best(&self, n: usize) -> Vec<&Trial> {
        let mut valid: Vec<&Trial> = self.history.iter().filter(|t| t.score.is_some()).collect();
        valid.sort_by(|a, b| b.score.partial_cmp(&a.score).expect("valid scores are finite"));
        valid.truncate(n);
        valid
    }
}

/// A search strategy.
pub trait Strategy {
    /// A short name for reports (`random`, `de`, `local`, …).
    fn name(&self) -> &str;

    /// Proposes up to `n` points to evaluate next.
    fn propose(&mut self, ctx: &mut Context<'_>, n: usize) -> Vec<Point>;

    /// Told the trials that were evaluated from the last proposal (and any top-up), in order.
    fn observe(&mut self, _ctx: &mut Context<'_>, _batch: &[Trial]) {}

    /// The configs the strategy would propose next if the last proposal's results changed nothing,
    /// best guess first: the tuner hands them to [`crate::Objective::prefetch`] (the GPU bench compiles
    /// them while the proposal is measured). Only a hint: it must not draw from the seeded generator,
    /// so a run is the same with or without it. The default has none.
    fn likely_next(&self) -> Vec<Point> {
        Vec::new()
    }

    /// Strategy-specific figures for the run's report (LLM tokens, calls, fallback…).
    fn report(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }

    /// How many configs to evaluate per batch, given the tuner's `population_size`. Population-based
    /// strategies use the population; model-based ones may prefer smaller batches (more model rounds).
    fn batch_size(&self, population_size: usize) -> usize {
        population_size
    }

    /// The batch size when the objective evaluates one config at a time ([`crate::Objective::batched`]
    /// is false: a closure, a replay table), so a batch keeps nothing busy in parallel. Strategies that
    /// learn from every result (the surrogate) take smaller batches here; the default is
    /// [`Strategy::batch_size`].
    fn sequential_batch_size(&self, population_size: usize) -> usize {
        self.batch_size(population_size)
    }

    /// One line for the end of a verbose run (LLM calls, tokens, cost…), when the strategy has one.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// The built-in strategies by name, as the CLI and the build script choose them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    /// Uniform random sampling without replacement.
    Random,
    /// Differential evolution (best/1/bin), the classical baseline.
    De,
    /// Hill climbing over neighbouring values with restarts.
    Local,
    /// Model-based: random forests of the history rank neighbourhoods of the best configs by predicted
    /// performance and the rest of the space by expected improvement; failures in a separate model.
    Surrogate,
    /// Islands evolved by an LLM (the endpoint in OPENAI_BASE_URL / OPENAI_API_KEY), classical operators
    /// covering for it; the built-in search when no endpoint is configured.
    #[cfg(feature = "llm")]
    Llm,
    /// LLM proposals ranked and filtered by the surrogate, mixed with its own; the surrogate alone when
    /// no endpoint is configured.
    #[cfg(feature = "llm")]
    Hybrid,
}

impl Default for StrategyKind {
    /// The strategy that measured best (docs/surrogate.md, docs/benchmarks.md): the surrogate, which is
    /// best or tied on every recorded table. It is the generic [`crate::Tuner`]'s default whatever the
    /// features, so no default run reads an LLM endpoint; the CLI and the build default to the hybrid
    /// where they have the LLM strategies ([`StrategyKind::tool_default`]).
    fn default() -> Self {
        StrategyKind::Surrogate
    }
}

/// The names the strategies go by, with whether they need the `llm` feature.
const NAMES: [(&str, bool); 6] =
    [("random", false), ("de", false), ("local", false), ("surrogate", false), ("llm", true), ("hybrid", true)];

/// A strategy name that is not one of this build's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnknownStrategy {
    #[error("`{name}` is not a strategy; the strategies are: {}", StrategyKind::names().join(", "))]
    Unknown { name: String },
    #[error(
        "the `{name}` strategy needs the LLM client, which this build does not have: enable the `llm` \
         feature of tuner-runtime (for a build script, on its [build-dependencies] entry); available \
         here: {}",
        StrategyKind::names().join(", ")
    )]
    NeedsLlm { name: String },
}

impl std::str::FromStr for StrategyKind {
    type Err = UnknownStrategy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "random" => StrategyKind::Random,
            "de" => StrategyKind::De,
            "local" => StrategyKind::Local,
            "surrogate" => StrategyKind::Surrogate,
            #[cfg(feature = "llm")]
            "llm" => StrategyKind::Llm,
            #[cfg(feature = "llm")]
            "hybrid" => StrategyKind::Hybrid,
            _ if NAMES.iter().any(|(n, llm)| *llm && *n == name) => {
                return Err(UnknownStrategy::NeedsLlm { name: name.to_owned() })
            }
            _ => return Err(UnknownStrategy::Unknown { name: name.to_owned() }),
        })
    }
}

/// What building a strategy takes from the caller's settings.
#[derive(Clone, Debug, Default)]
pub struct StrategyOptions {
    /// The surrogate's and the hybrid's most configs per model round; `None` keeps theirs.
    pub batch: Option<usize>,
    /// The LLM endpoint and trace for `llm` and `hybrid`, read once by the entry point.
    #[cfg(feature = "llm")]
    pub llm: tuner_llm::LlmSettings,
}

impl StrategyKind {
    /// The names this build knows, in order (`llm` and `hybrid` with the `llm` feature).
    pub fn names() -> Vec<&'static str> {
        NAMES.iter().filter(|(_, llm)| cfg!(feature = "llm") || !llm).map(|(n, _)| *n).collect()
    }

    /// The name, as [`std::str::FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Random => "random",
            StrategyKind::De => "de",
            StrategyKind::Local => "local",
            StrategyKind::Surrogate => "surrogate",
            #[cfg(feature = "llm")]
            StrategyKind::Llm => "llm",
            #[cfg(feature = "llm")]
            StrategyKind::Hybrid => "hybrid",
        }
    }

    /// What the CLI and the build use when no strategy is named: the hybrid where the LLM strategies are
    /// built in (the surrogate, proposal for proposal, when no endpoint is configured; a configured LLM's
    /// proposals go through only where the surrogate expects them to pay: docs/llm.md), else the surrogate.
    pub fn tool_default() -> StrategyKind {
        #[cfg(feature = "llm")]
        return StrategyKind::Hybrid;
        #[cfg(not(feature = "llm"))]
        return StrategyKind::Surrogate;
    }

    /// The strategy with its own defaults; `llm` and `hybrid` read their endpoint from the environment
    /// now, as they are chosen.
    pub fn build(self) -> Box<dyn Strategy> {
        #[cfg(feature = "llm")]
        if matches!(self, StrategyKind::Llm | StrategyKind::Hybrid) {
            return self.build_with(&StrategyOptions { llm: tuner_llm::LlmSettings::from_env(), ..Default::default() });
        }
        self.build_with(&StrategyOptions::default())
    }

    /// The strategy, with the surrogate's and the hybrid's batch (configs per model round) set to
    /// `options.batch` when it is given (the other strategies batch by the tuner's population), and the
    /// LLM strategies on `options.llm`.
    pub fn build_with(self, options: &StrategyOptions) -> Box<dyn Strategy> {
        let batch = options.batch;
        match self {
            StrategyKind::Random => Box::new(Random::new()),
            StrategyKind::De => Box::new(DifferentialEvolution::new()),
            StrategyKind::Local => Box::new(LocalSearch::new()),
            StrategyKind::Surrogate => Box::new(batch.map_or_else(Surrogate::new, Surrogate::with_max_batch)),
            #[cfg(feature = "llm")]
            StrategyKind::Llm => Box::new(LlmEvolution::from_settings(&options.llm)),
            #[cfg(feature = "llm")]
            StrategyKind::Hybrid => Box::new(match batch {
                Some(b) => Hybrid::from_settings(&options.llm).batch(b),
                None => Hybrid::from_settings(&options.llm),
            }),
        }
    }
}

/// Points in `candidates` not yet evaluated and not already in `taken`, in order.
pub(crate) fn fresh<'a>(
    ctx: &Context<'_>,
    candidates: impl IntoIterator<Item = &'a Point>,
    taken: &[Point],
) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    for p in candidates {
        if !ctx.seen(p) && !taken.contains(p) && !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}
