//! `cargo autotune record`: measure every config of a kernel's space (or a random sample) on this GPU
//! and write a Kernel Tuner cache-format table.
//!
//! `--spec FILE` is a Rust source file holding `#[autotune(...)]` launchers, found with
//! [`find_specs`] as the build script finds them; `--kernel NAME` picks one when the file has several.
//! The kernel source path in the attribute is relative to the crate root, the nearest directory above
//! `FILE` with a `Cargo.toml`.
//!
//! Each table record holds the parameter values and `time` (median ms) or `__error__` (Kernel Tuner's
//! error class), plus: `compile_time` (NVRTC ms), `benchmark_time` (the worker's ms for the whole
//! evaluation: load, checked launch, warm-up, timed launches), `load_time`, `times_min`/`times_max` and
//! `runs` (the spread), `max_abs_err` (against the reference), `registers`, `local_bytes`, `GB/s` and
//! `TFLOP/s` when the spec has formulas, `worker`, and for failures `failure` (the kind) and `message`.
//!
//! Beside the table, `FILE.meta.json` holds the device fingerprint, the command, the reference config
//! and a summary; the same summary is printed to stdout as one JSON object with `"type": "summary"`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;

use tuner_spec::spec::{find_specs, KernelSpec};

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// A Rust source file with `#[autotune(...)]` launchers.
    #[arg(long)]
    pub spec: PathBuf,
    /// The launcher to record (needed when the file has several).
    #[arg(long)]
    pub kernel: Option<String>,
    /// Where to write the table (Kernel Tuner cache-file format).
    #[arg(long)]
    pub out: PathBuf,
    /// Measure a random sample of N valid configs (the reference config always included).
    #[arg(long)]
    pub sample: Option<usize>,
    /// Seed of the sample.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds one config may run in its worker before the worker is killed and the config recorded as
    /// a timeout.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// CUDA devices to measure on, one worker each (comma-separated ordinals).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub devices: Vec<usize>,
    /// Configs per batch: compiled in parallel, then measured.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// NVRTC threads (default: every CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also time compiling the first N configs on one thread and on all threads, and report the
    /// speed-up.
    #[arg(long, default_value_t = 0)]
    pub compile_speedup: usize,
    /// Timed launches per config, at least.
    #[arg(long, default_value_t = 7)]
    pub min_runs: usize,
    /// Only compile the configs with NVRTC (no GPU needed) and report failures and compile times.
    #[arg(long)]
    pub compile_only: bool,
    /// The architecture for `--compile-only` (default: the GPU's).
    #[arg(long, value_name = "sm_XY")]
    pub arch: Option<String>,
    /// Override a problem size of the spec (`--size m=2048`, repeatable).
    #[arg(long = "size", value_name = "NAME=VALUE")]
    pub sizes: Vec<String>,
    /// Measure only the `--top` fastest valid configs of this recorded table (e.g. to re-measure the
    /// best configs of a table at another problem size).
    #[arg(long, requires = "top")]
    pub from: Option<PathBuf>,
    /// How many configs `--from` takes.
    #[arg(long, requires = "from")]
    pub top: Option<usize>,
}

/// Applies `--size NAME=VALUE` overrides to a spec.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub fn override_sizes(spec: &mut KernelSpec, sizes: &[String]) -> anyhow::Result<()> {
    for s in sizes {
        let (name, value) = s.split_once('=').with_context(|| format!("--size `{s}`: expected NAME=VALUE"))?;
        let value: i64 = value.trim().parse().with_context(|| format!("--size `{s}`: the value is not an integer"))?;
        let known: Vec<String> = spec.bench.sizes.iter().map(|(n, _)| n.clone()).collect();
        let slot = spec.bench.sizes.iter_mut().find(|(n, _)| n == name.trim()).with_context(|| {
            format!("--size `{s}`: `{}` has no size `{name}` (sizes: {})", spec.name, known.join(", "))
        })?;
        slot.1 = value;
    }
    spec.check().with_context(|| format!("kernel `{}` with the overridden sizes", spec.name))?;
    Ok(())
}

