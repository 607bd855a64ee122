//! Vector add: `c = a + b`, the memory-bound baseline (12 bytes moved per element).

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, PushKernelArg};
use tuner_runtime::autotune;

use crate::{int, same_len, KernelError};

#[autotune(
    kernel = "cuda/vector_add.cu", entry = "vector_add",
    space(block = [64, 128, 256, 512, 1024], items = [1, 2, 4, 8], vec = [1, 2, 4]),
    constraint = "block * items * vec <= 16384",
    default(block = 256, items = 1, vec = 1),
    sizes(n = [1 << 20, 1 << 26]),
    bench(n = 1 << 26, args = [in f32[n], in f32[n], out f32[n], n],
          grid = "ceil_div(n, block * items * vec)", block = "block", bytes = "12 * n"),
)]
pub fn vector_add(
    stream: &Arc<CudaStream>,
    a: &CudaSlice<f32>,
    b: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
) -> Result<(), KernelError> {
    let n = a.len();
    same_len("vector_add", &[("a", n), ("b", b.len()), ("c", c.len())])?;
    // The config tuned nearest this `n` on this stream's GPU, and its grid and block from the attribute.
    let plan = KERNEL.plan(stream, &[n as i64])?;
    let n = int("vector_add", "n", n)?;
    // SAFETY: the kernel reads `n` floats of `a` and `b` and writes `n` of `c`, whose lengths were checked.
    unsafe { stream.launch_builder(&plan.function).arg(a).arg(b).arg(c).arg(&n).launch(plan.launch) }?;
    Ok(())
}
