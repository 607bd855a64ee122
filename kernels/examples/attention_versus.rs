//! Tensor-core attention (issue 18) in one run on one GPU, at each shape: the tuned launcher
//! (`flash_attention`, the config the generated table picks on this GPU for the launch's sizes) beside
//! the declared default config, with the registers, local memory (spills) and shared memory of each.
//! `scripts/attention_sdpa.py` then times PyTorch's `scaled_dot_product_attention` (the default backend and
//! the flash backend) on the tensors this writes, and prints the table of docs/benchmarks.md.
//!
//! Timing as in `versus`: the median of 100 CUDA-event timings of one launch, each after a 256 MiB memset
//! that evicts the L2, after 10 warm-up launches; the tuned launcher is timed first and last, so the two
//! show the noise. Every output starts as NaN and is checked against a float64 reference on 64 sampled
//! rows; a wrong output fails the run (exit 1) after the table is written.
//!
//! `attention_versus [DIR] [--entries AUTOTUNE_DIR]` writes `DIR/attention.json` and
//! `DIR/<shape>_{q,k,v,o}.f16` (the tuned output); DIR defaults to `attention-out`. With `--entries`, the
//! tuned row of a shape runs the best config of the cache entry in AUTOTUNE_DIR for this GPU at that
//! sequence length (read and validated as the build reads it, geometry from the entry's spec), instead of
//! the config baked into this binary: what a binary rebuilt from those entries would pick at the tuned
//! sizes, measured in the same device session as the tune. Needs a CUDA GPU.

mod common;
mod configs;
mod timing;

use std::fmt::Debug;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use autotune_kernels::flash_attention;
use autotune_kernels::flash_attention::{flash_attention_hd128_tuning, flash_attention_hd64_tuning};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, PushKernelArg};
use tuner_runtime::__private::Kernel;

use common::{attention_error, attention_picks, attention_qkv, attention_reference};
use configs::{default, from_entry, Loaded};
use timing::{Stats, Timer};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// B·H, sequence length, head dimension, causal: the shapes, then the other tuned length and
/// the causal mask.
const SHAPES: &[(usize, usize, usize, bool)] = &[
    (32, 2048, 64, false),
    (32, 2048, 128, false),
    (32, 4096, 64, false),
    (32, 4096, 128, false),
    (32, 1024, 64, false),
    (32, 1024, 128, false),
    (32, 2048, 64, true),
    (32, 2048, 128, true),
];

/// The config the launcher's plan picks on this GPU for `sizes`, and where it came from.
fn tuned<T: Debug>(kernel: &'static Kernel<T>, stream: &Arc<CudaStream>, sizes: &[i64]) -> Result<Loaded> {
    let plan = kernel.plan(stream, sizes)?;
    let from = match plan.pick.entry {
        Some((e, how)) => format!("entry {} at {:?} ({})", e.device, e.sizes, how.as_str()),
        None => "the default (no entry fits)".to_owned(),
    };
    let params = kernel.table().config(plan.pick.index);
    Ok(Loaded { function: plan.function, launch: plan.launch, params, config: format!("{:?}", plan.config), from })
}