/// Reads `path` and returns the spec named `kernel` (or the only one), with the crate root.
pub fn load_spec(path: &Path, kernel: Option<&str>) -> anyhow::Result<(KernelSpec, PathBuf)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let found = find_specs(&text).with_context(|| format!("{} is not valid Rust", path.display()))?;
    let mut specs = Vec::new();
    for r in found {
        match r {
            Ok(s) => specs.push(s),
            Err(e) => bail!("{}: invalid #[autotune] attribute: {e}", path.display()),
        }
    }
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let spec = match kernel {
        Some(k) => specs
            .into_iter()
            .find(|s| s.name == k)
            .with_context(|| format!("no #[autotune] fn `{k}` in {} (found: {})", path.display(), names.join(", ")))?,
        None if specs.len() == 1 => specs.remove(0),
        None if specs.is_empty() => bail!("no #[autotune] fn in {}", path.display()),
        None => bail!("{} has several #[autotune] fns ({}); pick one with --kernel", path.display(), names.join(", ")),
    };
    let abs = path.canonicalize().with_context(|| format!("cannot resolve {}", path.display()))?;
    let root = abs
        .ancestors()
        .skip(1)
        .find(|d| d.join("Cargo.toml").is_file())
        .with_context(|| {
            format!("no Cargo.toml above {}: the kernel path is relative to the crate root", path.display())
        })?
        .to_path_buf();
    Ok((spec, root))
}

#[cfg(not(feature = "cuda"))]
pub fn run(args: RecordArgs) -> anyhow::Result<i32> {
    let (spec, _) = load_spec(&args.spec, args.kernel.as_deref())?;
    bail!(
        "cannot record `{}`: this cargo-autotune was built without the `cuda` feature; rebuild with \
         `cargo install --path tuner-runtime --features cuda`",
        spec.name
    )
}

#[cfg(feature = "cuda")]
pub fn run(args: RecordArgs) -> anyhow::Result<i32> {
    imp::run(args)
}

#[cfg(feature = "cuda")]
mod imp {
    use std::time::{Duration, Instant};

    use anyhow::Context as _;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use serde_json::{json, Map, Value as Json};

    use super::{load_spec, RecordArgs};
    use tuner_cuda::worker::protocol::{BenchOptions, EvalResult};
    use tuner_cuda::{CudaBench, CudaBenchOptions, Evaluation};
    use tuner_search::table::{Record, Table};
    use tuner_spec::config::Config;

