//! [`CudaBench`]: the real-GPU [`Objective`], compile in parallel here, measure in worker processes.
//!
//! A batch goes: configs → `-D` defines → NVRTC on every CPU ([`Compiler::compile_all`]) → the cubins
//! that compiled become jobs for the [`Pool`] → each worker measures one config at a time on its GPU.
//! The score the tuner maximises is `1 / median time` (ms⁻¹), as the replay objective scores recorded
//! tables, so a tuner run on a GPU and its replay agree. Every evaluation, valid or not, is kept in
//! [`CudaBench::evaluations`] with its compile time and the worker's numbers, which is what `cargo
//! autotune record` writes into a table.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::compile::{default_threads, Compiled, Compiler};
use super::prefetch::CompileCache;
use super::{select_devices, CudaError};
use crate::worker::protocol::{
    to_hex, BenchOptions, EvalResult, Failure, FailureKind, GpuInfo, InitRequest, Measurement, Request,
};
use crate::worker::{Pool, PoolOptions};
use tuner_search::objective::{Objective, Outcome};
use tuner_spec::config::Config;
use tuner_spec::layout::{defines, Layout};
use tuner_spec::space::Space;
use tuner_spec::spec::KernelSpec;
use tuner_spec::CheckedSpec;

/// How to run the benchmark.
#[derive(Clone, Debug)]
pub struct CudaBenchOptions {
    pub bench: BenchOptions,
    /// Device ordinals, one worker each (issue 7: several GPUs).
    pub devices: Vec<usize>,
    /// The longest one config may take in its worker.
    pub timeout: Duration,
    /// Threads for NVRTC.
    pub compile_threads: usize,
    /// The worker executable; `None` uses this executable (`__worker`, `AUTOTUNE_WORKER=1`).
    pub worker_exe: Option<PathBuf>,
}

impl Default for CudaBenchOptions {
    fn default() -> Self {
        CudaBenchOptions {
            bench: BenchOptions::default(),
            devices: vec![0],
            timeout: Duration::from_secs(10),
            compile_threads: default_threads(),
            worker_exe: None,
        }
    }
}

/// One evaluated config.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub config: Config,
    /// NVRTC time for this config (it ran in parallel with others).
    pub compile_ms: Option<f64>,
    pub result: EvalResult,
    /// The worker slot that measured it, when one did.
    pub slot: Option<usize>,
    /// Wall time of the job as the parent saw it (dispatch to answer).
    pub wall_ms: Option<f64>,
    /// Bytes and flops per launch, from the spec's formulas.
    pub bytes: Option<f64>,
    pub flops: Option<f64>,
}

/// The real-GPU objective for one kernel spec.
pub struct CudaBench {
    spec: KernelSpec,
    space: Space,
    layout: Layout,
    compiler: Compiler,
    pool: Pool,
    compile_threads: usize,
    worker_exe: PathBuf,
    next_id: u64,
    cache: CompileCache<Result<Compiled, CudaError>>,
    /// The configs [`Objective::prefetch`] was last told of, compiled in the background from the next
    /// [`CudaBench::compile`] on.
    hints: Vec<Vec<String>>,
    pub device: GpuInfo,
    pub reference: (Config, Measurement),
    pub evaluations: Vec<Evaluation>,
}

