//! Row softmax over a `rows x cols` fp32 matrix: one read pass (online max and sum), one write pass.
//!
//! The space: threads per block, rows per block, vectors per thread per chunk (`items`), vector width
//! (`vec`), and the reduction (`reduce`: 0 warp shuffles, 1 shared-memory tree). When one chunk covers a
//! row the values stay in registers between the passes.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use tuner_runtime::autotune;

use crate::{ceil_div, dim, int, same_len, KernelError};

#[autotune(
    kernel = "cuda/softmax.cu", entry = "softmax",
    space(block = [32, 64, 128, 256, 512, 1024], rpb = [1, 2, 4, 8], items = [1, 2, 4, 8, 16],
          vec = [1, 2, 4], reduce = [0, 1]),
    constraint = "block % rpb == 0 && block / rpb >= 8",
    constraint = "cols % (block / rpb * items * vec) == 0",
    constraint = "items * vec <= 32",
    default(block = 256, rpb = 1, items = 4, vec = 4, reduce = 0),
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
    let chunk = (TUNED.block / TUNED.rpb * TUNED.items * TUNED.vec) as usize;
    if cols % chunk != 0 {
        return Err(KernelError::Tiles {
            kernel: "softmax",
            shape: format!("cols {cols}"),
            tiles: format!("chunk {chunk}"),
        });
    }
    let function = KERNEL.function(stream)?;
    let config = LaunchConfig {
        grid_dim: (dim("softmax", "grid", ceil_div(rows, TUNED.rpb as usize))?, 1, 1),
        block_dim: (TUNED.block, 1, 1),
        shared_mem_bytes: 0,
    };
    let (rows, cols) = (int("softmax", "rows", rows)?, int("softmax", "cols", cols)?);
    // SAFETY: x and y hold rows * cols floats (checked), and the chunk divides `cols`.
    unsafe { stream.launch_builder(&function).arg(x).arg(y).arg(&rows).arg(&cols).launch(config) }?;
    Ok(())
}