    pub fn run(args: RecordArgs) -> anyhow::Result<i32> {
        let (mut spec, root) = load_spec(&args.spec, args.kernel.as_deref())?;
        super::override_sizes(&mut spec, &args.sizes)?;
        let source_path = root.join(&spec.kernel);
        let source = std::fs::read_to_string(&source_path)
            .with_context(|| format!("cannot read kernel source {}", source_path.display()))?;
        let checked = spec.check().with_context(|| format!("kernel `{}`", spec.name))?;
        let space = checked.space().clone();
        let reference = checked.default_config().clone();
        let all = space
            .valid_points()
            .with_context(|| format!("the space of `{}` is too large to enumerate; use a smaller space", spec.name))?;
        let mut configs: Vec<Config> = all.iter().map(|p| space.config(p)).collect();
        let valid_in_space = configs.len();
        if let (Some(from), Some(top)) = (&args.from, args.top) {
            let table = Table::load(from)?;
            let mut timed: Vec<_> = table.records.iter().filter_map(|r| r.time.map(|t| (t, r))).collect();
            timed.sort_by(|a, b| a.0.total_cmp(&b.0));
            let names: Vec<&str> = table.params.iter().map(|(n, _)| n.as_str()).collect();
            configs = Vec::new();
            for (_, r) in timed.into_iter().take(top) {
                let pairs = names.iter().map(|n| n.to_string()).zip(r.values.iter().cloned());
                let point = space.point_of_pairs(pairs).with_context(|| format!("a config of {}", from.display()))?;
                configs.push(space.config(&point));
            }
            if !configs.contains(&reference) {
                configs.insert(0, reference.clone());
            }
        } else if let Some(n) = args.sample {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
            configs.shuffle(&mut rng);
            configs.truncate(n);
            if !configs.contains(&reference) {
                configs.insert(0, reference.clone());
            }
        }
        if args.compile_only {
            return compile_only(&spec, &source, &configs, &args);
        }
        let opts = CudaBenchOptions {
            bench: BenchOptions { min_runs: args.min_runs, ..BenchOptions::default() },
            devices: args.devices.clone(),
            timeout: Duration::from_secs_f64(args.timeout),
            compile_threads: args.threads.unwrap_or_else(tuner_cuda::compile::default_threads),
            worker_exe: None,
        };
        let started = Instant::now();
        eprintln!(
            "record: {}: {} configs ({} valid in the space), reference {}",
            spec.name,
            configs.len(),
            valid_in_space,
            reference
        );
        let mut bench = CudaBench::new(checked.clone(), &source, opts.clone())?;
        eprintln!(
            "record: {} ({} SMs, sm_{}{}, driver {}, NVRTC {}); reference {:.4} ms",
            bench.device.name,
            bench.device.sm_count,
            bench.device.compute_capability.0,
            bench.device.compute_capability.1,
            bench.device.driver,
            bench.device.nvrtc,
            bench.reference.1.time_ms
        );
        let speedup = if args.compile_speedup > 0 {
            // Two distinct samples: NVRTC's output goes through the driver's JIT cache, so compiling the
            // same configs twice would time the second run on cache hits (seen on the H100: 136 ms for
            // eight attention configs that had just taken 12 s). The samples come from the end of the
            // list, compiled again (as cache hits) only in the last batches.
            let (single, multi) = speedup_samples(&configs, args.compile_speedup);
            let (one, failed_one) = bench.time_compile(&single, 1);
            let (many, failed_many) = bench.time_compile(&multi, opts.compile_threads);
            let sample = multi;
            eprintln!(
                "record: compiling {} configs: {:.0} ms in 1 process, {:.0} ms in {} processes ({:.1}x)",
                sample.len(),
                one,
                many,
                opts.compile_threads,
                one / many
            );
            Some(
                json!({"configs": sample.len(), "one_thread_ms": one, "threads": opts.compile_threads, "all_threads_ms": many,
                        "speedup": one / many, "failed_one_process": failed_one, "failed_processes": failed_many}),
            )
        } else {
            None
        };
        let measure_start = Instant::now();
        let mut best: Option<(f64, Config)> = None;
        let mut done = 0;
        // Batch k + 1 compiles (in child processes) while batch k is measured.
        let chunks: Vec<&[Config]> = configs.chunks(args.batch.max(1)).collect();
        let job = bench.compile_job();
        // Wall time spent compiling batches (each batch in parallel child processes), against the sum of
        // the per-config NVRTC times: their ratio is the parallel compile speed-up on real batches.
        let timed_run = |c: &[Config]| {
            let t = Instant::now();
            let r = job.run(c);
            (r, t.elapsed().as_secs_f64() * 1e3)
        };
        let mut compile_wall_ms = 0.0;
        let mut compiled = chunks.first().map(|c| timed_run(c));
        for (k, chunk) in chunks.iter().enumerate() {
            let (this, wall) = compiled.take().expect("compiled before its turn");
            compile_wall_ms += wall;
            let evals = std::thread::scope(|s| {
                let next = chunks.get(k + 1).map(|c| {
                    let timed_run = &timed_run;
                    s.spawn(move || timed_run(c))
                });
                let evals = bench.evaluate_compiled(chunk, this);
                compiled = next.map(|h| h.join().expect("compiling does not panic"));
                evals
            });
            for e in evals {
                if let EvalResult::Ok(m) = &e.result {
                    if best.as_ref().map_or(true, |(t, _)| m.time_ms < *t) {
                        best = Some((m.time_ms, e.config.clone()));
                    }
                }
            }
            done += chunk.len();
            if let Some((t, c)) = &best {
                eprintln!("record: {done}/{} measured; best {t:.4} ms {c}", configs.len());
            } else {
                eprintln!("record: {done}/{} measured; nothing valid yet", configs.len());
            }
        }
        let measure_s = measure_start.elapsed().as_secs_f64();
        let table = to_table(&bench, &spec);
        table.write(&args.out)?;
        let mut summary = summary(&bench, &args, valid_in_space, measure_s, started.elapsed().as_secs_f64(), speedup);
        let config_ms: f64 = bench.evaluations.iter().filter_map(|e| e.compile_ms).sum();
        summary["batch_compile"] = json!({"sum_config_ms": config_ms, "wall_ms": compile_wall_ms,
            "processes": opts.compile_threads, "speedup": config_ms / compile_wall_ms.max(1e-9)});
        eprintln!(
            "record: batch compile: {:.1} s of NVRTC work in {:.1} s of wall time ({:.1}x)",
            config_ms / 1e3,
            compile_wall_ms / 1e3,
            config_ms / compile_wall_ms.max(1e-9)
        );
        let meta_path = args.out.with_extension("meta.json");
        tuner_search::fsutil::write_atomic(&meta_path, serde_json::to_string_pretty(&summary)?.as_bytes())
            .with_context(|| format!("cannot write {}", meta_path.display()))?;
        println!("{}", serde_json::to_string(&summary)?);
        eprintln!("record: wrote {} and {}", args.out.display(), meta_path.display());
        Ok(0)
    }

