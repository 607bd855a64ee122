//! The tuner: runs a strategy against an objective within a budget and keeps the history.
//!
//! The loop is: the strategy proposes a batch; every proposal is validated against the space and
//! deduplicated against the history (a short batch is topped up with unseen random points, so no strategy
//! can stall the run); the objective scores the batch; each result — score or failure reason — is
//! appended to the history, printed when verbose, and shown to the strategy. The budget counts real
//! evaluations only, and a budget larger than the space ends when the space is exhausted.
//!
//! A config that fails never ends the run: 0.0, ±inf and NaN scores, a panic inside the objective and an
//! objective's own `Invalid` outcome are all recorded with their reason. Setting the stop flag
//! ([`Tuner::stop_flag`], which the caller may wire to Ctrl-C) ends the search after the evaluation in
//! progress, and `tune()` returns the best config found so far with the history intact.
//!
//! The tuner prints nothing itself: it tells a [`Progress`] (see [`crate::report`]); `verbose(true)` is the
//! seed's [`Verbose`] lines on stdout.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use crate::objective::{Objective, Outcome};
use crate::report::{Progress, Summary, Verbose};
use crate::strategy::{Context, Rng, Strategy, StrategyKind};
use crate::trial::Trial;
use tuner_spec::config::Config;
use tuner_spec::space::{ConfigError, Point, Space};

/// The most configs the tuner passes to [`Objective::prefetch`] per batch: one per core of a 16-core host.
pub const PREFETCH: usize = 16;

/// Why tuning produced no config.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("no valid config found in {evaluations} evaluations{}", first_failure.as_ref().map(|f| format!(" (first failure: {f})")).unwrap_or_default())]
    NoValidConfig { evaluations: usize, first_failure: Option<String> },
}

/// Tunes `objective` over `space`.
pub struct Tuner<'o> {
    space: Space,
    objective: Box<dyn Objective + 'o>,
    /// `None` until `tune()` builds the default (so a strategy set later costs no default's set-up).
    strategy: Option<Box<dyn Strategy + 'o>>,
    max_evaluations: usize,
    population_size: usize,
    temperature: f64,
    verbose: bool,
    progress: Option<Box<dyn Progress + 'o>>,
    seed: u64,
    stop: Arc<AtomicBool>,
    history: Vec<Trial>,
    /// Points evaluated first, before the strategy proposes anything ([`Tuner::start_with`]).
    start: Vec<Point>,
    best: Option<usize>,
    wall: Duration,
    interrupted: bool,
}