impl CudaBench {
    /// Compiles the reference config, starts the workers (each measures the reference first) and
    /// returns once at least one is ready.
    pub fn new(checked: CheckedSpec, source: &str, opts: CudaBenchOptions) -> Result<CudaBench, CudaError> {
        let layout = checked.layout().clone();
        let space = checked.space().clone();
        let reference = checked.default_config().clone();
        let spec = checked.into_spec();
        let devices = if opts.devices.is_empty() { vec![0] } else { opts.devices.clone() };
        // One model per run: the workers' timings are ranked together.
        let (chosen, _) = select_devices(Some(&devices))?;
        let info = chosen[0].clone();
        let file_name = spec.kernel.rsplit('/').next().unwrap_or(&spec.kernel).to_owned();
        let compiler = Compiler::new(&spec.name, &file_name, source, &info.arch())?;
        let reference_image = compiler.compile_once(&defines(&reference)).map_err(|e| CudaError::Reference {
            kernel: spec.name.clone(),
            config: reference.to_string(),
            reason: e.to_string(),
        })?;
        let init = InitRequest {
            spec: spec.clone(),
            device: devices[0],
            options: opts.bench.clone(),
            reference: reference.iter().map(|(n, v)| (n.to_owned(), v.clone())).collect(),
            reference_image: to_hex(&reference_image.image),
        };
        let exe = match &opts.worker_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| CudaError::Protocol(format!("cannot find this executable to start workers: {e}")))?,
        };
        let init_devices = devices.clone();
        let worker_exe = exe.clone();
        let pool = Pool::new(
            PoolOptions { workers: devices.len(), timeout: opts.timeout, ..PoolOptions::default() },
            move |_| {
                let mut c = Command::new(&exe);
                c.arg(crate::serve::WORKER_ARG);
                c
            },
            move |slot| {
                let mut init = init.clone();
                init.device = init_devices[slot % init_devices.len()];
                serde_json::to_string(&Request::Init(Box::new(init))).expect("requests always serialise")
            },
        );
        let mut pool = pool;
        let (device, measured) = pool.start_all().map_err(|e| match e {
            crate::worker::PoolError::NoWorkers { last } => {
                CudaError::Reference { kernel: spec.name.clone(), config: reference.to_string(), reason: last }
            }
        })?;
        Ok(CudaBench {
            spec,
            space,
            layout,
            compiler,
            pool,
            compile_threads: opts.compile_threads.max(1),
            worker_exe,
            next_id: 0,
            cache: CompileCache::new(),
            hints: Vec::new(),
            device,
            reference: (reference, measured),
            evaluations: Vec::new(),
        })
    }

    pub fn spec(&self) -> &KernelSpec {
        &self.spec
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Compiles (in parallel) and measures `configs`; every config gets an evaluation, in order.
    pub fn evaluate_configs(&mut self, configs: &[Config]) -> Vec<Evaluation> {
        let compiled = self.compile(configs);
        self.evaluate_compiled(configs, compiled)
    }

    /// Compiles `configs` in parallel, taking those compiled ahead ([`Objective::prefetch`]) from the
    /// cache. The hints start compiling in the background first, on the cores this batch leaves free,
    /// so that the compile processes never outnumber the cores; and only beside a batch of at most half
    /// the cores. On the H100 host (16 cores, SGEMM, docs/benchmarks.md) it took a tune of one config
    /// per round from a median 48.2 s to 38.1 s. Beside batches of 10 only about 12 of 100 configs had
    /// been compiled ahead, and the runs did not settle whether it helps there.
    pub fn compile(&mut self, configs: &[Config]) -> Vec<Result<Compiled, CudaError>> {
        let room = self.compile_threads.saturating_sub(configs.len());
        let hints = std::mem::take(&mut self.hints);
        if configs.len() * 2 <= self.compile_threads && !hints.is_empty() {
            let job = self.compile_job();
            self.cache.prefetch(move |defs, tx| job.stream(defs, tx), hints.into_iter().take(room).collect());
        }
        let job = self.compile_job();
        let defs: Vec<Vec<String>> = configs.iter().map(defines).collect();
        // Configs an earlier tune of this process compiled (the same kernel at another size) are not
        // compiled again.
        let known: Vec<Option<Compiled>> = defs.iter().map(|d| self.compiler.remembered(d)).collect();
        let todo: Vec<Vec<String>> =
            defs.iter().zip(&known).filter(|(_, k)| k.is_none()).map(|(d, _)| d.clone()).collect();
        let mut fresh = self.cache.take(|d| job.run_defines(d), &todo).into_iter();
        known
            .into_iter()
            .zip(&defs)
            .map(|(known, d)| match known {
                Some(c) => Ok(c),
                None => {
                    let r = fresh.next().expect("one compile result per config not remembered");
                    if let Ok(c) = &r {
                        self.compiler.remember(d, c);
                    }
                    r
                }
            })
            .collect()
    }

    /// Configs asked for that were compiled ahead by [`Objective::prefetch`], and configs compiled on
    /// demand.
    pub fn prefetch_hits(&self) -> (usize, usize) {
        (self.cache.hits, self.cache.misses)
    }

    /// What compiling a batch needs, detached from `self`, so the next batch can compile on other
    /// threads while this one is measured ([`CompileJob::run`], then [`CudaBench::evaluate_compiled`]).
    pub fn compile_job(&self) -> CompileJob {
        CompileJob { compiler: self.compiler.clone(), exe: self.worker_exe.clone(), procs: self.compile_threads }
    }

    /// Measures configs whose compile results are `compiled` (same order).
    pub fn evaluate_compiled(
        &mut self,
        configs: &[Config],
        compiled: Vec<Result<Compiled, CudaError>>,
    ) -> Vec<Evaluation> {
        let mut out: Vec<Evaluation> = Vec::with_capacity(configs.len());
        let mut jobs = Vec::new();
        let mut job_of = Vec::new();
        for (i, (config, c)) in configs.iter().zip(compiled).enumerate() {
            let launch = self.layout.launch(config).ok();
            let mut e = Evaluation {
                config: config.clone(),
                compile_ms: None,
                result: EvalResult::Failed(Failure { kind: FailureKind::Crashed, message: "not run".into() }),
                slot: None,
                wall_ms: None,
                bytes: launch.as_ref().and_then(|l| l.bytes),
                flops: launch.as_ref().and_then(|l| l.flops),
            };
            match c {
                Ok(c) => {
                    e.compile_ms = Some(c.compile_ms);
                    self.next_id += 1;
                    let req = Request::Eval {
                        id: self.next_id,
                        config: config.iter().map(|(n, v)| (n.to_owned(), v.clone())).collect(),
                        image: to_hex(&c.image),
                    };
                    jobs.push((self.next_id, serde_json::to_string(&req).expect("requests always serialise")));
                    job_of.push(i);
                }
                Err(err) => {
                    let message = match &err {
                        CudaError::Compile { log, .. } => format!("NVRTC: {}", first_error_line(log)),
                        other => other.to_string(),
                    };
                    e.result = EvalResult::Failed(Failure { kind: FailureKind::Compile, message });
                }
            }
            out.push(e);
        }
        match self.pool.run(&jobs) {
            Ok(results) => {
                for (k, (result, info)) in results.into_iter().enumerate() {
                    let e = &mut out[job_of[k]];
                    e.result = result;
                    e.slot = Some(info.slot);
                    e.wall_ms = Some(info.wall.as_secs_f64() * 1e3);
                }
            }
            Err(err) => {
                for &i in &job_of {
                    out[i].result =
                        EvalResult::Failed(Failure { kind: FailureKind::Crashed, message: err.to_string() });
                }
            }
        }
        self.evaluations.extend(out.iter().cloned());
        out
    }

    /// Counters of the worker pool (workers started, timeouts, crashes).
    pub fn pool_stats(&self) -> &crate::worker::pool::PoolStats {
        &self.pool.stats
    }

    /// Compiles `configs` in this process on one thread, or in `procs` > 1 child processes, and returns
    /// the wall time in ms and how many failed to compile (for the speed-up report: a run whose
    /// failures differ between the two is not a fair comparison).
    pub fn time_compile(&self, configs: &[Config], procs: usize) -> (f64, usize) {
        let defs: Vec<Vec<String>> = configs.iter().map(defines).collect();
        let start = Instant::now();
        let results = if procs <= 1 {
            self.compiler.compile_all(&defs, 1)
        } else {
            self.compiler.compile_in_processes(&self.worker_exe, &defs, procs)
        };
        let failed: Vec<&CudaError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        if let Some(e) = failed.first() {
            eprintln!("autotune: {} of {} configs failed to compile; the first: {e}", failed.len(), configs.len());
        }
        (start.elapsed().as_secs_f64() * 1e3, failed.len())
    }
}

