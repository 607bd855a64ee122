//! Compiling the configs a strategy expects to ask for next, while the current ones are measured.
//!
//! A strategy that picks one config per model round (the surrogate, by default) leaves the host's other
//! cores idle: NVRTC compiles one config, the worker measures it, the model picks the next. But the
//! strategy already knows its runners-up ([`crate::Strategy::likely_next`]), and the tuner hands them to
//! the objective ([`crate::Objective::prefetch`]) before it evaluates the pick. [`CompileCache`] compiles
//! them on a background thread (child processes, as a batch compiles, on the cores the batch leaves
//! free: `CudaBench::compile`) and keeps the cubins; when the strategy does ask for one of them, its
//! compile is already done or under way.
//!
//! One background compile at a time: a prefetch while one is running is dropped rather than queued,
//! so the compile processes never outnumber the cores and a stale guess never delays a real request.
//! A request for a config that the running compile holds waits for it (it would take as long to start
//! again); any other config compiles at once, beside it.

use std::collections::HashMap;
use std::thread::JoinHandle;

/// A config's `-D` defines: what a compile is keyed by.
pub type Defines = Vec<String>;

/// Compile results by defines, and the background compile filling them. `R` is a compile result
/// (`Result<Compiled, CudaError>` in the bench); compiles are functions from defines to results, in order.
pub struct CompileCache<R> {
    ready: HashMap<Defines, R>,
    running: Option<(Vec<Defines>, JoinHandle<Vec<R>>)>,
    /// Configs asked for and found compiled or compiling (for reports).
    pub hits: usize,
    /// Configs asked for and compiled on demand.
    pub misses: usize,
}

impl<R: Send + 'static> CompileCache<R> {
    pub fn new() -> CompileCache<R> {
        CompileCache { ready: HashMap::new(), running: None, hits: 0, misses: 0 }
    }

    /// Starts compiling `defines` (those not compiled or compiling already) in the background with
    /// `compile`, unless a background compile is still running.
    pub fn prefetch<F>(&mut self, compile: F, defines: Vec<Defines>)
    where
        F: FnOnce(&[Defines]) -> Vec<R> + Send + 'static,
    {
        self.collect(false);
        if self.running.is_some() {
            return;
        }
        let mut todo: Vec<Defines> = Vec::new();
        for d in defines {
            if !self.ready.contains_key(&d) && !todo.contains(&d) {
                todo.push(d);
            }
        }
        if todo.is_empty() {
            return;
        }
        let work = todo.clone();
        let handle = std::thread::spawn(move || compile(&work));
        self.running = Some((todo, handle));
    }

    /// The compile results for `defines`, in order: from the cache, from the running compile (waiting
    /// for it when it holds one of them), and the rest compiled now with `compile`.
    pub fn take(&mut self, compile: impl Fn(&[Defines]) -> Vec<R>, defines: &[Defines]) -> Vec<R> {
        self.collect(false);
        let waits = self.running.as_ref().is_some_and(|(work, _)| defines.iter().any(|d| work.contains(d)));
        if waits {
            self.collect(true);
        }
        let mut missing: Vec<Defines> = Vec::new();
        for d in defines.iter().filter(|d| !self.ready.contains_key(*d)) {
            if !missing.contains(d) {
                missing.push(d.clone());
            }
        }
        self.hits += defines.len() - missing.len();
        self.misses += missing.len();
        let results = compile(&missing);
        self.ready.extend(missing.into_iter().zip(results));
        // A config listed twice compiles again (a result need not be cloneable); the tuner never does.
        defines
            .iter()
            .map(|d| match self.ready.remove(d) {
                Some(r) => r,
                None => compile(std::slice::from_ref(d)).pop().expect("one result per config"),
            })
            .collect()
    }

    /// Moves a finished background compile's results into the cache; with `wait`, waits for it.
    fn collect(&mut self, wait: bool) {
        let done = self.running.as_ref().is_some_and(|(_, h)| h.is_finished());
        if !(done || wait) {
            return;
        }
        if let Some((work, handle)) = self.running.take() {
            // A compile thread that panicked compiled nothing: those configs compile on demand.
            if let Ok(results) = handle.join() {
                self.ready.extend(work.into_iter().zip(results));
            }
        }
    }
}

impl<R: Send + 'static> Default for CompileCache<R> {
    fn default() -> Self {
        CompileCache::new()
    }
}

impl<R> Drop for CompileCache<R> {
    /// Waits for a running compile, so that no compile process outlives the benchmark.
    fn drop(&mut self) {
        if let Some((_, handle)) = self.running.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Receiver};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    type Log = Arc<Mutex<Vec<Defines>>>;

    /// A compile that records what it was asked for and answers each define set with its first define.
    fn recorder(log: &Log) -> impl Fn(&[Defines]) -> Vec<String> {
        let log = log.clone();
        move |defs: &[Defines]| {
            log.lock().unwrap().extend(defs.iter().cloned());
            defs.iter().map(|d| d[0].clone()).collect()
        }
    }

    /// The same for the background, held until `gate` opens (or 10 s pass, so a wrong wait fails
    /// the test instead of hanging it).
    fn gated(log: &Log, gate: Receiver<()>) -> impl FnOnce(&[Defines]) -> Vec<String> + Send + 'static {
        let log = log.clone();
        move |defs: &[Defines]| {
            let _ = gate.recv_timeout(Duration::from_secs(10));
            log.lock().unwrap().extend(defs.iter().cloned());
            defs.iter().map(|d| d[0].clone()).collect()
        }
    }

    fn d(s: &str) -> Defines {
        vec![s.to_owned()]
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefetched_configs_are_not_compiled_again_and_the_rest_compile_on_demand() {
        let (background, demand): (Log, Log) = Default::default();
        let mut cache = CompileCache::new();
        let (open, gate) = channel();
        cache.prefetch(gated(&background, gate), vec![d("a"), d("b"), d("a")]);
        // While that runs, another prefetch is dropped, not queued.
        let (_never, gate2) = channel();
        cache.prefetch(gated(&background, gate2), vec![d("c")]);
        open.send(()).unwrap();
        // "b" is in the running compile: taking it waits for it; "x" compiles now.
        assert_eq!(cache.take(recorder(&demand), &[d("x"), d("b")]), strings(&["x", "b"]));
        assert_eq!(*background.lock().unwrap(), vec![d("a"), d("b")], "each config once, and no \"c\"");
        assert_eq!(*demand.lock().unwrap(), vec![d("x")]);
        assert_eq!((cache.hits, cache.misses), (1, 1));
        // "a" stays compiled until asked for, once: asked again, it compiles again.
        assert_eq!(cache.take(recorder(&demand), &[d("a")]), strings(&["a"]));
        assert_eq!(cache.take(recorder(&demand), &[d("a")]), strings(&["a"]));
        assert_eq!(*demand.lock().unwrap(), vec![d("x"), d("a")]);
        assert_eq!((cache.hits, cache.misses), (2, 2));
    }

    #[test]
    fn a_config_not_in_the_running_compile_does_not_wait_for_it() {
        let (background, demand): (Log, Log) = Default::default();
        let mut cache = CompileCache::new();
        let (open, gate) = channel();
        cache.prefetch(gated(&background, gate), vec![d("slow")]);
        assert_eq!(cache.take(recorder(&demand), &[d("y")]), strings(&["y"]));
        assert!(background.lock().unwrap().is_empty(), "the on-demand compile did not wait for the background one");
        open.send(()).unwrap();
        // Dropping the cache waits for the background compile.
        drop(cache);
        assert_eq!(*background.lock().unwrap(), vec![d("slow")]);
    }
}
