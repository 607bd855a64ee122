//! Our tuned CUDA kernels: one `cuda/<name>.cu` per family and an `#[autotune]` launcher in
//! `src/<name>.rs`. The tuned configs come from the committed cache in `autotune/` (see `cargo autotune
//! list`); a GPU without an entry runs each kernel's declared default.
//!
//! Launchers take cudarc buffers on a stream, check the buffer lengths, ask `KERNEL.plan` for the config
//! tuned nearest the launch's sizes on the stream's GPU (a config whose tiles fit them; else the default)
//! with its grid and block from the attribute, compile it with NVRTC at its first launch on each device,
//! and launch it. fp16 buffers are passed
//! as `u16` bit patterns.

pub mod attention;
pub mod flash_attention;
pub mod half;
pub mod sgemm;
pub mod softmax;
pub mod vector_add;

pub use attention::attention;
pub use flash_attention::flash_attention;
pub use sgemm::sgemm;
pub use softmax::softmax;
pub use vector_add::vector_add;

/// Why a launch did not happen.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Cuda(Box<tuner_runtime::cuda::CudaError>),
    #[error(transparent)]
    Plan(#[from] tuner_runtime::LaunchError),
    #[error("CUDA launch failed")]
    Launch(#[from] cudarc::driver::DriverError),
    #[error("kernel `{kernel}`: {what} is {found}, expected {expected}")]
    Shape { kernel: &'static str, what: &'static str, found: usize, expected: usize },
    #[error("kernel `{kernel}`: {what} = {value} is not supported ({supported})")]
    Unsupported { kernel: &'static str, what: &'static str, value: usize, supported: &'static str },
    #[error("kernel `{kernel}`: {what} = {value} does not fit the kernel's 32-bit argument")]
    TooLarge { kernel: &'static str, what: &'static str, value: usize },
}

impl From<tuner_runtime::cuda::CudaError> for KernelError {
    fn from(e: tuner_runtime::cuda::CudaError) -> KernelError {
        // Boxed: a launcher's `Result` stays small.
        KernelError::Cuda(Box::new(e))
    }
}

/// `ceil(a / b)` for launch geometry.
pub fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Checks that every `(name, len)` has the first one's length.
pub(crate) fn same_len(kernel: &'static str, lens: &[(&'static str, usize)]) -> Result<(), KernelError> {
    let expected = lens[0].1;
    match lens.iter().find(|(_, l)| *l != expected) {
        Some((what, found)) => Err(KernelError::Shape { kernel, what, found: *found, expected }),
        None => Ok(()),
    }
}

/// A size as the kernel's `int` argument.
pub(crate) fn int(kernel: &'static str, what: &'static str, value: usize) -> Result<i32, KernelError> {
    i32::try_from(value).map_err(|_| KernelError::TooLarge { kernel, what, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every launcher has a generated table and a default that the declared space accepts.
    #[test]
    fn launchers_have_typed_defaults() {
        assert_eq!(vector_add::vector_add_tuning::Tuned::DEFAULT.block, 256);
        assert_eq!(sgemm::sgemm_tuning::Tuned::DEFAULT.bm, 128);
        assert_eq!(attention::attention_tuning::Tuned::DEFAULT.bq, 64);
        assert_eq!(softmax::softmax_tuning::Tuned::DEFAULT.block, 256);
        assert_eq!(flash_attention::flash_attention_hd64_tuning::Tuned::DEFAULT.hd, 64);
        assert_eq!(flash_attention::flash_attention_hd128_tuning::Tuned::DEFAULT.hd, 128);
        // With no GPU in this process the launchers use the defaults.
        let defines = vector_add::vector_add_tuning::KERNEL.defines();
        assert_eq!(defines, ["-DBLOCK=256", "-DITEMS=1", "-DVEC=1"]);
    }

    #[test]
    fn shapes_are_checked() {
        assert!(same_len("k", &[("a", 4), ("b", 4)]).is_ok());
        let e = same_len("k", &[("a", 4), ("b", 5)]).unwrap_err();
        assert_eq!(e.to_string(), "kernel `k`: b is 5, expected 4");
        assert!(int("k", "n", 1 << 40).is_err());
    }
}
