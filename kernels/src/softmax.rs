//! Row softmax over a `rows x cols` fp32 matrix: one read pass (online max and sum), one write pass.
//!
//! The space: threads per block, rows per block, vectors per thread per chunk (`items`), vector width
//! (`vec`), and the reduction (`reduce`: 0 warp shuffles, 1 shared-memory tree). When one chunk covers a
//! row the values stay in registers between the passes.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, PushKernelArg};
use tuner_runtime::autotune;

use crate::{int, same_len, KernelError};

#[autotune(
    kernel = "cuda/softmax.cu", entry = "softmax",
    space(block = [32, 64, 128, 256, 512, 1024], rpb = [1, 2, 4, 8], items = [1, 2, 4, 8, 16],
          vec = [1, 2, 4], reduce = [0, 1]),
    constraint = "block % rpb == 0 && block / rpb >= 8",
    constraint = "cols % (block / rpb * items * vec) == 0",
    constraint = "items * vec <= 32",
    default(block = 256, rpb = 1, items = 4, vec = 4, reduce = 0),
    sizes([rows = 4096, cols = 4096], [rows = 1024, cols = 16384]),
    bench(rows = 4096, cols = 4096, args = [in f32[rows * cols], out f32[rows * cols], rows, cols],
          grid = "ceil_div(rows, rpb)", block = "block", bytes = "8 * rows * cols"),
)]
pub fn softmax(
    stream: &Arc<CudaStream>,
    x: &CudaSlice<f32>,
    y: &mut CudaSlice<f32>,
    (rows, cols): (usize, usize),
) -> Result<(), KernelError> {
    same_len("softmax", &[("rows * cols", rows * cols), ("x", x.len()), ("y", y.len())])?;
    // The nearest tuned shape's config whose chunk divides `cols` (else the default, else an error).
    let plan = KERNEL.plan(stream, &[rows as i64, cols as i64])?;
    let (rows, cols) = (int("softmax", "rows", rows)?, int("softmax", "cols", cols)?);
    // SAFETY: x and y hold rows * cols floats (checked), and the plan's chunk divides `cols`.
    unsafe { stream.launch_builder(&plan.function).arg(x).arg(y).arg(&rows).arg(&cols).launch(plan.launch) }?;
    Ok(())
}