    /// `--compile-only`: NVRTC over the configs, no GPU.
    /// Two disjoint samples of up to `n` configs from the end of `configs` (one process, many).
    fn speedup_samples(configs: &[Config], n: usize) -> (Vec<Config>, Vec<Config>) {
        let n = n.min(configs.len() / 2);
        let tail = &configs[configs.len() - 2 * n..];
        (tail[..n].to_vec(), tail[n..].to_vec())
    }

    fn compile_only(
        spec: &tuner_spec::spec::KernelSpec,
        source: &str,
        configs: &[Config],
        args: &RecordArgs,
    ) -> anyhow::Result<i32> {
        let arch = match &args.arch {
            Some(a) => a.clone(),
            None => tuner_cuda::query_device(args.devices.first().copied().unwrap_or(0))?.arch(),
        };
        let file = spec.kernel.rsplit('/').next().unwrap_or(&spec.kernel);
        let compiler = tuner_cuda::Compiler::new(&spec.name, file, source, &arch)?;
        let threads = args.threads.unwrap_or_else(tuner_cuda::compile::default_threads);
        let defs: Vec<Vec<String>> = configs.iter().map(tuner_spec::layout::defines).collect();
        let start = Instant::now();
        let exe = std::env::current_exe().context("cannot find this executable to start compile workers")?;
        let speedup = if args.compile_speedup > 0 {
            let (single, multi) = speedup_samples(configs, args.compile_speedup);
            let defs = |c: &[Config]| c.iter().map(tuner_spec::layout::defines).collect::<Vec<_>>();
            let t = Instant::now();
            let one = compiler.compile_all(&defs(&single), 1);
            let one_ms = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let many = compiler.compile_in_processes(&exe, &defs(&multi), threads);
            let many_ms = t.elapsed().as_secs_f64() * 1e3;
            let failed = one.iter().chain(&many).filter(|r| r.is_err()).count();
            eprintln!(
                "record: compiling {n} configs: {one_ms:.0} ms in 1 process; {n} others: {many_ms:.0} ms in {threads} processes ({:.1}x)",
                one_ms / many_ms,
                n = single.len()
            );
            Some(json!({"configs": single.len(), "one_process_ms": one_ms, "processes": threads,
                        "all_processes_ms": many_ms, "speedup": one_ms / many_ms, "failed": failed}))
        } else {
            None
        };
        let results = compiler.compile_in_processes(&exe, &defs, threads);
        let wall = start.elapsed().as_secs_f64() * 1e3;
        let mut failed = 0;
        let mut ms = Vec::new();
        for (c, r) in configs.iter().zip(&results) {
            match r {
                Ok(c) => ms.push(c.compile_ms),
                Err(e) => {
                    failed += 1;
                    eprintln!("record: {c}: {e}");
                }
            }
        }
        let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
        println!(
            "{}",
            json!({"type": "compile", "kernel": spec.name, "arch": arch, "configs": configs.len(), "failed": failed,
                   "compile_ms_mean": mean, "wall_ms": wall, "threads": threads, "parallel_compile": speedup})
        );
        Ok(if failed == 0 { 0 } else { 1 })
    }

