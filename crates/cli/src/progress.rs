//! The terminal's view of a run: a progress bar on stderr (when it is a terminal and the run is not
//! verbose), reported to by the tuner through [`tuner_search::Progress`].

use std::io::IsTerminal;

use tuner_search::report::{Progress, Summary};
use tuner_search::Trial;

/// An indicatif bar: evaluations done of the budget, and the best score so far.
pub struct Bar(indicatif::ProgressBar);

impl Bar {
    /// A bar when stderr is a terminal and `verbose` is off (the verbose lines would tear it), else none.
    pub fn for_terminal(verbose: bool) -> Option<Bar> {
        (!verbose && std::io::stderr().is_terminal()).then(|| Bar(indicatif::ProgressBar::hidden()))
    }
}

impl Progress for Bar {
    fn started(&mut self, budget: usize) {
        self.0 = indicatif::ProgressBar::new(budget as u64);
        self.0.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} evaluations, best {msg} [{elapsed}]")
                .expect("the template is valid"),
        );
    }

    fn evaluated(&mut self, _index: usize, _budget: usize, _trial: &Trial, best: Option<f64>) {
        self.0.inc(1);
        if let Some(b) = best {
            self.0.set_message(format!("{b:.4}"));
        }
    }

    fn finished(&mut self, _summary: &Summary<'_>) {
        self.0.finish_and_clear();
    }
}
