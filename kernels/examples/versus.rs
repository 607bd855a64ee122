//! The tuned kernels against the baselines a kernel engineer would compare them with, in one process on
//! one GPU (issue 6, docs/benchmarks.md):
//!
//! - vector add (tuned, default) vs a device-to-device `memcpy` of the same `n`, as bandwidth;
//! - SGEMM 4096³ (tuned, default) vs cuBLAS `cublasSgemm` with TF32 off (`CUBLAS_DEFAULT_MATH` and
//!   `CUBLAS_PEDANTIC_MATH`), same inputs, and the stream-K prototype (`cuda/sgemm_streamk.cu`) with the
//!   tuned config's tiles;
//! - attention 32 × 2048 × 64 fp16 (tuned, default); `scripts/versus_sdpa.py` then times PyTorch's
//!   `scaled_dot_product_attention` on the inputs this writes and checks it against our output;
//! - softmax 4096 × 4096 (tuned, default).
//!
//! Every time is the median of many CUDA-event timings of one launch, each after a 256 MiB memset that
//! evicts the 50 MiB L2, after warm-up launches; the tuned variant is timed twice (first and last of its
//! group) so the spread between the two shows the noise. Every output is poisoned with NaN first and
//! checked: vector add exactly, memcpy exactly, SGEMM against cuBLAS (whole matrix) and a float64
//! reference (sampled elements), attention and softmax against a float64 reference on sampled rows.
//!
//! `versus [DIR]` writes `DIR/versus.json` and the attention inputs/output (`DIR/attn_{q,k,v,o}.f16`);
//! DIR defaults to `versus-out`. With `--entries AUTOTUNE_DIR`, SGEMM's tuned rows run the best config of
//! the 4096³ entry for this GPU in AUTOTUNE_DIR (a tune of the same device session, not yet baked; see
//! `configs`). Needs a CUDA GPU and, for SGEMM, libcublas on the library path.

mod common;
mod configs;
mod timing;

use std::fmt::Write as _;
use std::sync::Arc;

use autotune_kernels::{
    attention, attention::attention_tuning, sgemm, sgemm::sgemm_tuning, softmax, softmax::softmax_tuning,
};
use autotune_kernels::{vector_add, vector_add::vector_add_tuning};
use cudarc::cublas::{sys as blas_sys, CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};

use common::{attention_error, attention_picks, attention_qkv, attention_reference, data};
use timing::{Stats, Timer, RUNS, WARMUP};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One timed variant, for the table and the JSON.
struct Row {
    group: &'static str,
    variant: String,
    config: String,
    stats: Stats,
    /// GB/s or TFLOP/s, with its unit.
    rate: f64,
    unit: &'static str,
    check: String,
    ok: bool,
}

/// The rows so far; each is printed as it is measured, so a later failure keeps the earlier numbers.
struct Rows(Vec<Row>);

impl Rows {
    fn push(&mut self, r: Row) {
        println!(
            "{:>10} {:<40} {:.4} ms (min {:.4}, max {:.4}) {:.1} {} [{}] {}",
            r.group,
            r.variant,
            r.stats.median,
            r.stats.min,
            r.stats.max,
            r.rate,
            r.unit,
            if r.ok { "ok" } else { "FAIL" },
            r.check
        );
        self.0.push(r);
    }
}

fn poison(stream: &Arc<CudaStream>, nan: &CudaSlice<f32>, out: &mut CudaSlice<f32>) -> Result<()> {
    stream.memcpy_dtod(&nan.slice(0..out.len()), out)?;
    Ok(())
}

fn rel_l2(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    if num.is_nan() {
        f64::NAN
    } else {
        (num / den).sqrt()
    }
}