    fn to_table(bench: &CudaBench, spec: &tuner_spec::spec::KernelSpec) -> Table {
        let mut records = Vec::new();
        for e in &bench.evaluations {
            records.push(record(e));
        }
        Table {
            device_name: bench.device.name.clone(),
            kernel_name: spec.name.clone(),
            problem_size: spec.problem_size_json(),
            params: spec.params.clone(),
            objective: "time".into(),
            records,
        }
    }

    fn record(e: &Evaluation) -> Record {
        let mut extra = Map::new();
        if let Some(c) = e.compile_ms {
            extra.insert("compile_time".into(), json!(round(c)));
        }
        if let Some(s) = e.slot {
            extra.insert("worker".into(), json!(s));
        }
        match &e.result {
            EvalResult::Ok(m) => {
                extra.insert("benchmark_time".into(), json!(round(m.eval_ms)));
                extra.insert("load_time".into(), json!(round(m.load_ms)));
                extra.insert("times_min".into(), json!(m.min_ms));
                extra.insert("times_max".into(), json!(m.max_ms));
                extra.insert("runs".into(), json!(m.runs));
                extra.insert("max_abs_err".into(), json!(m.max_abs_err));
                extra.insert("registers".into(), json!(m.registers));
                extra.insert("local_bytes".into(), json!(m.local_bytes));
                if let Some(b) = e.bytes {
                    extra.insert("GB/s".into(), json!(round(b / m.time_ms / 1e6)));
                }
                if let Some(f) = e.flops {
                    extra.insert("TFLOP/s".into(), json!(round(f / m.time_ms / 1e9)));
                }
                Record { values: e.config.values().to_vec(), time: Some(m.time_ms), error: None, extra }
            }
            EvalResult::Failed(f) => {
                extra.insert("failure".into(), json!(f.kind.name()));
                extra.insert("message".into(), json!(f.message.chars().take(400).collect::<String>()));
                Record {
                    values: e.config.values().to_vec(),
                    time: None,
                    error: Some(f.kind.kernel_tuner_class().into()),
                    extra,
                }
            }
        }
    }

    fn round(x: f64) -> f64 {
        (x * 1000.0).round() / 1000.0
    }

