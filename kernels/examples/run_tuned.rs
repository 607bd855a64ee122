//! Runs every tuned kernel through its launcher on this GPU and checks the output against a CPU
//! reference: the end-to-end proof that the committed cache entries were baked in and picked for this
//! device. `cargo run --release -p autotune-kernels --example run_tuned` (needs a CUDA GPU).
//!
//! Every launch goes through `KERNEL.plan`, which picks the config for this GPU and the launch's sizes.
//! For each kernel it prints that pick (asked of the same generated table: the entry it came from, or
//! the default), the mean time of a few launches, and the worst error against the reference; it exits 1
//! when any output is wrong.

mod common;

use std::sync::Arc;
use std::time::Instant;

use autotune_kernels::flash_attention::{flash_attention_hd128_tuning, flash_attention_hd64_tuning};
use autotune_kernels::{
    attention, attention::attention_tuning, flash_attention, sgemm, sgemm::sgemm_tuning, softmax,
    softmax::softmax_tuning, vector_add, vector_add::vector_add_tuning,
};
use cudarc::driver::{CudaContext, CudaStream};

use common::{attention_error, attention_qkv, attention_reference, data};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Mean milliseconds of `runs` launches after one warm-up (the first launch also compiles the kernel).
fn time(stream: &Arc<CudaStream>, runs: usize, mut launch: impl FnMut() -> Result<()>) -> Result<f64> {
    launch()?;
    stream.synchronize()?;
    let start = Instant::now();
    for _ in 0..runs {
        launch()?;
    }
    stream.synchronize()?;
    Ok(start.elapsed().as_secs_f64() * 1e3 / runs as f64)
}

/// The config the generated table picks on this GPU for `sizes`, and where it came from.
fn pick<T: std::fmt::Debug>(table: &tuner_runtime::__private::Table<T>, sizes: &[i64]) -> String {
    let info = match tuner_runtime::cuda::query_device(0) {
        Ok(info) => info,
        Err(e) => return format!("(no device: {e})"),
    };
    match table.choose_for(&info.name, info.compute_capability, sizes) {
        Ok(p) => match p.entry {
            Some((e, how)) => format!("{:?} from {} at {:?} ({})", p.config, e.device, e.sizes, how.as_str()),
            None => format!("{:?} (the default)", p.config),
        },
        Err(e) => e.to_string(),
    }
}

fn max_err(got: &[f32], want: &[f64]) -> f64 {
    got.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max)
}

fn report(name: &str, tuned: String, ms: f64, err: f64, tol: f64) -> bool {
    let ok = err <= tol && err.is_finite();
    println!(
        "{name:>10}: {} {tuned}: {ms:.4} ms/launch, max |err| {err:.2e} (tolerance {tol:.0e})",
        if ok { "ok  " } else { "FAIL" }
    );
    ok
}