impl<'o> Tuner<'o> {
    /// A tuner with the seed's defaults: 100 evaluations, population 20, temperature 0.8, verbose; the
    /// strategy is [`StrategyKind::default`], the surrogate (the one that measured best).
    pub fn new(space: Space, objective: impl Objective + 'o) -> Tuner<'o> {
        Tuner {
            space,
            objective: Box::new(objective),
            strategy: None,
            max_evaluations: 100,
            population_size: 20,
            temperature: 0.8,
            verbose: true,
            progress: None,
            seed: 0,
            stop: Arc::new(AtomicBool::new(false)),
            history: Vec::new(),
            start: Vec::new(),
            best: None,
            wall: Duration::ZERO,
            interrupted: false,
        }
    }

    pub fn max_evaluations(mut self, n: usize) -> Self {
        self.max_evaluations = n;
        self
    }
    /// The batch size, and the population of population-based strategies.
    pub fn population_size(mut self, n: usize) -> Self {
        self.population_size = n.max(1);
        self
    }
    /// Passed to strategies that sample (the LLM's sampling temperature).
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = t;
        self
    }
    /// Prints `Evaluation i/N: config=…, score=…` per evaluation and a summary at the end, on stdout
    /// ([`Verbose`]).
    pub fn verbose(mut self, v: bool) -> Self {
        self.verbose = v;
        self
    }
    /// Reports every evaluation and the end of the run to `progress` too (a progress bar, a log).
    pub fn progress(mut self, progress: impl Progress + 'o) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn strategy(mut self, strategy: impl Strategy + 'o) -> Self {
        self.strategy = Some(Box::new(strategy));
        self
    }
    pub fn boxed_strategy(mut self, strategy: Box<dyn Strategy + 'o>) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Evaluates `configs` first, in order, before the strategy proposes anything, and counts them against
    /// `max_evaluations` (Optuna's `enqueue_trial`, Helion's start from the default config): a kernel's
    /// hand-picked default is usually a fair config, and the model-based strategies learn from it like
    /// any other trial. A config that is not a valid point of the space is an error naming it.
    pub fn start_with(mut self, configs: &[Config]) -> Result<Self, ConfigError> {
        for c in configs {
            let p = self.space.point(c)?;
            if !self.start.contains(&p) {
                self.start.push(p);
            }
        }
        Ok(self)
    }

    /// A handle that stops the run after the evaluation in progress when set. The tuner never clears
    /// it: one flag can stop every run that shares it (a CLI's Ctrl-C, across a bench's seeds).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Uses `flag` as the stop handle (so an objective, a signal handler or another thread made before the
    /// tuner can set it).
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    /// Runs the search and returns the best config, or `NoValidConfig` when nothing valid was found.
    pub fn tune(&mut self) -> Result<Config, TuneError> {
        let mut strategy = self.strategy.take().unwrap_or_else(|| StrategyKind::default().build());
        let result = self.run(&mut *strategy);
        self.strategy = Some(strategy);
        result
    }

    fn run(&mut self, strategy: &mut (dyn Strategy + 'o)) -> Result<Config, TuneError> {
        let started = Instant::now();
        let mut rng = Rng::seed_from_u64(self.seed);
        let mut seen: HashSet<Point> = self.history.iter().map(|t| t.point.clone()).collect();
        let budget = self.max_evaluations;
        // The caller's reporter is taken out for the run (the loop borrows the tuner) and put back after.
        let mut custom = self.progress.take();
        let mut verbose = self.verbose.then(Verbose::stdout);
        let mut reporters = Tee(
            verbose.as_mut().map(|v| v as &mut dyn Progress),
            custom.as_deref_mut().map(|p| p as &mut dyn Progress),
        );
        reporters.started(budget);
        self.interrupted = false;
        let mut done = 0usize;
        while done < budget {
            if self.stopping() {
                self.interrupted = true;
                break;
            }
            let want = if self.objective.batched() {
                strategy.batch_size(self.population_size)
            } else {
                strategy.sequential_batch_size(self.population_size)
            };
            let want = want.max(1).min(budget - done);
            let queued: Vec<Point> = self.start.iter().filter(|p| !seen.contains(*p)).take(want).cloned().collect();
            let proposed = if queued.is_empty() {
                strategy.propose(&mut self.context(&seen, &mut rng, budget - done), want)
            } else {
                queued
            };
            let mut batch: Vec<Point> = Vec::with_capacity(want);
            for p in proposed {
                if batch.len() < want && self.space.is_valid(&p) && !seen.contains(&p) && !batch.contains(&p) {
                    batch.push(p);
                }
            }
            self.top_up(&mut batch, want, &seen, &mut rng);
            if batch.is_empty() {
                break; // the space is exhausted
            }
            let hints: Vec<Config> = strategy
                .likely_next()
                .into_iter()
                .filter(|p| self.space.is_valid(p) && !seen.contains(p) && !batch.contains(p))
                .take(PREFETCH)
                .map(|p| self.space.config(&p))
                .collect();
            if !hints.is_empty() {
                self.objective.prefetch(&hints);
            }
            let first = self.history.len();
            self.evaluate(&batch, done, budget, &mut reporters);
            done += self.history.len() - first;
            for t in &self.history[first..] {
                seen.insert(t.point.clone());
            }
            strategy.observe(&mut self.context(&seen, &mut rng, budget - done), &self.history[first..]);
        }
        self.wall += started.elapsed();
        reporters.finished(&Summary {
            history: &self.history,
            best: self.best,
            strategy: strategy.name(),
            strategy_line: strategy.summary(),
            wall: self.wall,
            interrupted: self.interrupted,
        });
        drop(reporters);
        self.progress = custom;
        match self.best_config() {
            Some(c) => Ok(c.clone()),
            None => Err(TuneError::NoValidConfig {
                evaluations: self.history.len(),
                first_failure: self.history.iter().find_map(|t| t.failure.clone()),
            }),
        }
    }

    /// What a strategy sees: the space, the history so far, the seeded generator, the budget left.
    fn context<'a>(&'a self, seen: &'a HashSet<Point>, rng: &'a mut Rng, remaining: usize) -> Context<'a> {
        Context {
            space: &self.space,
            history: &self.history,
            seen,
            rng,
            population_size: self.population_size,
            temperature: self.temperature,
            remaining,
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Fills `batch` up to `want` with unseen valid random points.
    fn top_up(&self, batch: &mut Vec<Point>, want: usize, seen: &HashSet<Point>, rng: &mut Rng) {
        if batch.len() >= want {
            return;
        }
        if let Some(all) = self.space.valid_points() {
            let unseen: Vec<&Point> = all.iter().filter(|p| !seen.contains(*p) && !batch.contains(*p)).collect();
            let mut picks =
                rand::seq::index::sample(rng, unseen.len(), (want - batch.len()).min(unseen.len())).into_vec();
            picks.sort_unstable();
            batch.extend(picks.into_iter().map(|i| unseen[i].clone()));
            return;
        }
        for _ in 0..(want - batch.len()) * 64 {
            if batch.len() >= want {
                break;
            }
            let p = self.space.random_point(rng);
            if !seen.contains(&p) && !batch.contains(&p) {
                batch.push(p);
            }
        }
    }

    /// Evaluates `batch` and appends its trials to the history.
    fn evaluate(&mut self, batch: &[Point], done: usize, budget: usize, progress: &mut dyn Progress) {
        let configs: Vec<Config> = batch.iter().map(|p| self.space.config(p)).collect();
        if self.objective.batched() {
            let t0 = Instant::now();
            let outcomes =
                catch_unwind(AssertUnwindSafe(|| self.objective.evaluate_batch(&configs))).unwrap_or_else(|panic| {
                    vec![Outcome::Invalid(format!("objective panicked: {}", panic_message(&panic))); configs.len()]
                });
            let share = t0.elapsed() / configs.len().max(1) as u32;
            for (i, (p, c)) in batch.iter().zip(configs).enumerate() {
                let o = outcomes
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| Outcome::Invalid("objective returned too few outcomes".into()));
                self.record(p.clone(), c, o, share, done + i + 1, budget, progress);
            }
        } else {
            for (i, (p, c)) in batch.iter().zip(configs).enumerate() {
                if i > 0 && self.stopping() {
                    break;
                }
                let t0 = Instant::now();
                let o = catch_unwind(AssertUnwindSafe(|| self.objective.evaluate(&c)))
                    .unwrap_or_else(|panic| Outcome::Invalid(format!("objective panicked: {}", panic_message(&panic))));
                let elapsed = t0.elapsed();
                self.record(p.clone(), c, o, elapsed, done + i + 1, budget, progress);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        point: Point,
        config: Config,
        outcome: Outcome,
        elapsed: Duration,
        index: usize,
        budget: usize,
        progress: &mut dyn Progress,
    ) {
        // An objective's `Score` goes through the seed's rule too: 0, ±inf and NaN are invalid.
        let outcome = match outcome {
            Outcome::Score(s) => Outcome::from_score(s),
            o => o,
        };
        let trial = match outcome {
            Outcome::Score(s) => Trial { point, config, score: Some(s), failure: None, elapsed },
            Outcome::Invalid(reason) => Trial { point, config, score: None, failure: Some(reason), elapsed },
        };
        if let Some(s) = trial.score {
            if self.best_score().map_or(true, |b| s > b) {
                self.best = Some(self.history.len());
            }
        }
        self.history.push(trial);
        let best = self.best_score();
        progress.evaluated(index, budget, self.history.last().expect("just pushed"), best);
    }

    pub fn best_config(&self) -> Option<&Config> {
        self.best.map(|i| &self.history[i].config)
    }
    pub fn best_score(&self) -> Option<f64> {
        self.best.and_then(|i| self.history[i].score)
    }
    /// The 1-based evaluation at which the best config was found.
    pub fn best_found_at(&self) -> Option<usize> {
        self.best.map(|i| i + 1)
    }
    pub fn evaluation_count(&self) -> usize {
        self.history.len()
    }
    pub fn history(&self) -> &[Trial] {
        &self.history
    }
    pub fn space(&self) -> &Space {
        &self.space
    }
    /// Whether the last `tune()` was stopped early by the stop flag.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }
    /// Wall time spent in `tune()`.
    pub fn wall_time(&self) -> Duration {
        self.wall
    }
    /// The strategy's own figures (LLM tokens and cost, fallback…).
    pub fn strategy_report(&self) -> serde_json::Map<String, serde_json::Value> {
        let Some(strategy) = &self.strategy else { return serde_json::Map::new() };
        let mut m = strategy.report();
        m.insert("strategy".into(), strategy.name().into());
        m
    }
}

/// Two optional reporters told the same things: the verbose lines and the caller's own.
struct Tee<'a>(Option<&'a mut dyn Progress>, Option<&'a mut dyn Progress>);

impl Progress for Tee<'_> {
    fn started(&mut self, budget: usize) {
        self.0.iter_mut().chain(self.1.iter_mut()).for_each(|p| p.started(budget));
    }
    fn evaluated(&mut self, index: usize, budget: usize, trial: &Trial, best: Option<f64>) {
        self.0.iter_mut().chain(self.1.iter_mut()).for_each(|p| p.evaluated(index, budget, trial, best));
    }
    fn finished(&mut self, summary: &Summary<'_>) {
        self.0.iter_mut().chain(self.1.iter_mut()).for_each(|p| p.finished(summary));
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
