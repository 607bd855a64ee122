//! SGEMM: `C = A * B` in fp32 (row-major), 2D block tiling in shared memory with register sub-tiles.
//!
//! The space holds two kernels (`alg`). Both tile a block (`bm`, `bn`, `bk`) and give each thread a `tm`
//! x `tn` tile of C, so a block has `bm / tm * (bn / tn)` threads either way:
//!
//! - `alg = 0` loads through registers, with the global load width (`vec`), shared padding (`pad`), the
//!   thread-to-tile mapping (`map`) and double buffering (`db`); its shared memory is static, within 48 KiB.
//! - `alg = 1` tiles each warp (`wm` x `wn`, 32 lanes of `tm` x `tn`) and copies the tiles with `cp.async`
//!   in a pipeline of `stages` slices held in dynamic shared memory (up to 227 KiB). A is stored row-major
//!   (`atrans = 0`, 16-byte copies) or transposed (`atrans = 1`, 4-byte copies), its rows padded by `pad`
//!   floats. With `rdb = 1` a lane's fragments are double-buffered in registers: those of step k + 1 load
//!   from shared memory while step k multiplies, across the slice boundary too (the barrier for the next
//!   slice comes before the last step of the current one instead of at the top of the next).
//!
//! Both take `group`, the block rasterization: 1 runs the tiles of C in launch order (along N, then down
//! M); `group = g` walks down g tile rows before moving along N, so the blocks resident together share
//! more rows of A and columns of B in L2.
//!
//! A parameter one kernel ignores is pinned to one value for it (`alg = 0` has `wm = wn = 32`, `stages = 1`,
//! `atrans = 0`, `rdb = 0`; `alg = 1` has `vec = 4`, `map = 0`, `db = 0`), so no two configs compile the
//! same kernel. The other constraints keep a block at 64..=512 threads, make every thread load whole vectors, keep the
//! accumulators within 128 registers and an `alg = 1` thread's estimated registers within the register file,
//! and require the tiles to divide the problem. `alg = 1` also leaves out the small tiles (under 32
//! accumulators a thread or under 64 rows or columns a block), too slow to be worth the tuner's samples,
//! and `rdb = 1` with A row-major over 64 accumulators a thread (two sets of A's float4s do not fit in
//! registers beside them: ptxas puts the fragments in local memory).
//! The default is the `alg = 0` kernel.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, PushKernelArg};
use tuner_runtime::autotune;

use crate::{int, same_len, KernelError};

#[autotune(
    kernel = "cuda/sgemm.cu", entry = "sgemm",
    space(bm = [32, 64, 128, 256], bn = [32, 64, 128, 256], bk = [8, 16, 32], tm = [2, 4, 8, 16],
          tn = [2, 4, 8, 16], vec = [1, 2, 4], pad = [0, 4], map = [0, 1], db = [0, 1],
          alg = [0, 1], wm = [16, 32, 64, 128], wn = [16, 32, 64, 128], stages = [1, 2, 3, 4],
          atrans = [0, 1], rdb = [0, 1], group = [1, 8, 16]),
    constraint = "bm % tm == 0 && bn % tn == 0",
    constraint = "bm / tm * (bn / tn) >= 64 && bm / tm * (bn / tn) <= 512",
    constraint = "bm * bk % (vec * (bm / tm) * (bn / tn)) == 0 && bk * bn % (vec * (bm / tm) * (bn / tn)) == 0",
    constraint = "bm * bk / (vec * (bm / tm) * (bn / tn)) <= 16 && bk * bn / (vec * (bm / tm) * (bn / tn)) <= 16",
    constraint = "tm * tn <= 128",
    constraint = "m % bm == 0 && n % bn == 0 && k % bk == 0",
    constraint = "alg == 1 || wm == 32 && wn == 32 && stages == 1 && atrans == 0 && rdb == 0",
    constraint = "alg == 1 || (bk * (bm + pad) + bk * (bn + pad)) * 4 * (1 + db) <= 49152",
    constraint = "alg == 0 || vec == 4 && map == 0 && db == 0 && stages >= 2",
    constraint = "alg == 0 || bm % wm == 0 && bn % wn == 0 && wm % tm == 0 && wn % tn == 0 && tn % 4 == 0",
    constraint = "alg == 0 || wm / tm * (wn / tn) == 32",
    constraint = "alg == 0 || tm * tn >= 32 && bm >= 64 && bn >= 64",
    constraint = "atrans == 0 || tm % 4 == 0 && bm * bk % (bm / tm * (bn / tn)) == 0",
    constraint = "rdb == 0 || atrans == 1 || tm * tn <= 64",
    constraint = "alg == 0 || stages * (atrans * bk * (bm + pad) + (1 - atrans) * bm * (bk + pad) + bk * bn) * 4 <= 232448",
    constraint = "alg == 0 || bm / tm * (bn / tn) * (tm * tn + 4 * tm + tn + 24) <= 65536",
    default(bm = 128, bn = 128, bk = 8, tm = 8, tn = 8, vec = 4, pad = 4, map = 0, db = 1,
            alg = 0, wm = 32, wn = 32, stages = 1, atrans = 0, rdb = 0, group = 1),
    sizes([m = 1024, n = 1024, k = 1024], [m = 4096, n = 4096, k = 4096], [m = 16384, n = 256, k = 4096]),
    bench(m = 4096, n = 4096, k = 4096, args = [in f32[m * k], in f32[k * n], out f32[m * n], m, n, k],
          grid = ["n / bn", "m / bm"], block = "bm / tm * (bn / tn)",
          shared = "alg * stages * (atrans * bk * (bm + pad) + (1 - atrans) * bm * (bk + pad) + bk * bn) * 4",
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
