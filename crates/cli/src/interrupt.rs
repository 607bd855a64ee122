//! Ctrl-C for the commands that search: one stop flag per process, set by the first SIGINT and never
//! cleared, so it stops every run that shares it (each seed of a `bench`, each kernel of a `tune`), and
//! each command reads it to mark what it cut short and to exit with [`INTERRUPTED`]. A second Ctrl-C
//! while the first is honoured ends the process at once, with the same status.
//!
//! The tuner itself installs nothing: Ctrl-C handling is this edge's choice (`tuner_search::Tuner::stop_flag`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The exit status of a run cut short by Ctrl-C, as shells expect (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The process's stop flag, with the Ctrl-C handler installed the first time it is asked for.
pub fn flag() -> Arc<AtomicBool> {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        // Failure means the embedding program owns Ctrl-C; the flag then only stops what it sets.
        let _ = ctrlc::set_handler(move || {
            if set.swap(true, Ordering::SeqCst) {
                std::process::exit(INTERRUPTED);
            }
            eprintln!("interrupted: finishing the evaluation in progress (Ctrl-C again to stop at once)");
        });
        flag
    })
    .clone()
}