fn dump(dir: &Path, name: &str, x: &[u16]) -> Result<()> {
    let bytes: Vec<u8> = x.iter().flat_map(|h| h.to_le_bytes()).collect();
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn main() -> Result<()> {
    let (dir, entries) = configs::args("attention-out")?;
    std::fs::create_dir_all(&dir)?;
    let info = tuner_runtime::cuda::query_device(0)?;
    let device = format!(
        "{} (sm_{}{}), driver {}",
        info.name, info.compute_capability.0, info.compute_capability.1, info.driver
    );
    println!("device: {device}");
    let ctx = CudaContext::new(0)?;
    let stream = ctx.default_stream();
    let mut timer = Timer::new(&stream)?;
    let mut json = format!("{{\"device\":{device:?},\"rows\":[");
    let mut all_ok = true;
    let mut first = true;

    for &(bh, seq, d, causal) in SHAPES {
        let tag = format!("bh{bh}-s{seq}-d{d}{}", if causal { "-causal" } else { "" });
        let len = bh * seq * d;
        let [qh, kh, vh] = attention_qkv(len);
        let (dq, dk, dv) = (stream.clone_htod(&qh)?, stream.clone_htod(&kh)?, stream.clone_htod(&vh)?);
        let nan = stream.clone_htod(&vec![0x7e00u16; len])?;
        let mut dout = stream.alloc_zeros::<u16>(len)?;
        let picks = attention_picks(bh, seq);
        let want = attention_reference([&qh, &kh, &vh], &picks, (seq, d), causal);
        let flops = 4.0 * (bh * seq * seq * d) as f64 / if causal { 2.0 } else { 1.0 };
        let sizes = [bh as i64, seq as i64];
        let on_disk = |v: Option<Loaded>, dir: &std::path::Path| {
            v.ok_or_else(|| format!("no entry for {} at seq={seq} in {}", info.name, dir.display()))
        };
        let (tuned_v, default_v, baked) = match (d, &entries) {
            (64, None) => (
                tuned(&flash_attention_hd64_tuning::KERNEL, &stream, &sizes)?,
                default(&flash_attention_hd64_tuning::KERNEL, &ctx, &sizes)?,
                true,
            ),
            (64, Some(e)) => (
                on_disk(
                    from_entry(&flash_attention_hd64_tuning::KERNEL, &ctx, e, &info.name, &[("seq", seq as i64)])?,
                    e,
                )?,
                default(&flash_attention_hd64_tuning::KERNEL, &ctx, &sizes)?,
                false,
            ),
            (_, None) => (
                tuned(&flash_attention_hd128_tuning::KERNEL, &stream, &sizes)?,
                default(&flash_attention_hd128_tuning::KERNEL, &ctx, &sizes)?,
                true,
            ),
            (_, Some(e)) => (
                on_disk(
                    from_entry(&flash_attention_hd128_tuning::KERNEL, &ctx, e, &info.name, &[("seq", seq as i64)])?,
                    e,
                )?,
                default(&flash_attention_hd128_tuning::KERNEL, &ctx, &sizes)?,
                false,
            ),
        };
        let (seq_i, causal_i) = (seq as i32, causal as i32);
        let run = |v: &Loaded, out: &mut CudaSlice<u16>| -> Result<()> {
            // SAFETY: the buffers hold bh * seq * d halves; the config's tiles divide seq (the table or
            // the entry's spec checked the constraints at these sizes).
            unsafe {
                stream
                    .launch_builder(&v.function)
                    .arg(&dq)
                    .arg(&dk)
                    .arg(&dv)
                    .arg(out)
                    .arg(&seq_i)
                    .arg(&causal_i)
                    .launch(v.launch)
            }?;
            Ok(())
        };
        for (variant, is_tuned) in [("tuned", true), ("default", false), ("tuned (again)", true)] {
            stream.memcpy_dtod(&nan, &mut dout)?;
            let stats: Stats = match (is_tuned, baked) {
                (true, true) => {
                    timer.time(|| Ok(flash_attention(&stream, &dq, &dk, &dv, &mut dout, (bh, seq, d), causal)?))?
                }
                (true, false) => timer.time(|| run(&tuned_v, &mut dout))?,
                (false, _) => timer.time(|| run(&default_v, &mut dout))?,
            };
            let out = stream.clone_dtoh(&dout)?;
            let (err, written) = attention_error(&out, &picks, (seq, d), &want);
            let ok = err < 2e-3 && written;
            all_ok &= ok;
            if variant == "tuned" {
                for (name, x) in [("q", &qh), ("k", &kh), ("v", &vh), ("o", &out)] {
                    dump(&dir, &format!("{tag}_{name}.f16"), x)?;
                }
            }
            let v = if is_tuned { &tuned_v } else { &default_v };
            let (regs, local, shared) = v.resources()?;
            let tflops = flops / stats.median / 1e9;
            println!(
                "{tag:>22} {variant:<14} {:.4} ms (min {:.4}, max {:.4}) {tflops:6.1} TFLOP/s  max|err| {err:.2e} {}  \
                 {regs} regs, {local} B local, {shared} B shared  {} [{}]",
                stats.median,
                stats.min,
                stats.max,
                if ok { "ok" } else { "FAIL" },
                v.config,
                v.from
            );
            write!(
                json,
                "{}{{\"shape\":{tag:?},\"bh\":{bh},\"seq\":{seq},\"d\":{d},\"causal\":{causal},\"variant\":{variant:?},\
                 \"config\":{:?},\"from\":{:?},\"median_ms\":{},\"min_ms\":{},\"max_ms\":{},\"runs\":{},\"tflops\":{tflops},\
                 \"max_err_vs_f64\":{err},\"ok\":{ok},\"registers\":{regs},\"local_bytes\":{local},\"shared_bytes\":{shared}}}",
                if first { "" } else { "," },
                v.config,
                v.from,
                stats.median,
                stats.min,
                stats.max,
                stats.runs
            )?;
            first = false;
        }
    }
    json.push_str("]}");
    std::fs::write(dir.join("attention.json"), &json)?;
    if !all_ok {
        eprintln!("some outputs are wrong");
        std::process::exit(1);
    }
    Ok(())
}
