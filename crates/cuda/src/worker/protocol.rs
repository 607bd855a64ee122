//! The worker wire format: JSON Lines between the parent and a `cargo-autotune __worker` child.
//!
//! The parent writes [`Request`]s to the child's stdin, one JSON object per line; the child answers on
//! stdout with [`Response`]s (stdout carries nothing else; diagnostics go to stderr). Every message has a
//! `"type"`. A conversation is:
//!
//! ```text
//! → {"type":"init", "spec":{…}, "device":0, "options":{…}, "reference":{…}, "reference_image":"7f454c46…"}
//! ← {"type":"ready", "device":{…GpuInfo…}, "reference":{…Measurement…}}
//! → {"type":"eval", "id":7, "config":[["bm",128],…], "image":"7f454c46…"}
//! ← {"type":"result", "id":7, "result":{"status":"ok", "time_ms":1.92, …}}
//! ← {"type":"result", "id":8, "result":{"status":"failed", "kind":"wrong_output", "message":"…"}}
//! ← {"type":"fatal", "error":"…"}           (the child cannot go on; it exits after this)
//! ```
//!
//! Images are compiled kernels (cubins) in hex: the parent compiles, so a batch compiles in parallel on
//! every CPU while the GPU workers measure. `init` names the reference config and its image: the child
//! runs it first and keeps its outputs, which every later config must reproduce; a fresh child that
//! replaces a dead one does the same, so no state crosses process boundaries except these messages.

use serde::{Deserialize, Serialize};

use tuner_spec::spec::KernelSpec;
use tuner_spec::value::Value;

/// Parent → child.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// The first message: what to benchmark, where and how.
    Init(Box<InitRequest>),
    /// Measure one config from its compiled image.
    Eval { id: u64, config: Vec<(String, Value)>, image: String },
    /// Compile `jobs` (each a list of `-D` defines) with NVRTC and answer one `compiled` each, then exit.
    /// NVRTC serialises compilations inside one process, so parallel compilation needs processes.
    Compile { kernel: String, file_name: String, source: String, arch: String, jobs: Vec<Vec<String>> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitRequest {
    pub spec: KernelSpec,
    /// The CUDA device ordinal this child measures on.
    pub device: usize,
    pub options: BenchOptions,
    /// The reference config, whose outputs every other config must match.
    pub reference: Vec<(String, Value)>,
    pub reference_image: String,
}

/// How to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Seed of the random inputs (the same inputs in every child and every run).
    pub seed: u64,
    /// Launches before timing, at least this long in total (and at least one).
    pub warmup_ms: f64,
    /// Timed launches: at least `min_runs`, then more until `budget_ms` is spent or `max_runs` reached.
    pub min_runs: usize,
    pub max_runs: usize,
    pub budget_ms: f64,
    /// Overwrite a buffer larger than the L2 cache before every timed launch.
    pub flush_l2: bool,
    /// Multiplies the per-type tolerances of [`tolerance`].
    pub tolerance_scale: f64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            seed: 0x5eed,
            warmup_ms: 10.0,
            min_runs: 7,
            max_runs: 30,
            budget_ms: 50.0,
            flush_l2: true,
            tolerance_scale: 1.0,
        }
    }
}

/// The `(absolute, relative)` tolerance for comparing an output element of type `elem` with the
/// reference's: `|x - ref| <= atol + rtol * |ref|`. Different tilings sum in different orders, so float
/// outputs differ in the last bits; halves keep ~3 decimal digits; integers must match exactly.
pub fn tolerance(elem: tuner_spec::spec::ElemType) -> (f64, f64) {
    use tuner_spec::spec::ElemType::*;
    match elem {
        F32 => (1e-4, 1e-3),
        F16 => (1e-3, 1e-2),
        Bf16 => (1e-2, 2e-2),
        I32 => (0.0, 0.0),
    }
}

/// Child → parent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Initialised: the device and the reference config's own measurement.
    Ready { device: GpuInfo, reference: Measurement },
    /// `exiting`: the child exits after this message (the config poisoned its context), so the parent
    /// must not send it more work.
    Result {
        id: u64,
        result: EvalResult,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        exiting: bool,
    },
    /// One compiled job of a `compile` request: the cubin in hex, or `None` and NVRTC's log.
    Compiled { index: usize, image: Option<String>, log: String, compile_ms: f64 },
    /// The child cannot go on (no device, the reference fails); it exits after sending this.
    Fatal { error: String },
}

/// The GPU a child measures on. Name and compute capability identify the hardware; the rest is
/// provenance and sizing (the L2 size decides the flush buffer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (u32, u32),
    pub sm_count: u32,
    pub memory_bytes: u64,
    pub l2_bytes: u64,
    /// The most dynamic shared memory one block may opt into.
    pub max_shared_per_block: u32,
    /// `13.0` style versions.
    pub driver: String,
    pub nvrtc: String,
}

impl GpuInfo {
    /// NVRTC's `--gpu-architecture` for this device (`sm_90a`: [`crate::arch_name`]).
    pub fn arch(&self) -> String {
        crate::arch_name(self.compute_capability)
    }
}

/// The outcome of one config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EvalResult {
    Ok(Measurement),
    Failed(Failure),
}

