//! The tuner: runs a strategy against an objective within a budget and keeps the history.
//!
//! The loop is: the strategy proposes a batch; every proposal is validated against the space and
//! deduplicated against the history (a short batch is topped up with unseen random points, so no strategy
//! can stall the run); the objective scores the batch; each result — score or failure reason — is
//! appended to the history, printed when verbose, and shown to the strategy. The budget counts real
//! evaluations only, and a budget larger than the space ends when the space is exhausted.
//!
//! A config that fails never ends the run: 0.0, ±inf and NaN scores, a panic inside the objective and an
//! objective's own `Invalid` outcome are all recorded with their reason. Ctrl-C ends the search after the
//! evaluation in progress, and `tune()` returns the best config found so far with the history intact.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use rand::SeedableRng;

use crate::config::Config;
use crate::objective::{Objective, Outcome};
use crate::space::{ConfigError, Point, Space};
use crate::strategy::{Context, Rng, Strategy, StrategyKind};

/// The most configs the tuner passes to [`Objective::prefetch`] per batch: one per core of a 16-core host.
pub const PREFETCH: usize = 16;

/// One evaluation, in the order it happened.
#[derive(Clone, Debug)]
pub struct Trial {
    pub point: Point,
    pub config: Config,
    /// The score, when the config was valid.
    pub score: Option<f64>,
    /// Why the config was invalid, when it was.
    pub failure: Option<String>,
    /// Wall time the objective spent on this config (a batch's time is shared evenly).
    pub elapsed: Duration,
}

/// Why tuning produced no config.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("no valid config found in {evaluations} evaluations{}", first_failure.as_ref().map(|f| format!(" (first failure: {f})")).unwrap_or_default())]
    NoValidConfig { evaluations: usize, first_failure: Option<String> },
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

/// Installs (once per process) a Ctrl-C handler that asks running tuners to stop.
fn watch_interrupts() {
    HANDLER.call_once(|| {
        // Failure means the application installed its own handler; then it owns Ctrl-C and can stop a
        // run through `Tuner::stop_handle`.
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C while the first is being honoured: leave at once.
                std::process::exit(130);
            }
        });
    });
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
    progress: Option<bool>,
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
    /// strategy is [`StrategyKind::default`] (the one that measured best).
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
    /// Prints `Evaluation i/N: config=…, score=…` per evaluation and a summary at the end.
    pub fn verbose(mut self, v: bool) -> Self {
        self.verbose = v;
        self
    }
    /// Forces the progress bar on or off (default: on when not verbose and stderr is a terminal).
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = Some(show);
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

    /// A handle that stops the run after the evaluation in progress when set (as Ctrl-C does).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Uses `flag` as the stop handle (so an objective or another thread made before the tuner can set it).
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
        watch_interrupts();
        INTERRUPTED.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let mut rng = Rng::seed_from_u64(self.seed);
        let mut seen: HashSet<Point> = self.history.iter().map(|t| t.point.clone()).collect();
        let budget = self.max_evaluations;
        let show_bar = self.progress.unwrap_or(!self.verbose && std::io::stderr().is_terminal());
        let bar = if show_bar {
            let bar = indicatif::ProgressBar::new(budget as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} evaluations, best {msg} [{elapsed}]")
                    .expect("the template is valid"),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
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
            self.evaluate(&batch, done, budget, &bar);
            done += self.history.len() - first;
            for t in &self.history[first..] {
                seen.insert(t.point.clone());
            }
            strategy.observe(&mut self.context(&seen, &mut rng, budget - done), &self.history[first..]);
        }
        bar.finish_and_clear();
        self.wall += started.elapsed();
        if self.verbose {
            self.print_summary(strategy);
        }
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
        INTERRUPTED.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst)
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
    fn evaluate(&mut self, batch: &[Point], done: usize, budget: usize, bar: &indicatif::ProgressBar) {
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
                self.record(p.clone(), c, o, share, done + i + 1, budget, bar);
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
                self.record(p.clone(), c, o, elapsed, done + i + 1, budget, bar);
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
        bar: &indicatif::ProgressBar,
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
        if self.verbose {
            match (&trial.score, &trial.failure) {
                (Some(s), _) => println!("Evaluation {index}/{budget}: config={}, score={s:.2}", trial.config),
                (None, Some(f)) => {
                    println!("Evaluation {index}/{budget}: config={}, score=invalid ({f})", trial.config)
                }
                (None, None) => unreachable!("a trial has a score or a failure"),
            }
        }
        if let Some(s) = trial.score {
            if self.best_score().map_or(true, |b| s > b) {
                self.best = Some(self.history.len());
            }
        }
        self.history.push(trial);
        bar.inc(1);
        if let Some(b) = self.best_score() {
            bar.set_message(format!("{b:.4}"));
        }
    }

    fn print_summary(&self, strategy: &dyn Strategy) {
        let invalid = self.history.iter().filter(|t| t.score.is_none()).count();
        println!();
        match self.best {
            Some(i) => {
                let t = &self.history[i];
                println!(
                    "Best config: {} with score {:.4} (evaluation {} of {}; {} invalid; strategy {}; {:.1}s)",
                    t.config,
                    t.score.expect("the best trial is valid"),
                    i + 1,
                    self.history.len(),
                    invalid,
                    strategy.name(),
                    self.wall.as_secs_f64()
                );
            }
            None => println!(
                "No valid config in {} evaluations ({} invalid; strategy {})",
                self.history.len(),
                invalid,
                strategy.name()
            ),
        }
        if let Some(line) = strategy.summary() {
            println!("{line}");
        }
        if self.interrupted {
            println!("Stopped early by interrupt after {} evaluations.", self.history.len());
        }
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
    /// Whether the last `tune()` was stopped early by Ctrl-C or the stop handle.
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

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
