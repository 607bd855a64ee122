//! What the size buckets and the device fallback buy on a GPU (issue 17, docs/benchmarks.md "Size
//! buckets and device fallback on the H200"). Needs a CUDA GPU; run from the repository root.
//!
//! - `buckets fallback`: for every kernel of this crate at each of its declared sizes, the config this
//!   binary's baked table picks for the running GPU (`<fn>_tuning::TABLE`, the function the launchers'
//!   `KERNEL.plan` calls), where it came from (the GPU's own entry, another GPU's of the same compute
//!   capability, or the default), and its time beside the default's, measured side by side. Built from a
//!   cache holding only the H100 entries, it shows what an H200 runs without entries of its own.
//! - `buckets compare RECORDS [SIZES]`: SGEMM at each size (`m,n,k;…`; default the three tuned sizes
//!   and two between them): the bucketed table's pick, the single-size pick (this GPU's entry at
//!   4096³, what a binary tuned at one size runs everywhere), the best config of the sample recorded at
//!   that size by `cargo autotune record` (`RECORDS/sgemm-MxNxK.json`), and the default, measured side by
//!   side in one benchmark per size.
//!
//! Every time is the tuner's own measurement (`CudaBench`: warm-up, L2 flushed, median of at least 20
//! CUDA-event timings, output checked against the default's). One JSON line per row on stdout, and a
//! Markdown table at the end.

use std::path::{Path, PathBuf};

use autotune_kernels::{attention, sgemm, softmax, vector_add};
use tuner_runtime::__private::Table;
use tuner_runtime::cuda::worker::protocol::BenchOptions;
use tuner_runtime::cuda::{CudaBench, CudaBenchOptions};
use tuner_runtime::{Config, KernelSpec};

type Error = Box<dyn std::error::Error>;

/// A candidate config with a label.
struct Candidate {
    label: String,
    config: Config,
    source: String,
}

fn pick_of<T>(table: &Table<T>, device: &str, cc: (u32, u32), sizes: &[i64]) -> Result<Candidate, Error> {
    let pick = table.choose_for(device, cc, sizes)?;
    let source = match pick.entry {
        None => "default".to_owned(),
        Some((e, how)) => format!("{} at {:?} ({})", e.device, e.sizes, how.as_str()),
    };
    Ok(Candidate { label: "bucketed pick".into(), config: table.config(pick.index), source })
}

/// Measures `candidates` at `spec`'s sizes in one benchmark; returns each one's median time.
fn measure(spec: &KernelSpec, source: &str, candidates: &[Candidate]) -> Result<Vec<Option<f64>>, Error> {
    let checked = spec.check()?;
    let opts = CudaBenchOptions {
        bench: BenchOptions { min_runs: 20, ..BenchOptions::default() },
        ..CudaBenchOptions::default()
    };
    let mut bench = CudaBench::new(checked, source, opts)?;
    let configs: Vec<Config> = candidates.iter().map(|c| c.config.clone()).collect();
    let evals = bench.evaluate_configs(&configs);
    Ok(evals.iter().map(|e| e.result.time_ms()).collect())
}

fn root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if root.exists() {
        root.to_path_buf()
    } else {
        PathBuf::from("kernels")
    }
}