/// A batch compile that owns what it needs; see [`CudaBench::compile_job`].
pub struct CompileJob {
    compiler: Compiler,
    exe: PathBuf,
    procs: usize,
}

impl CompileJob {
    pub fn run(&self, configs: &[Config]) -> Vec<Result<Compiled, CudaError>> {
        let defs: Vec<Vec<String>> = configs.iter().map(defines).collect();
        self.run_defines(&defs)
    }

    /// Compiles each set of `-D` defines, in order.
    pub fn run_defines(&self, defs: &[Vec<String>]) -> Vec<Result<Compiled, CudaError>> {
        self.compiler.compile_in_processes(&self.exe, defs, self.procs)
    }

    /// Compiles each set of defines in a child process of its own (all at once), sending each result
    /// to `tx` as soon as its child is done.
    pub fn stream(
        &self,
        defs: Vec<Vec<String>>,
        tx: std::sync::mpsc::Sender<(Vec<String>, Result<Compiled, CudaError>)>,
    ) {
        std::thread::scope(|s| {
            for d in defs {
                let tx = tx.clone();
                s.spawn(move || {
                    let r = self.run_defines(std::slice::from_ref(&d)).pop().expect("one result per config");
                    // The cache may be gone (the run ended): the result is then not needed.
                    let _ = tx.send((d, r));
                });
            }
        });
    }
}

fn first_error_line(log: &str) -> String {
    log.lines().find(|l| l.contains("error")).unwrap_or_else(|| log.lines().next().unwrap_or("")).trim().to_owned()
}

impl Objective for CudaBench {
    fn evaluate(&mut self, config: &Config) -> Outcome {
        self.evaluate_batch(std::slice::from_ref(config)).pop().expect("one outcome per config")
    }

    fn batched(&self) -> bool {
        true
    }

    /// Remembers the configs for the next [`CudaBench::compile`], which starts them in the background.
    fn prefetch(&mut self, configs: &[Config]) {
        self.hints = configs.iter().map(defines).collect();
    }

    fn evaluate_batch(&mut self, configs: &[Config]) -> Vec<Outcome> {
        self.evaluate_configs(configs)
            .into_iter()
            .map(|e| match e.result {
                EvalResult::Ok(m) => Outcome::Score(1.0 / m.time_ms),
                EvalResult::Failed(f) => Outcome::Invalid(f.to_string()),
            })
            .collect()
    }
}
