//! Every config of one instruction path of the tensor-core attention space, checked against a float64
//! reference, masked and not, at every tuned sequence length: what a tune cannot show, since it measures
//! the unmasked launch only while a causal launch runs the same config.
//!
//! `attention_check AUTOTUNE_DIR [WGMMA]` takes each launcher's space at each length from its entry in
//! AUTOTUNE_DIR for this GPU (the spec the build reads; another GPU's entry when this one has none), keeps the configs whose `wgmma` is WGMMA
//! (default 1), compiles each once, and runs it at B·H = 8 with and without the causal mask; every output
//! starts as NaN and 64 sampled rows are compared with the reference. Prints one line per failure and a
//! summary per launcher and length; exit status 1 when any output is wrong. Needs a CUDA GPU.

mod common;
#[allow(dead_code)] // the comparison examples' entry loading; this uses `find_entry` and `compile`
mod configs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use autotune_kernels::flash_attention::{flash_attention_hd128_tuning, flash_attention_hd64_tuning};
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, PushKernelArg};
use tuner_runtime::__private::Kernel;
use tuner_runtime::cuda::launch_config;

use common::{attention_error, attention_picks, attention_qkv, attention_reference};
use configs::{compile, find_entry};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const BH: usize = 8;
const SEQS: [usize; 3] = [1024, 2048, 4096];

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: attention_check AUTOTUNE_DIR [WGMMA]")?);
    let wgmma: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    let gpu = tuner_runtime::cuda::query_device(0)?.name;
    let ctx = CudaContext::new(0)?;
    let stream = ctx.default_stream();
    println!("device: {gpu}; configs with wgmma = {wgmma}, B·H = {BH}");
    let mut wrong = 0;
    wrong += check(&flash_attention_hd64_tuning::KERNEL, 64, &ctx, &stream, &dir, &gpu, wgmma)?;
    wrong += check(&flash_attention_hd128_tuning::KERNEL, 128, &ctx, &stream, &dir, &gpu, wgmma)?;
    if wrong > 0 {
        eprintln!("{wrong} outputs are wrong");
        std::process::exit(1);
    }
    println!("every output matches the reference");
    Ok(())
}

/// Checks `kernel` (head dimension `d`) at every length; returns the number of wrong outputs.
fn check<T>(
    kernel: &'static Kernel<T>,
    d: usize,
    ctx: &Arc<CudaContext>,
    stream: &Arc<CudaStream>,
    dir: &std::path::Path,
    gpu: &str,
    wgmma: i64,
) -> Result<usize> {
    let mut compiled: HashMap<String, CudaFunction> = HashMap::new();
    let mut wrong = 0;
    for seq in SEQS {
        // The space is every device's: a GPU with no entry of its own takes it from another's.
        let point = [("seq", seq as i64)];
        let found = match find_entry(kernel, dir, Some(gpu), &point)? {
            Some(own) => Some(own),
            None => find_entry(kernel, dir, None, &point)?,
        };
        let Some((name, entry)) = found else {
            return Err(format!("no entry of {} at seq={seq} in {}", kernel.name(), dir.display()).into());
        };
        let checked = entry.spec.check()?;
        let space = checked.space();
        let points = space.valid_points().ok_or("the space is too large to enumerate")?;
        let configs: Vec<_> =
            points.iter().map(|p| space.config(p)).filter(|c| c.int("wgmma") == Some(wgmma)).collect();

        let len = BH * seq * d;
        let [qh, kh, vh] = attention_qkv(len);
        let (dq, dk, dv) = (stream.clone_htod(&qh)?, stream.clone_htod(&kh)?, stream.clone_htod(&vh)?);
        let nan = stream.clone_htod(&vec![0x7e00u16; len])?;
        let mut dout = stream.alloc_zeros::<u16>(len)?;
        let picks = attention_picks(BH, seq);
        let want = [false, true].map(|causal| attention_reference([&qh, &kh, &vh], &picks, (seq, d), causal));

        let mut runs = 0;
        for config in &configs {
            let key = format!("{config}");
            let function = match compiled.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let f = compile(kernel, ctx, config)?;
                    compiled.insert(key.clone(), f.clone());
                    f
                }
            };
            let mut launch = launch_config(checked.layout().launch(config)?.geometry());
            launch.grid_dim.1 = BH as u32; // the spec's grid is at its bench B·H
            for causal in [false, true] {
                stream.memcpy_dtod(&nan, &mut dout)?;
                let (seq_i, causal_i) = (seq as i32, causal as i32);
                // SAFETY: the buffers hold BH * seq * d halves; the config is valid at this seq (its tiles
                // divide it), and the grid covers BH slices of seq / bq blocks.
                unsafe {
                    stream
                        .launch_builder(&function)
                        .arg(&dq)
                        .arg(&dk)
                        .arg(&dv)
                        .arg(&mut dout)
                        .arg(&seq_i)
                        .arg(&causal_i)
                        .launch(launch)
                }?;
                let out = stream.clone_dtoh(&dout)?;
                let (err, written) = attention_error(&out, &picks, (seq, d), &want[causal as usize]);
                runs += 1;
                if !(err < 2e-3 && written) {
                    wrong += 1;
                    println!(
                        "  WRONG {} seq={seq} causal={causal}: max|err| {err:.2e}, written {written}: {key}",
                        kernel.name()
                    );
                }
            }
        }
        println!("{} seq={seq}: {} configs, {runs} outputs checked (spec from {name})", kernel.name(), configs.len());
    }
    Ok(wrong)
}