fn main() -> Result<(), Error> {
    if let Some(code) = tuner_runtime::cuda::serve::serve_if_worker_arg() {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let info = tuner_runtime::cuda::query_device(0)?;
    let (device, cc) = (info.name.clone(), info.compute_capability);
    let scan = tuner_runtime::build::scan::scan_crate(&root())?;
    let kernel = |name: &str| scan.kernels.iter().find(|k| k.spec.name == name).ok_or("no such kernel");
    let mut table = vec![
        "| kernel | sizes | config | from | time | default | speed-up |".to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    match args.first().map(String::as_str) {
        Some("fallback") => {
            for name in ["sgemm", "vector_add", "softmax", "attention"] {
                let k = kernel(name)?;
                let source = String::from_utf8_lossy(&k.source).into_owned();
                for point in k.spec.points() {
                    let at = tuner_runtime::spec::point_text(&point);
                    match fallback_row(name, k, &source, &point, &device, cc) {
                        Ok(row) => table.push(row),
                        Err(e) => {
                            eprintln!("{name} at {at}: {e}");
                            table.push(format!("| {name} | {at} | - | error: {e} | - | - | - |"));
                        }
                    }
                }
            }
        }
        Some("compare") => {
            let records = PathBuf::from(args.get(1).ok_or("usage: buckets compare RECORDS [SIZES]")?);
            let sizes = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "1024,1024,1024;2048,2048,2048;4096,4096,4096;8192,1024,4096;16384,256,4096".into());
            let k = kernel("sgemm")?;
            let source = String::from_utf8_lossy(&k.source).into_owned();
            let t = &sgemm::sgemm_tuning::TABLE;
            let single = t
                .entries()
                .iter()
                .find(|e| e.device == device && e.compute_capability == cc && e.sizes == [4096, 4096, 4096])
                .map(|e| t.config(e.config));
            table = vec![
                "| sizes | bucketed pick (from) | bucketed | single-size (4096³) | best of sample | sample size | default | bucketed / best |".into(),
                "|---|---|---|---|---|---|---|---|".into(),
            ];
            for s in sizes.split(';') {
                let v: Vec<i64> = s.split(',').map(|x| x.trim().parse()).collect::<Result<_, _>>()?;
                let point: Vec<(String, i64)> =
                    ["m", "n", "k"].iter().map(|n| n.to_string()).zip(v.iter().copied()).collect();
                let spec = k.spec.at(&point);
                let checked = spec.check()?;
                let mut cands = vec![pick_of(t, &device, cc, &v)?];
                if let Some(c) = &single {
                    cands.push(Candidate {
                        label: "single-size".into(),
                        config: c.clone(),
                        source: "4096³ entry".into(),
                    });
                }
                let file = records.join(format!("sgemm-{}x{}x{}.json", v[0], v[1], v[2]));
                let recorded = tuner_runtime::Table::load(&file)?;
                let sample = recorded.records.iter().filter(|r| r.time.is_some() || r.error.is_some()).count();
                let best = recorded
                    .records
                    .iter()
                    .filter_map(|r| r.time.map(|t| (t, r)))
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .ok_or("no valid config in the sample")?;
                let names: Vec<String> = recorded.params.iter().map(|(n, _)| n.clone()).collect();
                let point_of = checked.space().point_of_pairs(names.into_iter().zip(best.1.values.iter().cloned()))?;
                cands.push(Candidate {
                    label: "best of sample".into(),
                    config: checked.space().config(&point_of),
                    source: format!("{} ({:.4} ms when recorded)", file.display(), best.0),
                });
                cands.push(Candidate {
                    label: "default".into(),
                    config: checked.default_config().clone(),
                    source: "default".into(),
                });
                let times = measure(&spec, &source, &cands)?;
                let time_of = |label: &str| cands.iter().position(|c| c.label == label).and_then(|i| times[i]);
                for (c, time) in cands.iter().zip(&times) {
                    println!(
                        "{}",
                        serde_json::json!({
                            "type": "compare", "sizes": s, "device": device, "label": c.label,
                            "config": c.config.to_json(), "from": c.source, "time_ms": time, "sample": sample,
                        })
                    );
                }
                let ratio = match (time_of("bucketed pick"), time_of("best of sample")) {
                    (Some(p), Some(b)) => format!("{:.3}", p / b),
                    _ => "-".into(),
                };
                table.push(format!(
                    "| {} | `{}` ({}) | {} | {} | {} | {sample} | {} | {ratio} |",
                    tuner_runtime::spec::point_text(&point),
                    cands[0].config,
                    cands[0].source,
                    ms(time_of("bucketed pick")),
                    ms(time_of("single-size")),
                    ms(time_of("best of sample")),
                    ms(time_of("default")),
                ));
            }
        }
        _ => return Err("usage: buckets fallback | buckets compare RECORDS [SIZES]".into()),
    }
    println!("\non {device} (sm_{}{}):\n", cc.0, cc.1);
    for line in table {
        println!("{line}");
    }
    Ok(())
}

/// The baked table's pick for `name` at `point` on this GPU, timed beside the default: one table row.
fn fallback_row(
    name: &str,
    k: &tuner_runtime::build::scan::Kernel,
    source: &str,
    point: &[(String, i64)],
    device: &str,
    cc: (u32, u32),
) -> Result<String, Error> {
    let sizes: Vec<i64> = point.iter().map(|(_, v)| *v).collect();
    let pick = match name {
        "sgemm" => pick_of(&sgemm::sgemm_tuning::TABLE, device, cc, &sizes)?,
        "vector_add" => pick_of(&vector_add::vector_add_tuning::TABLE, device, cc, &sizes)?,
        "softmax" => pick_of(&softmax::softmax_tuning::TABLE, device, cc, &sizes)?,
        _ => pick_of(&attention::attention_tuning::TABLE, device, cc, &sizes)?,
    };
    let (config, from) = (pick.config.clone(), pick.source.clone());
    let default =
        Candidate { label: "default".into(), config: k.spec.default_config().clone(), source: "default".into() };
    let times = measure(&k.spec.at(point), source, &[pick, default])?;
    let at = tuner_runtime::spec::point_text(point);
    let speedup = match (times[0], times[1]) {
        (Some(p), Some(d)) => Some(d / p),
        _ => None,
    };
    println!(
        "{}",
        serde_json::json!({
            "type": "fallback", "kernel": name, "sizes": at, "device": device, "config": config.to_json(),
            "from": from, "time_ms": times[0], "default_ms": times[1], "speedup": speedup,
        })
    );
    Ok(format!(
        "| {name} | {at} | `{config}` | {from} | {} | {} | {} |",
        ms(times[0]),
        ms(times[1]),
        speedup.map_or("-".into(), |s| format!("{s:.2}x"))
    ))
}

fn ms(t: Option<f64>) -> String {
    t.map_or("-".into(), |t| format!("{t:.4} ms"))
}
