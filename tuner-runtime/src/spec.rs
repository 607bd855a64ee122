//! What an `#[autotune(...)]` attribute declares: the kernel, its space and how to benchmark it.
//!
//! This module is light on purpose (no CUDA, no network): the build script parses attributes into a
//! [`KernelSpec`] with it, the cache hashes and stores the spec, the CUDA benchmark runs it, and the
//! proc-macro validates the same syntax. The spec is plain data and serialises to JSON as it is stored in
//! cache entries.
//!
//! Attribute grammar (see DESIGN.md):
//!
//! ```text
//! #[autotune(
//!     kernel = "cuda/vector_add.cu", entry = "vector_add",
//!     space(block = [64, 128, 256], items = [1, 2, 4]),
//!     constraint = "block * items <= 8192",            // may repeat
//!     default(block = 256, items = 1),                 // optional; else the first valid config
//!     bench(n = 1 << 26, args = [in f32[n], in f32[n], out f32[n], n],
//!           grid = "ceil_div(n, block * items)", block = "block", shared = "0", bytes = "12 * n"),
//! )]
//! ```
//!
//! TODO(cuda helper): the parser from attribute tokens (`KernelSpec::parse`) lives here.

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// Everything one annotated launcher declares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelSpec {
    /// The launcher function's name (`vector_add`).
    pub name: String,
    /// The kernel source path, relative to the crate root (`cuda/vector_add.cu`).
    pub kernel: String,
    /// The `extern "C" __global__` entry point.
    pub entry: String,
    /// Parameters and their allowed values, in declaration order.
    pub params: Vec<(String, Vec<Value>)>,
    pub constraints: Vec<String>,
    /// The default config, when the attribute names one.
    pub default: Option<Vec<(String, Value)>>,
    pub bench: BenchSpec,
}

/// How to benchmark a kernel: problem sizes, arguments, launch geometry and throughput.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchSpec {
    /// Problem sizes, in order (`n = 1 << 26` is stored evaluated, `n = 67108864`).
    pub sizes: Vec<(String, i64)>,
    pub args: Vec<ArgSpec>,
    /// Grid dimensions (1 to 3 expressions over sizes and parameters).
    pub grid: Vec<String>,
    /// Block dimensions (1 to 3 expressions).
    pub block: Vec<String>,
    /// Dynamic shared memory in bytes (an expression), when the kernel uses it.
    pub shared: Option<String>,
    /// Bytes moved per launch, for GB/s.
    pub bytes: Option<String>,
    /// Floating-point operations per launch, for TFLOP/s.
    pub flops: Option<String>,
}

/// One kernel argument, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgSpec {
    /// A device buffer of `len` elements (an expression over sizes).
    Buffer { access: Access, elem: ElemType, len: String },
    /// A scalar passed by value (an expression over sizes and parameters).
    Scalar { ty: ScalarType, value: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    In,
    Out,
    InOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElemType {
    F32,
    F16,
    Bf16,
    I32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalarType {
    I32,
    U32,
    I64,
    F32,
}
