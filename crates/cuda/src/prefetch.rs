//! Compiling the configs a strategy expects to ask for next, while the current ones are measured.
//!
//! A strategy that picks one config per model round (the surrogate, by default) leaves the host's other
//! cores idle: NVRTC compiles one config, the worker measures it, the model picks the next. But the
//! strategy already knows its runners-up ([`tuner_search::Strategy::likely_next`]), and the tuner hands them to
//! the objective ([`tuner_search::Objective::prefetch`]) before it evaluates the pick. [`CompileCache`] compiles
//! them on a background thread (child processes, as a batch compiles, on the cores the batch leaves
//! free: `CudaBench::compile`) and keeps the cubins; when the strategy does ask for one of them, its
//! compile is already done or under way.
//!
//! One background compile at a time: a prefetch while one is running is dropped rather than queued,
//! so the compile processes never outnumber the cores and a stale guess never delays a real request.
//! Its results arrive config by config (one child process each), so a request for a config that it
//! holds waits for that config only, never for the slowest of the batch; any other config compiles at
//! once, beside it.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

/// A config's `-D` defines: what a compile is keyed by.
pub type Defines = Vec<String>;

/// A background compile under way: the configs still to arrive, and where they arrive.
struct Running<R> {
    pending: Vec<Defines>,
    results: Receiver<(Defines, R)>,
    thread: JoinHandle<()>,
}

/// Compile results by defines, and the background compile filling them. `R` is a compile result
/// (`Result<Compiled, CudaError>` in the bench).
pub struct CompileCache<R> {
    ready: HashMap<Defines, R>,
    running: Option<Running<R>>,
    /// Configs asked for and found compiled or compiling (for reports).
    pub hits: usize,
    /// Configs asked for and compiled on demand.
    pub misses: usize,
}

impl<R: Send + 'static> CompileCache<R> {
    pub fn new() -> CompileCache<R> {
        CompileCache { ready: HashMap::new(), running: None, hits: 0, misses: 0 }
    }

    /// Starts compiling `defines` (those not compiled already) in the background, unless a background
    /// compile is still running. `compile` gets them and sends each result as soon as it has it.
    pub fn prefetch<F>(&mut self, compile: F, defines: Vec<Defines>)
    where
        F: FnOnce(Vec<Defines>, Sender<(Defines, R)>) + Send + 'static,
    {
        self.collect();
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
        let (tx, results) = channel();
        let work = todo.clone();
        let thread = std::thread::spawn(move || compile(work, tx));
        self.running = Some(Running { pending: todo, results, thread });
    }

    /// The compile results for `defines`, in order: from the cache, from the running compile (waiting
    /// for those of them it holds), and the rest compiled now with `compile` (defines in, results out,
    /// in order).
    pub fn take(&mut self, compile: impl Fn(&[Defines]) -> Vec<R>, defines: &[Defines]) -> Vec<R> {
        self.collect();
        let mut missing: Vec<Defines> = Vec::new();
        let mut awaited: Vec<Defines> = Vec::new();
        for d in defines.iter().filter(|d| !self.ready.contains_key(*d)) {
            let running = self.running.as_ref().is_some_and(|r| r.pending.contains(d));
            let list = if running { &mut awaited } else { &mut missing };
            if !list.contains(d) {
                list.push(d.clone());
            }
        }
        self.hits += defines.len() - missing.len();
        self.misses += missing.len();
        // What the running compile does not hold compiles now, beside it; then its own arrive.
        let results = compile(&missing);
        self.ready.extend(missing.into_iter().zip(results));
        self.wait_for(&awaited);
        // A config listed twice, or lost by a background compile that died, compiles again here.
        defines
            .iter()
            .map(|d| match self.ready.remove(d) {
                Some(r) => r,
                None => {
                    self.hits -= 1;
                    self.misses += 1;
                    compile(std::slice::from_ref(d)).pop().expect("one result per config")
                }
            })
            .collect()
    }

    /// Moves the results that have arrived into the cache, and ends a background compile that is done.
    fn collect(&mut self) {
        let Some(running) = &mut self.running else { return };
        while let Ok((d, r)) = running.results.try_recv() {
            running.pending.retain(|p| *p != d);
            self.ready.insert(d, r);
        }
        self.finish_if_done();
    }

    /// Waits until every config of `wanted` the running compile holds has arrived (or it has ended).
    fn wait_for(&mut self, wanted: &[Defines]) {
        while let Some(running) = &mut self.running {
            if !wanted.iter().any(|w| running.pending.contains(w)) {
                break;
            }
            match running.results.recv() {
                Ok((d, r)) => {
                    running.pending.retain(|p| *p != d);
                    self.ready.insert(d, r);
                }
                // The compile ended without sending them: they compile on demand.
                Err(_) => running.pending.clear(),
            }
            self.finish_if_done();
        }
    }

    fn finish_if_done(&mut self) {
        if self.running.as_ref().is_some_and(|r| r.pending.is_empty()) {
            if let Some(r) = self.running.take() {
                // Every result has arrived; a compile thread that panicked has nothing left to give.
                let _ = r.thread.join();
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
        if let Some(r) = self.running.take() {
            let _ = r.thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// The same in the background, one config at a time, each held until `gate` lets one through (or 10 s
    /// pass, so that a wrong wait fails the test instead of hanging it).
    fn gated(log: &Log, gate: Receiver<()>) -> impl FnOnce(Vec<Defines>, Sender<(Defines, String)>) + Send + 'static {
        let log = log.clone();
        move |defs: Vec<Defines>, tx: Sender<(Defines, String)>| {
            for d in defs {
                let _ = gate.recv_timeout(Duration::from_secs(10));
                log.lock().unwrap().push(d.clone());
                let _ = tx.send((d.clone(), d[0].clone()));
            }
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
    fn a_request_waits_for_its_own_configs_only() {
        let (background, demand): (Log, Log) = Default::default();
        let mut cache = CompileCache::new();
        let (open, gate) = channel();
        cache.prefetch(gated(&background, gate), vec![d("first"), d("second")]);
        // Not in the running compile: compiled at once, without waiting for it.
        assert_eq!(cache.take(recorder(&demand), &[d("y")]), strings(&["y"]));
        assert!(background.lock().unwrap().is_empty(), "the on-demand compile did not wait");
        // The first of the running compile arrives on its own; the second is still held.
        open.send(()).unwrap();
        assert_eq!(cache.take(recorder(&demand), &[d("first")]), strings(&["first"]));
        assert_eq!(*background.lock().unwrap(), vec![d("first")]);
        assert_eq!(*demand.lock().unwrap(), vec![d("y")], "\"first\" came from the background");
        open.send(()).unwrap();
        // Dropping the cache waits for the background compile.
        drop(cache);
        assert_eq!(*background.lock().unwrap(), vec![d("first"), d("second")]);
    }

    #[test]
    fn configs_a_dead_background_compile_never_sent_compile_on_demand() {
        let (background, demand): (Log, Log) = Default::default();
        let mut cache: CompileCache<String> = CompileCache::new();
        cache.prefetch(
            |_defs: Vec<Defines>, _tx: Sender<(Defines, String)>| panic!("the compiler crashed"),
            vec![d("z")],
        );
        assert_eq!(cache.take(recorder(&demand), &[d("z")]), strings(&["z"]));
        assert_eq!(*demand.lock().unwrap(), vec![d("z")]);
        assert!(background.lock().unwrap().is_empty());
        assert_eq!((cache.hits, cache.misses), (0, 1));
    }
}
