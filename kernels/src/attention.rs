//! Attention forward, flash-attention style: fp16 Q, K, V in, fp32 scores and accumulation, fp16 out;
//! K and V stream through shared memory in tiles with an online softmax, head dimension 64.
//!
//! The space: query rows per block (`bq`) and per thread (`rows`), keys per tile (`bkv`) and per
//! online-softmax step (`chunk`), tile precision
//! in shared memory (`kv_half`), and `exp2` versus `exp`.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, PushKernelArg};
use tuner_runtime::autotune;

use crate::{int, same_len, KernelError};

#[autotune(
    kernel = "cuda/attention.cu", entry = "attention",
    space(bq = [32, 64, 128, 256], rows = [1, 2], bkv = [16, 32, 64, 128], chunk = [4, 8, 16],
          kv_half = [0, 1], exp2 = [0, 1]),
    constraint = "bq / rows >= 32",
    constraint = "chunk <= bkv && rows * chunk <= 16",
    constraint = "bkv * 64 * 2 * (4 - 2 * kv_half) <= 49152",
    constraint = "seq % bq == 0 && seq % bkv == 0 && d == 64",
    default(bq = 64, rows = 1, bkv = 32, chunk = 8, kv_half = 0, exp2 = 1),
    bench(bh = 32, seq = 2048, d = 64,
          args = [in f16[bh * seq * d], in f16[bh * seq * d], in f16[bh * seq * d], out f16[bh * seq * d], seq],
          grid = ["seq / bq", "bh"], block = "bq / rows",
          flops = "4 * bh * seq * seq * d", bytes = "8 * bh * seq * d"),
)]
pub fn attention(
    stream: &Arc<CudaStream>,
    q: &CudaSlice<u16>,
    k: &CudaSlice<u16>,
    v: &CudaSlice<u16>,
    o: &mut CudaSlice<u16>,
    (bh, seq): (usize, usize),
) -> Result<(), KernelError> {
    let len = bh * seq * 64;
    same_len("attention", &[("bh * seq * 64", len), ("q", q.len()), ("k", k.len()), ("v", v.len()), ("o", o.len())])?;
    let plan = KERNEL.plan(stream, &[bh as i64, seq as i64, 64])?;
    let seq = int("attention", "seq", seq)?;
    // SAFETY: Q, K, V and O hold bh * seq * 64 halves each (checked), and the plan's tiles divide `seq`.
    unsafe { stream.launch_builder(&plan.function).arg(q).arg(k).arg(v).arg(o).arg(&seq).launch(plan.launch) }?;
    Ok(())
}
