//! Attention forward on the tensor cores (`cuda/flash_attention.cu`, FlashAttention-2 structure):
//! fp16 Q, K, V in, fp32 scores and accumulation, fp16 out, head dimension 64 or 128, optional causal mask.
//!
//! Two tuned launchers, one per head dimension, behind [`flash_attention`]: the head dimension sizes the
//! kernel's register arrays, so it is a compile-time constant, and the best tiles differ between 64 and
//! 128 (a 128-wide head holds twice the accumulators per thread). As one launcher with the head dimension
//! in its space, one declared default could not fit both. The two attributes differ only in `hd`; they are
//! written out because the build script reads `#[autotune]` attributes from the source, where a
//! `macro_rules!` that stamped them out would hide them. The CUDA-core kernel ([`crate::attention`])
//! stays a launcher of its own: its space (rows per thread, softmax chunk, tile precision) has no axis in
//! common with this one, and its committed entries stay valid.
//!
//! The space: query rows per block (`bq`) and 16-row m-tiles per warp (`wm`: a K or V fragment read from
//! shared memory feeds `wm` mma instructions), keys per tile (`bkv`), `cp.async` pipeline depth
//! (`stages`: K/V tiles in shared memory), shared layout (`swz`: padded rows or XOR-swizzled chunks), where
//! Q's fragments live (`qsm`: registers, or a shared tile re-read per K tile, which frees registers for
//! larger tiles at head dimension 128) and the blocks per SM `__launch_bounds__` asks for (`minb`, which
//! caps registers), and the tensor-core instruction (`wgmma`: `mma.sync`, which every GPU since Ampere
//! has, or Hopper's warpgroup `wgmma.mma_async`, which reads K and V straight from shared memory and
//! overlaps the softmax of one tile with the product of the one before; `wm` and `swz` are pinned for it).
//! The variant is a parameter rather than a launcher of its own because it shares the launch, the tiles,
//! the pipeline and the softmax with `mma.sync`, and the tuner finds out per GPU which wins: on a GPU
//! without `wgmma` its configs fail to compile and are passed over, and the default is `mma.sync`. With
//! `wgmma` two K/V tiles are in use at once, so `stages = 2` loads the next tile without prefetching it
//! and 3 or 4 prefetch (the kernel's header says the rest). Tuned at sequence lengths 1024, 2048 and 4096
//! with B·H = 32, non-causal; a causal launch runs the same config.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use tuner_runtime::autotune;

use crate::{int, same_len, KernelError};

/// `O = softmax(Q Kᵀ / √d) V` over `bh` slices of `seq` × `d` fp16 values (bit patterns in `u16`), with
/// keys after each query masked out when `causal`. `d` is 64 or 128; `seq` must be a multiple of 64 (the
/// default's tiles), or of a tuned config's tiles (configs whose tiles do not divide it are passed over).
pub fn flash_attention(
    stream: &Arc<CudaStream>,
    q: &CudaSlice<u16>,
    k: &CudaSlice<u16>,
    v: &CudaSlice<u16>,
    o: &mut CudaSlice<u16>,
    (bh, seq, d): (usize, usize, usize),
    causal: bool,
) -> Result<(), KernelError> {
    match d {
        64 => flash_attention_hd64(stream, q, k, v, o, (bh, seq), causal),
        128 => flash_attention_hd128(stream, q, k, v, o, (bh, seq), causal),
        _ => Err(KernelError::Unsupported {
            kernel: "flash_attention",
            what: "head dimension d",
            value: d,
            supported: "64 or 128",
        }),
    }
}

