//! How a run reports what it does: the [`Progress`] a [`Tuner`](crate::Tuner) tells of each evaluation
//! and of the end of the run. The tuner itself never prints; the edges choose how to show a run.
//!
//! [`Verbose`] is the seed's output (`Evaluation i/N: config=…, score=…` per evaluation, then a summary),
//! which `Tuner::verbose(true)` installs on stdout. The CLI adds a terminal progress bar, and the build
//! script its `cargo::warning` lines; a library user can pass any `Progress` to
//! [`Tuner::progress`](crate::Tuner::progress).

use std::io::Write;
use std::time::Duration;

use crate::trial::Trial;

/// What a run looks like at its end, for [`Progress::finished`].
#[derive(Clone, Debug)]
pub struct Summary<'a> {
    /// Every evaluation, in order.
    pub history: &'a [Trial],
    /// The index into `history` of the best valid trial.
    pub best: Option<usize>,
    /// The strategy's name and its own one-line summary (LLM calls, tokens, cost…), when it has one.
    pub strategy: &'a str,
    pub strategy_line: Option<String>,
    /// Wall time spent in `tune()`.
    pub wall: Duration,
    /// Whether the run stopped early because the stop flag was set.
    pub interrupted: bool,
}

/// Told of each evaluation as it is recorded and of the end of the run.
pub trait Progress {
    /// Called once before the first evaluation, with the budget.
    fn started(&mut self, _budget: usize) {}
    /// Called after each evaluation: `index` is 1-based and `budget` the run's budget; `best` is the
    /// best valid score so far.
    fn evaluated(&mut self, _index: usize, _budget: usize, _trial: &Trial, _best: Option<f64>) {}
    /// Called once at the end of the run.
    fn finished(&mut self, _summary: &Summary<'_>) {}
}

/// Reports nothing.
impl Progress for () {}

/// The seed's verbose output, written to `W` (stdout for `Tuner::verbose(true)`).
pub struct Verbose<W: Write> {
    out: W,
}

impl Verbose<std::io::Stdout> {
    /// The seed's lines on stdout.
    pub fn stdout() -> Self {
        Verbose { out: std::io::stdout() }
    }
}

impl<W: Write> Verbose<W> {
    pub fn to(out: W) -> Self {
        Verbose { out }
    }

    /// The writer back, with what was reported.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The line printed for one evaluation: `Evaluation 3/50: config={'block': 256}, score=512.45`.
pub fn evaluation_line(index: usize, budget: usize, trial: &Trial) -> String {
    match (&trial.score, &trial.failure) {
        (Some(s), _) => format!("Evaluation {index}/{budget}: config={}, score={s:.2}", trial.config),
        (None, f) => format!(
            "Evaluation {index}/{budget}: config={}, score=invalid ({})",
            trial.config,
            f.as_deref().unwrap_or("no reason given")
        ),
    }
}

impl<W: Write> Progress for Verbose<W> {
    // A reporter that cannot write (a closed pipe) must not end the run: errors are ignored.
    fn evaluated(&mut self, index: usize, budget: usize, trial: &Trial, _best: Option<f64>) {
        let _ = writeln!(self.out, "{}", evaluation_line(index, budget, trial));
    }

    fn finished(&mut self, s: &Summary<'_>) {
        let invalid = s.history.iter().filter(|t| t.score.is_none()).count();
        let _ = writeln!(self.out);
        let _ = match s.best {
            Some(i) => {
                let t = &s.history[i];
                writeln!(
                    self.out,
                    "Best config: {} with score {:.4} (evaluation {} of {}; {} invalid; strategy {}; {:.1}s)",
                    t.config,
                    t.score.expect("the best trial is valid"),
                    i + 1,
                    s.history.len(),
                    invalid,
                    s.strategy,
                    s.wall.as_secs_f64()
                )
            }
            None => writeln!(
                self.out,
                "No valid config in {} evaluations ({} invalid; strategy {})",
                s.history.len(),
                invalid,
                s.strategy
            ),
        };
        if let Some(line) = &s.strategy_line {
            let _ = writeln!(self.out, "{line}");
        }
        if s.interrupted {
            let _ = writeln!(self.out, "Stopped early by interrupt after {} evaluations.", s.history.len());
        }
        let _ = self.out.flush();
    }
}