    fn summary(
        bench: &CudaBench,
        args: &RecordArgs,
        valid_in_space: usize,
        measure_s: f64,
        total_s: f64,
        speedup: Option<Json>,
    ) -> Json {
        let evals = &bench.evaluations;
        let valid: Vec<(&Evaluation, f64)> = evals
            .iter()
            .filter_map(|e| match &e.result {
                EvalResult::Ok(m) => Some((e, m.time_ms)),
                _ => None,
            })
            .collect();
        let best = valid.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        let worst = valid.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        let mut failures = Map::new();
        for e in evals {
            if let EvalResult::Failed(f) = &e.result {
                let n = failures.entry(f.kind.name()).or_insert(json!(0));
                *n = json!(n.as_u64().unwrap_or(0) + 1);
            }
        }
        let compile: Vec<f64> = evals.iter().filter_map(|e| e.compile_ms).collect();
        let mut sorted = compile.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let stats = bench.pool_stats();
        let reference = &bench.reference;
        json!({
            "type": "summary",
            "kernel": bench.spec().name,
            "entry": bench.spec().entry,
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "device": bench.device,
            "problem_size": bench.spec().problem_size_json(),
            "valid_in_space": valid_in_space,
            "evaluated": evals.len(),
            "valid": valid.len(),
            "failures": failures,
            "reference": {"config": reference.0.to_json(), "time_ms": reference.1.time_ms},
            "best": best.map(|(e, t)| json!({"config": e.config.to_json(), "time_ms": t,
                "GB/s": e.bytes.map(|b| b / t / 1e6), "TFLOP/s": e.flops.map(|f| f / t / 1e9)})),
            "worst_valid": worst.map(|(e, t)| json!({"config": e.config.to_json(), "time_ms": t})),
            "best_worst_ratio": match (best, worst) { (Some(b), Some(w)) => Some(w.1 / b.1), _ => None },
            "speedup_over_reference": best.map(|(_, t)| reference.1.time_ms / t),
            "compile_ms": {"mean": compile.iter().sum::<f64>() / compile.len().max(1) as f64,
                           "median": sorted.get(sorted.len() / 2), "max": sorted.last()},
            "parallel_compile": speedup,
            "seconds_per_evaluation": measure_s / evals.len().max(1) as f64,
            "measure_seconds": measure_s,
            "total_seconds": total_s,
            "workers": {"devices": args.devices, "started": stats.started, "timeouts": stats.timeouts, "crashes": stats.crashes, "replaced": stats.replaced},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernels_src(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/src").join(file)
    }

    #[test]
    fn the_committed_kernel_specs_parse_and_find_their_crate() {
        for (file, min_valid) in [("vector_add.rs", 50), ("sgemm.rs", 2000), ("softmax.rs", 100), ("attention.rs", 20)]
        {
            let (spec, root) = load_spec(&kernels_src(file), None).unwrap();
            assert!(root.join(&spec.kernel).is_file(), "{file}: {} missing", spec.kernel);
            let checked = spec.check().unwrap();
            let valid = checked.space().valid_count().unwrap();
            assert!(valid >= min_valid, "{file}: only {valid} valid configs");
        }
        // A file with two launchers: each is named.
        for name in ["flash_attention_hd64", "flash_attention_hd128"] {
            let (spec, _) = load_spec(&kernels_src("flash_attention.rs"), Some(name)).unwrap();
            assert_eq!(spec.name, name);
            let valid = spec.check().unwrap().space().valid_count().unwrap();
            assert!(valid >= 300, "{name}: only {valid} valid configs");
        }
        let e = load_spec(&kernels_src("flash_attention.rs"), None).unwrap_err();
        assert!(format!("{e:#}").contains("flash_attention_hd64"), "{e:#}");
    }

    #[test]
    fn sizes_can_be_overridden_and_are_rechecked() {
        let (mut spec, _) = load_spec(&kernels_src("sgemm.rs"), Some("sgemm")).unwrap();
        override_sizes(&mut spec, &["m=2048".into(), "n = 2048".into()]).unwrap();
        assert_eq!(spec.bench.sizes[0], ("m".into(), 2048));
        let e = override_sizes(&mut spec, &["q=1".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("sizes: m, n, k"), "{e:#}");
        let e = load_spec(&kernels_src("sgemm.rs"), Some("nope")).unwrap_err();
        assert!(format!("{e:#}").contains("found: sgemm"), "{e:#}");
    }
}

#[cfg(test)]
mod table_tests {
    use std::path::Path;

    use tuner_search::table::Table;

    /// The H100 tables committed under `tables/h100/` read back through the table module (what replay
    /// uses), with the number of valid configs the issue asks for.
    #[test]
    fn the_committed_h100_tables_read_back() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tables/h100");
        for (name, min_valid) in [
            ("vector_add", 50),
            ("sgemm", 2000),
            ("sgemm_4096_top", 10),
            ("softmax", 500),
            ("attention", 200),
            ("planted", 3),
        ] {
            let t = Table::load(dir.join(format!("{name}.json"))).unwrap();
            let valid = t.records.iter().filter(|r| r.time.is_some()).count();
            assert!(valid >= min_valid, "{name}: {valid} valid records");
            assert!(t.device_name.contains("H100"), "{name}: {}", t.device_name);
            assert!(t.records.iter().all(|r| r.time.is_some() || r.extra.contains_key("failure")));
        }
        let planted = Table::load(dir.join("planted.json")).unwrap();
        for kind in ["wrong_output", "timeout", "launch"] {
            let n = planted
                .records
                .iter()
                .filter(|r| r.extra.get("failure").and_then(|f| f.as_str()) == Some(kind))
                .count();
            assert_eq!(n, 3, "{kind}");
        }
    }
}
