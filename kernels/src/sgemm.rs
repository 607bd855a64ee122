//! SGEMM: `C = A * B` in fp32 (row-major), 2D block tiling in shared memory with register sub-tiles.
//!
//! The space: block tile (`bm`, `bn`, `bk`), thread tile (`tm`, `tn`), global load width (`vec`), shared
//! padding (`pad`), thread-to-tile mapping (`map`) and double buffering (`db`). The constraints keep a
//! block at 64..=512 threads, make every thread load whole vectors, keep static shared memory within
//! 48 KiB and the accumulators within 128 registers, and require the tiles to divide the problem.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, PushKernelArg};
use tuner_runtime::autotune;

use crate::{int, same_len, KernelError};

#[autotune(
    kernel = "cuda/sgemm.cu", entry = "sgemm",
    space(bm = [32, 64, 128, 256], bn = [32, 64, 128, 256], bk = [8, 16, 32], tm = [2, 4, 8, 16],
          tn = [2, 4, 8, 16], vec = [1, 2, 4], pad = [0, 4], map = [0, 1], db = [0, 1]),
    constraint = "bm % tm == 0 && bn % tn == 0",
    constraint = "bm / tm * (bn / tn) >= 64 && bm / tm * (bn / tn) <= 512",
    constraint = "bm * bk % (vec * (bm / tm) * (bn / tn)) == 0 && bk * bn % (vec * (bm / tm) * (bn / tn)) == 0",
    constraint = "bm * bk / (vec * (bm / tm) * (bn / tn)) <= 16 && bk * bn / (vec * (bm / tm) * (bn / tn)) <= 16",
    constraint = "(bk * (bm + pad) + bk * (bn + pad)) * 4 * (1 + db) <= 49152",
    constraint = "tm * tn <= 128",
    constraint = "m % bm == 0 && n % bn == 0 && k % bk == 0",
    default(bm = 128, bn = 128, bk = 8, tm = 8, tn = 8, vec = 4, pad = 4, map = 0, db = 1),
    sizes([m = 1024, n = 1024, k = 1024], [m = 4096, n = 4096, k = 4096], [m = 16384, n = 256, k = 4096]),
    bench(m = 4096, n = 4096, k = 4096, args = [in f32[m * k], in f32[k * n], out f32[m * n], m, n, k],
          grid = ["n / bn", "m / bm"], block = "bm / tm * (bn / tn)",
          flops = "2 * m * n * k", bytes = "4 * (m * k + k * n + m * n)"),
)]
pub fn sgemm(
    stream: &Arc<CudaStream>,
    a: &CudaSlice<f32>,
    b: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
    (m, n, k): (usize, usize, usize),
) -> Result<(), KernelError> {
    same_len("sgemm", &[("a", m * k), ("a.len()", a.len())])?;
    same_len("sgemm", &[("b", k * n), ("b.len()", b.len())])?;
    same_len("sgemm", &[("c", m * n), ("c.len()", c.len())])?;
    // The config of the nearest tuned shape on this stream's GPU whose tiles divide (m, n, k), else the
    // default; its grid and block come from the attribute's `grid` and `block` expressions.
    let plan = KERNEL.plan(stream, &[m as i64, n as i64, k as i64])?;
    let (m, n, k) = (int("sgemm", "m", m)?, int("sgemm", "n", n)?, int("sgemm", "k", k)?);
    // SAFETY: A is m x k, B is k x n and C is m x n (checked above), and the plan's tiles divide them.
    unsafe { stream.launch_builder(&plan.function).arg(a).arg(b).arg(c).arg(&m).arg(&n).arg(&k).launch(plan.launch) }?;
    Ok(())
}