fn main() -> Result<()> {
    let (dir, entries) = configs::args("versus-out")?;
    std::fs::create_dir_all(&dir)?;
    let info = tuner_runtime::cuda::query_device(0)?;
    let device = format!(
        "{} (sm_{}{}, {} SMs, {} MiB L2), driver {}, nvrtc {}",
        info.name,
        info.compute_capability.0,
        info.compute_capability.1,
        info.sm_count,
        info.l2_bytes >> 20,
        info.driver,
        info.nvrtc
    );
    println!("device: {device}");
    let ctx = CudaContext::new(0)?;
    let stream = ctx.default_stream();
    let mut timer = Timer::new(&stream)?;
    let nan = stream.clone_htod(&vec![f32::NAN; 1 << 26])?;
    let mut rows = Rows(Vec::new());
    // Checks that print a line instead of a row (the stream-K prototype's repeat check) and failed.
    let mut repeat_failures = 0usize;

    // ---- vector add vs memcpy, n = 2^26 floats (the size it was tuned at) ----
    {
        let n = 1usize << 26;
        let (a, b) = (data(n, 1), data(n, 2));
        let (da, db) = (stream.clone_htod(&a)?, stream.clone_htod(&b)?);
        let mut dc = stream.alloc_zeros::<f32>(n)?;
        let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let default = vector_add_tuning::Tuned::DEFAULT;
        let configs::Loaded { function: f_default, launch: cfg_default, .. } =
            configs::default(&vector_add_tuning::KERNEL, &ctx, &[n as i64])?;
        let n_i = n as i32;
        let bytes = 12.0 * n as f64;
        let check = |dc: &CudaSlice<f32>| -> Result<(String, bool)> {
            let got = stream.clone_dtoh(dc)?;
            let bad = got.iter().zip(&want).filter(|(g, w)| g.to_bits() != w.to_bits()).count();
            Ok((format!("{bad} of {n} elements differ from a+b (exact)"), bad == 0))
        };
        for (variant, tuned) in [("tuned", true), ("default", false), ("tuned (again)", true)] {
            poison(&stream, &nan, &mut dc)?;
            let stats = if tuned {
                timer.time(|| Ok(vector_add(&stream, &da, &db, &mut dc)?))?
            } else {
                timer.time(|| {
                    unsafe {
                        stream.launch_builder(&f_default).arg(&da).arg(&db).arg(&mut dc).arg(&n_i).launch(cfg_default)
                    }?;
                    Ok(())
                })?
            };
            let (check, ok) = check(&dc)?;
            let config = if tuned { format!("{:?}", vector_add_tuning::tuned()) } else { format!("{default:?}") };
            rows.push(Row {
                group: "vector_add",
                variant: variant.into(),
                config,
                stats,
                rate: bytes / stats.median / 1e6,
                unit: "GB/s",
                check,
                ok,
            });
        }
        // Device-to-device copy of the same n floats: 8n bytes (read + write).
        let mut dst = stream.alloc_zeros::<f32>(n)?;
        poison(&stream, &nan, &mut dst)?;
        let stats = timer.time(|| Ok(stream.memcpy_dtod(&da, &mut dst)?))?;
        let got = stream.clone_dtoh(&dst)?;
        let bad = got.iter().zip(&a).filter(|(g, w)| g.to_bits() != w.to_bits()).count();
        rows.push(Row {
            group: "vector_add",
            variant: "memcpy DtoD (cuMemcpyDtoDAsync)".into(),
            config: format!("{n} floats"),
            stats,
            rate: 8.0 * n as f64 / stats.median / 1e6,
            unit: "GB/s",
            check: format!("{bad} of {n} elements differ from the source"),
            ok: bad == 0,
        });
    }

    // ---- SGEMM 4096^3 vs cuBLAS, TF32 off ----
    {
        let (m, n, k) = (4096usize, 4096usize, 4096usize);
        let (a, b) = (data(m * k, 3), data(k * n, 4));
        let (da, db) = (stream.clone_htod(&a)?, stream.clone_htod(&b)?);
        let mut dc = stream.alloc_zeros::<f32>(m * n)?;
        let flops = 2.0 * (m * n * k) as f64;
        // Sampled float64 reference: 512 elements.
        let samples: Vec<(usize, usize)> = data(1024, 11)
            .chunks(2)
            .map(|p| ((((p[0] + 1.0) * 0.5) * m as f32) as usize % m, (((p[1] + 1.0) * 0.5) * n as f32) as usize % n))
            .collect();
        let want: Vec<f64> =
            samples.iter().map(|&(i, j)| (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum()).collect();
        let sampled = |c: &[f32]| -> f64 {
            let got: Vec<f64> = samples.iter().map(|&(i, j)| c[i * n + j] as f64).collect();
            rel_l2(&got, &want)
        };
        // cuBLAS first (its output is the whole-matrix reference for ours).
        let blas = CudaBlas::new(stream.clone())?;
        let mut c_blas = stream.alloc_zeros::<f32>(m * n)?;
        let mut blas_out: Vec<f32> = Vec::new();
        for (variant, mode) in [
            ("cuBLAS sgemm, CUBLAS_DEFAULT_MATH", blas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH),
            ("cuBLAS sgemm, CUBLAS_PEDANTIC_MATH", blas_sys::cublasMath_t::CUBLAS_PEDANTIC_MATH),
        ] {
            unsafe { blas_sys::cublasSetMathMode(*blas.handle(), mode) }.result()?;
            // Row-major C = A B is column-major C^T = B^T A^T: swap the operands, no transposes.
            let cfg = GemmConfig {
                transa: blas_sys::cublasOperation_t::CUBLAS_OP_N,
                transb: blas_sys::cublasOperation_t::CUBLAS_OP_N,
                m: n as i32,
                n: m as i32,
                k: k as i32,
                alpha: 1.0f32,
                lda: n as i32,
                ldb: k as i32,
                beta: 0.0f32,
                ldc: n as i32,
            };
            poison(&stream, &nan, &mut c_blas)?;
            let stats = timer.time(|| Ok(unsafe { blas.gemm(cfg, &db, &da, &mut c_blas) }?))?;
            let got = stream.clone_dtoh(&c_blas)?;
            let err = sampled(&got);
            let ok = err < 1e-5 && got.iter().all(|x| x.is_finite());
            rows.push(Row {
                group: "sgemm",
                variant: variant.into(),
                config: "-".into(),
                stats,
                rate: flops / stats.median / 1e9,
                unit: "TFLOP/s",
                check: format!("rel L2 err vs f64 (512 sampled) {err:.2e}"),
                ok,
            });
            if blas_out.is_empty() {
                blas_out = got;
            }
        }
        drop(c_blas);
        let default = sgemm_tuning::Tuned::DEFAULT;
        let configs::Loaded { function: f_default, launch: cfg_default, .. } =
            configs::default(&sgemm_tuning::KERNEL, &ctx, &[m as i64, n as i64, k as i64])?;
        let (mi, ni, ki) = (m as i32, n as i32, k as i32);
        let on_disk = match &entries {
            Some(e) => Some(
                configs::from_entry(
                    &sgemm_tuning::KERNEL,
                    &ctx,
                    e,
                    &info.name,
                    &[("m", 4096), ("n", 4096), ("k", 4096)],
                )?
                .ok_or_else(|| format!("no sgemm entry for {} at 4096³ in {}", info.name, e.display()))?,
            ),
            None => None,
        };
        for (variant, tuned) in [("tuned", true), ("default", false), ("tuned (again)", true)] {
            poison(&stream, &nan, &mut dc)?;
            let launch = |f: &CudaFunction, cfg: LaunchConfig, dc: &mut CudaSlice<f32>| -> Result<()> {
                unsafe { stream.launch_builder(f).arg(&da).arg(&db).arg(dc).arg(&mi).arg(&ni).arg(&ki).launch(cfg) }?;
                Ok(())
            };
            let stats = match (tuned, &on_disk) {
                (true, None) => timer.time(|| Ok(sgemm(&stream, &da, &db, &mut dc, (m, n, k))?))?,
                (true, Some(l)) => timer.time(|| launch(&l.function, l.launch, &mut dc))?,
                (false, _) => timer.time(|| launch(&f_default, cfg_default, &mut dc))?,
            };
            let got = stream.clone_dtoh(&dc)?;
            let err = sampled(&got);
            let g64: Vec<f64> = got.iter().map(|x| *x as f64).collect();
            let b64: Vec<f64> = blas_out.iter().map(|x| *x as f64).collect();
            let vs_blas = rel_l2(&g64, &b64);
            let ok = err < 1e-5 && vs_blas < 1e-5;
            let config = match (tuned, &on_disk) {
                (true, None) => format!("{:?}", sgemm_tuning::tuned()),
                (true, Some(l)) => format!("{} from {}", l.config, l.from),
                (false, _) => format!("{default:?}"),
            };
            rows.push(Row {
                group: "sgemm",
                variant: variant.into(),
                config,
                stats,
                rate: flops / stats.median / 1e9,
                unit: "TFLOP/s",
                check: format!("rel L2 err vs f64 (512 sampled) {err:.2e}, vs cuBLAS (all) {vs_blas:.2e}"),
                ok,
            });
        }

        // The stream-K prototype (kernels/cuda/sgemm_streamk.cu, not behind a launcher) with the tuned
        // config's tiles, when those are an `alg = 0` config: at G = every block the GPU holds at once
        // (stream-K: whole tiles, then the rest cut evenly) and at G = tiles (one tile a block, the tuned
        // kernel's schedule through the prototype's code, which tells its overhead from the schedule's gain).
        let tuned_config = on_disk.as_ref().map_or_else(|| sgemm_tuning::KERNEL.config(), |l| l.params.clone());
        if tuned_config.int("alg") != Some(0) {
            println!("sgemm stream-K prototype: not run, the tuned config is not `alg = 0` ({tuned_config})");
        } else {
            let int = |name: &str| tuned_config.int(name).expect("an sgemm parameter") as usize;
            let (bm, bn, threads) = (int("bm"), int("bn"), int("bm") / int("tm") * (int("bn") / int("tn")));
            let module = tuner_runtime::cuda::compile::load_module(
                &ctx,
                "sgemm_streamk",
                "sgemm_streamk.cu",
                include_str!("../cuda/sgemm_streamk.cu"),
                &tuner_runtime::layout::defines(&tuned_config),
            )?;
            let f = tuner_runtime::cuda::compile::load_function(&ctx, &module, "sgemm_streamk")?;
            let tiles = m / bm * (n / bn);
            let resident = f.occupancy_max_active_blocks_per_multiprocessor(threads as u32, 0, None)? as usize;
            // Occupancy cannot be 0 here: the tuned kernel, with fewer registers, ran above.
            let full = (info.sm_count as usize * resident).clamp(1, tiles);
            let mut partials = stream.alloc_zeros::<f32>(2 * full * bm * bn)?;
            let mut counters = stream.alloc_zeros::<i32>(tiles)?;
            let b64: Vec<f64> = blas_out.iter().map(|x| *x as f64).collect();
            // One launch on `blocks` blocks.
            let launch = |blocks: usize,
                          dc: &mut CudaSlice<f32>,
                          partials: &mut CudaSlice<f32>,
                          counters: &mut CudaSlice<i32>|
             -> Result<()> {
                let cfg = LaunchConfig {
                    grid_dim: (blocks as u32, 1, 1),
                    block_dim: (threads as u32, 1, 1),
                    shared_mem_bytes: 0,
                };
                let mut builder = stream.launch_builder(&f);
                builder.arg(&da).arg(&db).arg(dc).arg(&mi).arg(&ni).arg(&ki).arg(partials).arg(counters);
                // SAFETY: A, B, C are m x k, k x n, m x n; the callers size partials at two BM x BN tiles a
                // block (a launch of `tiles` blocks splits no tile and touches neither buffer); the counters
                // are zero, and every launch sets back the ones it raises.
                unsafe { builder.launch(cfg) }?;
                Ok(())
            };
            for (variant, blocks) in
                [("stream-K prototype, G = SMs x resident", full), ("stream-K prototype, G = tiles", tiles)]
            {
                poison(&stream, &nan, &mut dc)?;
                let stats = timer.time(|| launch(blocks, &mut dc, &mut partials, &mut counters))?;
                let got = stream.clone_dtoh(&dc)?;
                let err = sampled(&got);
                let g64: Vec<f64> = got.iter().map(|x| *x as f64).collect();
                let vs_blas = rel_l2(&g64, &b64);
                rows.push(Row {
                    group: "sgemm",
                    variant: variant.into(),
                    config: format!("{tuned_config}, G = {blocks} ({tiles} tiles, {resident} resident a SM)"),
                    stats,
                    rate: flops / stats.median / 1e9,
                    unit: "TFLOP/s",
                    check: format!("rel L2 err vs f64 (512 sampled) {err:.2e}, vs cuBLAS (all) {vs_blas:.2e}"),
                    ok: err < 1e-5 && vs_blas < 1e-5,
                });
            }
            // The hand-off between blocks, which the CPU check cannot test (its blocks run one at a time): at
            // each G, 20 launches, each compared bit for bit with the first (the split points, and so the
            // sums, depend on G only). G = the full grid, one block fewer, about half, and twice the resident
            // blocks (two shifts, not together; capped at the tile count, where nothing is split).
            for blocks in [full, full.saturating_sub(1), full / 2 + 1, 2 * full] {
                let blocks = blocks.clamp(1, tiles);
                let mut partials = stream.alloc_zeros::<f32>(2 * blocks * bm * bn)?;
                let (mut first, mut differ) = (Vec::new(), 0);
                for run in 0..20 {
                    poison(&stream, &nan, &mut dc)?;
                    launch(blocks, &mut dc, &mut partials, &mut counters)?;
                    let got = stream.clone_dtoh(&dc)?;
                    if run == 0 {
                        first = got;
                    } else if got.iter().zip(&first).any(|(g, w)| g.to_bits() != w.to_bits()) {
                        differ += 1;
                    }
                }
                let err = sampled(&first);
                println!(
                    "sgemm stream-K repeat check, G = {blocks}: 20 launches, {differ} differ from the first; \
                     rel L2 err vs f64 (512 sampled) {err:.2e} [{}]",
                    if differ == 0 && err < 1e-5 { "ok" } else { "FAIL" }
                );
                repeat_failures += usize::from(differ > 0 || err >= 1e-5);
            }
            // Every launch must have set back the counters it raised.
            let raised = stream.clone_dtoh(&counters)?.iter().filter(|&&c| c != 0).count();
            println!(
                "sgemm stream-K counters after every launch: {raised} of {tiles} left raised [{}]",
                if raised == 0 { "ok" } else { "FAIL" }
            );
            repeat_failures += usize::from(raised > 0);
        }
    }

    // ---- attention 32 x 2048 x 64, fp16 ----
    {
        let (bh, seq, d) = (32usize, 2048usize, 64usize);
        let len = bh * seq * d;
        let [qh, kh, vh] = attention_qkv(len);
        let (dq, dk, dv) = (stream.clone_htod(&qh)?, stream.clone_htod(&kh)?, stream.clone_htod(&vh)?);
        let mut dout = stream.alloc_zeros::<u16>(len)?;
        let flops = 4.0 * (bh * seq * seq * d) as f64;
        // float64 reference on 64 sampled rows (slice, query row).
        let picks = attention_picks(bh, seq);
        let want = attention_reference([&qh, &kh, &vh], &picks, (seq, d), false);
        let default = attention_tuning::Tuned::DEFAULT;
        let configs::Loaded { function: f_default, launch: cfg_default, .. } =
            configs::default(&attention_tuning::KERNEL, &ctx, &[bh as i64, seq as i64, d as i64])?;
        let seq_i = seq as i32;
        let nan_h = stream.clone_htod(&vec![0x7e00u16; len])?;
        for (variant, tuned) in [("tuned", true), ("default", false), ("tuned (again)", true)] {
            stream.memcpy_dtod(&nan_h, &mut dout)?;
            let stats = if tuned {
                timer.time(|| Ok(attention(&stream, &dq, &dk, &dv, &mut dout, (bh, seq))?))?
            } else {
                timer.time(|| {
                    unsafe {
                        stream
                            .launch_builder(&f_default)
                            .arg(&dq)
                            .arg(&dk)
                            .arg(&dv)
                            .arg(&mut dout)
                            .arg(&seq_i)
                            .launch(cfg_default)
                    }?;
                    Ok(())
                })?
            };
            let out = stream.clone_dtoh(&dout)?;
            let (max_err, all_written) = attention_error(&out, &picks, (seq, d), &want);
            let ok = max_err < 2e-3 && all_written;
            if variant == "tuned" {
                let dump = |name: &str, x: &[u16]| -> Result<()> {
                    let bytes: Vec<u8> = x.iter().flat_map(|h| h.to_le_bytes()).collect();
                    std::fs::write(dir.join(name), bytes)?;
                    Ok(())
                };
                dump("attn_q.f16", &qh)?;
                dump("attn_k.f16", &kh)?;
                dump("attn_v.f16", &vh)?;
                dump("attn_o.f16", &out)?;
            }
            let config = if tuned { format!("{:?}", attention_tuning::tuned()) } else { format!("{default:?}") };
            rows.push(Row {
                group: "attention",
                variant: variant.into(),
                config,
                stats,
                rate: flops / stats.median / 1e9,
                unit: "TFLOP/s",
                check: format!("max |err| vs f64 (64 rows) {max_err:.2e}, all written {all_written}"),
                ok,
            });
        }
    }

    // ---- softmax 4096 x 4096 ----
    {
        let (nr, nc) = (4096usize, 4096usize);
        let x = data(nr * nc, 8);
        let dx = stream.clone_htod(&x)?;
        let mut dy = stream.alloc_zeros::<f32>(nr * nc)?;
        let picks: Vec<usize> = (0..64).map(|t| (t * 613 + 5) % nr).collect();
        let mut want = Vec::new();
        for &r in &picks {
            let row = &x[r * nc..(r + 1) * nc];
            let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
            let sum: f64 = row.iter().map(|v| (*v as f64 - max).exp()).sum();
            want.extend(row.iter().map(|v| (*v as f64 - max).exp() / sum));
        }
        let default = softmax_tuning::Tuned::DEFAULT;
        let configs::Loaded { function: f_default, launch: cfg_default, .. } =
            configs::default(&softmax_tuning::KERNEL, &ctx, &[nr as i64, nc as i64])?;
        let (ri, ci) = (nr as i32, nc as i32);
        for (variant, tuned) in [("tuned", true), ("default", false), ("tuned (again)", true)] {
            poison(&stream, &nan, &mut dy)?;
            let stats = if tuned {
                timer.time(|| Ok(softmax(&stream, &dx, &mut dy, (nr, nc))?))?
            } else {
                timer.time(|| {
                    unsafe {
                        stream.launch_builder(&f_default).arg(&dx).arg(&mut dy).arg(&ri).arg(&ci).launch(cfg_default)
                    }?;
                    Ok(())
                })?
            };
            let y = stream.clone_dtoh(&dy)?;
            let got: Vec<f64> = picks.iter().flat_map(|&r| y[r * nc..(r + 1) * nc].iter().map(|v| *v as f64)).collect();
            let max_err = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
            let all_written = y.iter().all(|v| v.is_finite());
            let config = if tuned { format!("{:?}", softmax_tuning::tuned()) } else { format!("{default:?}") };
            rows.push(Row {
                group: "softmax",
                variant: variant.into(),
                config,
                stats,
                rate: 8.0 * (nr * nc) as f64 / stats.median / 1e6,
                unit: "GB/s",
                check: format!("max |err| vs f64 (64 rows) {max_err:.2e}, all written {all_written}"),
                ok: max_err < 1e-6 && all_written,
            });
        }
    }

    // ---- ratios, table, JSON ----
    let rows = rows.0;
    let med = |g: &str, v: &str| rows.iter().find(|r| r.group == g && r.variant.starts_with(v)).map(|r| r.stats.median);
    let rate = |g: &str, v: &str| rows.iter().find(|r| r.group == g && r.variant.starts_with(v)).map(|r| r.rate);
    let ratios: Vec<(&str, f64, Option<f64>)> = vec![
        (
            "vector_add tuned / memcpy (bandwidth)",
            rate("vector_add", "tuned").unwrap() / rate("vector_add", "memcpy").unwrap(),
            Some(0.95),
        ),
        (
            "sgemm tuned / cuBLAS default math (time ratio)",
            med("sgemm", "cuBLAS sgemm, CUBLAS_DEFAULT").unwrap() / med("sgemm", "tuned").unwrap(),
            Some(0.80),
        ),
        (
            "sgemm tuned / cuBLAS pedantic math",
            med("sgemm", "cuBLAS sgemm, CUBLAS_PEDANTIC").unwrap() / med("sgemm", "tuned").unwrap(),
            None,
        ),
        (
            "vector_add tuned vs default (speed-up)",
            med("vector_add", "default").unwrap() / med("vector_add", "tuned").unwrap(),
            None,
        ),
        ("sgemm tuned vs default", med("sgemm", "default").unwrap() / med("sgemm", "tuned").unwrap(), None),
        ("attention tuned vs default", med("attention", "default").unwrap() / med("attention", "tuned").unwrap(), None),
        ("softmax tuned vs default", med("softmax", "default").unwrap() / med("softmax", "tuned").unwrap(), None),
    ];
    println!();
    println!("| kernel | variant | config | median ms | min ms | max ms | rate | check |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | `{}` | {:.4} | {:.4} | {:.4} | {:.1} {} | {} {} |",
            r.group,
            r.variant,
            r.config,
            r.stats.median,
            r.stats.min,
            r.stats.max,
            r.rate,
            r.unit,
            if r.ok { "ok" } else { "FAIL" },
            r.check
        );
    }
    println!();
    for (name, v, target) in &ratios {
        match target {
            Some(t) => println!("{name}: {v:.3} (target >= {t:.2}: {})", if v >= t { "met" } else { "NOT met" }),
            None => println!("{name}: {v:.3}"),
        }
    }
    let mut json = String::new();
    write!(json, "{{\"device\":{:?},\"warmup\":{WARMUP},\"runs\":{RUNS},\"rows\":[", device)?;
    for (i, r) in rows.iter().enumerate() {
        write!(
            json,
            "{}{{\"kernel\":{:?},\"variant\":{:?},\"config\":{:?},\"median_ms\":{},\"min_ms\":{},\"max_ms\":{},\"runs\":{},\"rate\":{},\"unit\":{:?},\"check\":{:?},\"ok\":{}}}",
            if i > 0 { "," } else { "" },
            r.group,
            r.variant,
            r.config,
            r.stats.median,
            r.stats.min,
            r.stats.max,
            r.stats.runs,
            r.rate,
            r.unit,
            r.check,
            r.ok
        )?;
    }
    write!(json, "],\"ratios\":{{")?;
    for (i, (name, v, _)) in ratios.iter().enumerate() {
        write!(json, "{}{:?}:{}", if i > 0 { "," } else { "" }, name, v)?;
    }
    write!(json, "}}}}")?;
    std::fs::write(dir.join("versus.json"), &json)?;
    println!("{json}");
    if rows.iter().any(|r| !r.ok) || repeat_failures > 0 {
        eprintln!("some outputs are wrong");
        std::process::exit(1);
    }
    Ok(())
}