impl EvalResult {
    /// The measured time (ms), when the config ran.
    pub fn time_ms(&self) -> Option<f64> {
        match self {
            EvalResult::Ok(m) => Some(m.time_ms),
            EvalResult::Failed(_) => None,
        }
    }
}

/// A valid measurement. Times are CUDA-event milliseconds of single launches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The median of the timed launches.
    pub time_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub runs: usize,
    /// The largest deviation from the reference, over every output element, and where it was.
    pub max_abs_err: f64,
    pub worst_index: Option<usize>,
    /// Registers per thread and local (spill) memory per thread, from the loaded function.
    pub registers: i32,
    pub local_bytes: i32,
    /// Module load time and the child's wall time for the whole evaluation.
    pub load_ms: f64,
    pub eval_ms: f64,
}

impl Measurement {
    /// `(max - min) / median`: how noisy this config's timings were.
    pub fn spread(&self) -> f64 {
        (self.max_ms - self.min_ms) / self.time_ms
    }
}

/// Why a config is invalid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// NVRTC rejected the source with these defines.
    Compile,
    /// The geometry cannot be launched (too many threads, too much shared memory, too many registers).
    Resources,
    /// The launch or the kernel failed (bad address, trap…).
    Launch,
    /// The outputs differ from the reference's.
    WrongOutput,
    /// The kernel did not finish in time; its child was killed.
    Timeout,
    /// The child died without answering.
    Crashed,
}

impl FailureKind {
    /// Kernel Tuner's `__error__` class for a table record.
    pub fn kernel_tuner_class(self) -> &'static str {
        match self {
            FailureKind::Compile => "CompilationFailedConfig",
            FailureKind::Resources => "InvalidConfig",
            FailureKind::Launch | FailureKind::WrongOutput | FailureKind::Timeout | FailureKind::Crashed => {
                "RuntimeFailedConfig"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Compile => "compile",
            FailureKind::Resources => "resources",
            FailureKind::Launch => "launch",
            FailureKind::WrongOutput => "wrong_output",
            FailureKind::Timeout => "timeout",
            FailureKind::Crashed => "crashed",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

/// Classifies a CUDA driver error by its name (`CUDA_ERROR_ILLEGAL_ADDRESS`): what kind of failure it
/// is, and whether it poisons the context (then the child reports the config and exits, and a fresh
/// child takes over). Names rather than numbers keep this testable without CUDA.
pub fn classify_driver_error(name: &str) -> (FailureKind, bool) {
    match name {
        "CUDA_ERROR_INVALID_VALUE"
        | "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"
        | "CUDA_ERROR_INVALID_CONFIGURATION"
        | "CUDA_ERROR_INVALID_IMAGE"
        | "CUDA_ERROR_NO_BINARY_FOR_GPU"
        | "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED"
        | "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE"
        | "CUDA_ERROR_NOT_FOUND" => (FailureKind::Resources, false),
        "CUDA_ERROR_ILLEGAL_ADDRESS"
        | "CUDA_ERROR_LAUNCH_FAILED"
        | "CUDA_ERROR_MISALIGNED_ADDRESS"
        | "CUDA_ERROR_ILLEGAL_INSTRUCTION"
        | "CUDA_ERROR_INVALID_ADDRESS_SPACE"
        | "CUDA_ERROR_INVALID_PC"
        | "CUDA_ERROR_HARDWARE_STACK_ERROR"
        | "CUDA_ERROR_ASSERT"
        | "CUDA_ERROR_LAUNCH_TIMEOUT"
        | "CUDA_ERROR_ECC_UNCORRECTABLE"
        | "CUDA_ERROR_CONTEXT_IS_DESTROYED" => (FailureKind::Launch, true),
        // Unknown errors are treated as poisoning: a fresh child costs a second, a poisoned one every
        // config after it.
        _ => (FailureKind::Launch, true),
    }
}

/// Hex encoding for compiled images (JSON has no bytes).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Decodes [`to_hex`]; `None` when the text is not hex of whole bytes.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes().chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json_lines() {
        let r = Request::Eval { id: 7, config: vec![("bm".into(), Value::Int(128))], image: "00ff".into() };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"type":"eval","id":7,"config":[["bm",128]],"image":"00ff"}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        let ok = Response::Result {
            id: 7,
            result: EvalResult::Failed(Failure { kind: FailureKind::WrongOutput, message: "x".into() }),
            exiting: false,
        };
        let line = serde_json::to_string(&ok).unwrap();
        assert_eq!(
            line,
            r#"{"type":"result","id":7,"result":{"status":"failed","kind":"wrong_output","message":"x"}}"#
        );
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), ok);
    }

    #[test]
    fn driver_errors_are_classified() {
        assert_eq!(classify_driver_error("CUDA_ERROR_INVALID_VALUE"), (FailureKind::Resources, false));
        assert_eq!(classify_driver_error("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"), (FailureKind::Resources, false));
        assert_eq!(classify_driver_error("CUDA_ERROR_ILLEGAL_ADDRESS"), (FailureKind::Launch, true));
        assert_eq!(classify_driver_error("CUDA_ERROR_SOMETHING_NEW"), (FailureKind::Launch, true));
        assert_eq!(FailureKind::Compile.kernel_tuner_class(), "CompilationFailedConfig");
        assert_eq!(FailureKind::Timeout.kernel_tuner_class(), "RuntimeFailedConfig");
    }

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