fn main() -> Result<()> {
    let info = tuner_runtime::cuda::query_device(0)?;
    println!(
        "device: {} (sm_{}{}), driver {}, nvrtc {}",
        info.name, info.compute_capability.0, info.compute_capability.1, info.driver, info.nvrtc
    );
    for (kernel, devices) in [
        ("vector_add", vector_add_tuning::ENTRIES.iter().map(|e| e.device).collect::<Vec<_>>()),
        ("sgemm", sgemm_tuning::ENTRIES.iter().map(|e| e.device).collect()),
        ("attention", attention_tuning::ENTRIES.iter().map(|e| e.device).collect()),
        ("softmax", softmax_tuning::ENTRIES.iter().map(|e| e.device).collect()),
        ("flash d64", flash_attention_hd64_tuning::ENTRIES.iter().map(|e| e.device).collect()),
        ("flash d128", flash_attention_hd128_tuning::ENTRIES.iter().map(|e| e.device).collect()),
    ] {
        println!("{kernel:>10}: cache entries for {devices:?}");
    }
    let ctx = CudaContext::new(0)?;
    let stream = ctx.default_stream();
    let mut all_ok = true;

    // Vector add: exact.
    let n = 1 << 24;
    let (a, b) = (data(n, 1), data(n, 2));
    let (da, db) = (stream.clone_htod(&a)?, stream.clone_htod(&b)?);
    let mut dc = stream.alloc_zeros::<f32>(n)?;
    let ms = time(&stream, 20, || Ok(vector_add(&stream, &da, &db, &mut dc)?))?;
    let c = stream.clone_dtoh(&dc)?;
    let want: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x + y) as f64).collect();
    all_ok &= report("vector_add", pick(&vector_add_tuning::TABLE, &[n as i64]), ms, max_err(&c, &want), 0.0);

    // SGEMM 1024^3 against an f64 reference.
    let (m, nn, k) = (1024, 1024, 1024);
    let (a, b) = (data(m * k, 3), data(k * nn, 4));
    let (da, db) = (stream.clone_htod(&a)?, stream.clone_htod(&b)?);
    let mut dc = stream.alloc_zeros::<f32>(m * nn)?;
    let ms = time(&stream, 10, || Ok(sgemm(&stream, &da, &db, &mut dc, (m, nn, k))?))?;
    let c = stream.clone_dtoh(&dc)?;
    let mut want = vec![0f64; m * nn];
    for i in 0..m {
        for p in 0..k {
            let aip = a[i * k + p] as f64;
            let row = &b[p * nn..(p + 1) * nn];
            for (w, bv) in want[i * nn..(i + 1) * nn].iter_mut().zip(row) {
                *w += aip * *bv as f64;
            }
        }
    }
    all_ok &=
        report("sgemm", pick(&sgemm_tuning::TABLE, &[m as i64, nn as i64, k as i64]), ms, max_err(&c, &want), 1e-3);

    // Attention, on the CUDA cores (head dimension 64) and on the tensor cores (64 and 128, with and
    // without the causal mask): 4 slices of 512 rows, fp16 in and out, every row against float64.
    let (bh, seq) = (4, 512);
    let slices: Vec<(usize, usize)> = (0..bh).flat_map(|s| (0..seq).map(move |i| (s, i))).collect();
    for (name, d, causal) in [
        ("attention", 64, false),
        ("flash d64", 64, false),
        ("flash d64c", 64, true),
        ("flash d128", 128, false),
        ("flash d128c", 128, true),
    ] {
        let [qh, kh, vh] = attention_qkv(bh * seq * d);
        let (dq, dk, dv) = (stream.clone_htod(&qh)?, stream.clone_htod(&kh)?, stream.clone_htod(&vh)?);
        let mut dout = stream.clone_htod(&vec![0x7e00u16; bh * seq * d])?; // NaN: unwritten rows show
        let sizes = [bh as i64, seq as i64];
        let (ms, tuned) = match (name, d) {
            ("attention", _) => (
                time(&stream, 10, || Ok(attention(&stream, &dq, &dk, &dv, &mut dout, (bh, seq))?))?,
                pick(&attention_tuning::TABLE, &[bh as i64, seq as i64, d as i64]),
            ),
            (_, 64) => (
                time(&stream, 10, || Ok(flash_attention(&stream, &dq, &dk, &dv, &mut dout, (bh, seq, d), causal)?))?,
                pick(&flash_attention_hd64_tuning::TABLE, &sizes),
            ),
            _ => (
                time(&stream, 10, || Ok(flash_attention(&stream, &dq, &dk, &dv, &mut dout, (bh, seq, d), causal)?))?,
                pick(&flash_attention_hd128_tuning::TABLE, &sizes),
            ),
        };
        let out = stream.clone_dtoh(&dout)?;
        let want = attention_reference([&qh, &kh, &vh], &slices, (seq, d), causal);
        let (err, written) = attention_error(&out, &slices, (seq, d), &want);
        all_ok &= report(name, tuned, ms, if written { err } else { f64::NAN }, 2e-3);
    }

    // Softmax: 1024 rows of 4096.
    let (rows, cols) = (1024, 4096);
    let x = data(rows * cols, 8);
    let dx = stream.clone_htod(&x)?;
    let mut dy = stream.alloc_zeros::<f32>(rows * cols)?;
    let ms = time(&stream, 20, || Ok(softmax(&stream, &dx, &mut dy, (rows, cols))?))?;
    let y = stream.clone_dtoh(&dy)?;
    let mut want = vec![0f64; rows * cols];
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let sum: f64 = row.iter().map(|v| (*v as f64 - max).exp()).sum();
        for (w, v) in want[r * cols..(r + 1) * cols].iter_mut().zip(row) {
            *w = (*v as f64 - max).exp() / sum;
        }
    }
    all_ok &=
        report("softmax", pick(&softmax_tuning::TABLE, &[rows as i64, cols as i64]), ms, max_err(&y, &want), 1e-6);

    if !all_ok {
        std::process::exit(1);
    }
    println!("all outputs match the CPU reference");
    Ok(())
}