#[autotune(
    kernel = "cuda/flash_attention.cu", entry = "flash_attention",
    space(hd = [64], bq = [32, 64, 128, 256], wm = [1, 2], bkv = [32, 64, 128], stages = [1, 2, 3, 4], swz = [0, 1],
          qsm = [0, 1], minb = [1, 2], wgmma = [0, 1]),
    constraint = "bq % (16 * wm) == 0",
    constraint = "wgmma == 0 || wm == 1 && swz == 1 && bq % 64 == 0 && stages >= 2 && bq * minb <= 256",
    constraint = "(stages * 2 * bkv + qsm * bq) * (hd + 8 * (1 - swz)) * 2 <= 232448",
    constraint = "seq % bq == 0 && seq % bkv == 0",
    default(hd = 64, bq = 64, wm = 1, bkv = 64, stages = 2, swz = 1, qsm = 0, minb = 1, wgmma = 0),
    sizes(seq = [1024, 2048, 4096]),
    bench(bh = 32, seq = 2048,
          args = [in f16[bh * seq * 64], in f16[bh * seq * 64], in f16[bh * seq * 64], out f16[bh * seq * 64], seq, 0],
          grid = ["seq / bq", "bh"], block = "bq / (16 * wm) * 32", shared = "(stages * 2 * bkv + qsm * bq) * (hd + 8 * (1 - swz)) * 2",
          flops = "4 * bh * seq * seq * 64", bytes = "8 * bh * seq * 64"),
)]
pub fn flash_attention_hd64(
    stream: &Arc<CudaStream>,
    q: &CudaSlice<u16>,
    k: &CudaSlice<u16>,
    v: &CudaSlice<u16>,
    o: &mut CudaSlice<u16>,
    (bh, seq): (usize, usize),
    causal: bool,
) -> Result<(), KernelError> {
    let plan = KERNEL.plan(stream, &[bh as i64, seq as i64])?;
    launch(stream, &plan.function, plan.launch, [q, k, v], o, (bh, seq, 64), causal)
}

#[autotune(
    kernel = "cuda/flash_attention.cu", entry = "flash_attention",
    space(hd = [128], bq = [32, 64, 128, 256], wm = [1, 2], bkv = [32, 64, 128], stages = [1, 2, 3, 4], swz = [0, 1],
          qsm = [0, 1], minb = [1, 2], wgmma = [0, 1]),
    constraint = "bq % (16 * wm) == 0",
    constraint = "wgmma == 0 || wm == 1 && swz == 1 && bq % 64 == 0 && stages >= 2 && bq * minb <= 256",
    constraint = "(stages * 2 * bkv + qsm * bq) * (hd + 8 * (1 - swz)) * 2 <= 232448",
    constraint = "seq % bq == 0 && seq % bkv == 0",
    default(hd = 128, bq = 64, wm = 1, bkv = 64, stages = 2, swz = 1, qsm = 0, minb = 1, wgmma = 0),
    sizes(seq = [1024, 2048, 4096]),
    bench(bh = 32, seq = 2048,
          args = [in f16[bh * seq * 128], in f16[bh * seq * 128], in f16[bh * seq * 128], out f16[bh * seq * 128], seq, 0],
          grid = ["seq / bq", "bh"], block = "bq / (16 * wm) * 32", shared = "(stages * 2 * bkv + qsm * bq) * (hd + 8 * (1 - swz)) * 2",
          flops = "4 * bh * seq * seq * 128", bytes = "8 * bh * seq * 128"),
)]
pub fn flash_attention_hd128(
    stream: &Arc<CudaStream>,
    q: &CudaSlice<u16>,
    k: &CudaSlice<u16>,
    v: &CudaSlice<u16>,
    o: &mut CudaSlice<u16>,
    (bh, seq): (usize, usize),
    causal: bool,
) -> Result<(), KernelError> {
    let plan = KERNEL.plan(stream, &[bh as i64, seq as i64])?;
    launch(stream, &plan.function, plan.launch, [q, k, v], o, (bh, seq, 128), causal)
}

/// Checks the buffers and launches a planned head-dimension variant.
fn launch(
    stream: &Arc<CudaStream>,
    function: &CudaFunction,
    config: LaunchConfig,
    [q, k, v]: [&CudaSlice<u16>; 3],
    o: &mut CudaSlice<u16>,
    (bh, seq, d): (usize, usize, usize),
    causal: bool,
) -> Result<(), KernelError> {
    let len = bh * seq * d;
    same_len(
        "flash_attention",
        &[("bh * seq * d", len), ("q", q.len()), ("k", k.len()), ("v", v.len()), ("o", o.len())],
    )?;
    let (seq, causal) = (int("flash_attention", "seq", seq)?, causal as i32);
    // SAFETY: Q, K, V and O hold bh * seq * d halves each (checked), the plan's tiles divide `seq`, and
    // its shared-memory size is the attribute's `shared` expression for the config.
    unsafe { stream.launch_builder(function).arg(q).arg(k).arg(v).arg(o).arg(&seq).arg(&causal).launch(config) }?;
    Ok(())
}
