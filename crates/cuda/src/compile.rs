//! NVRTC compilation of a kernel source with a config's `-D` defines, one config or a batch in parallel.
//!
//! Each config is one NVRTC program compiled for the device's real architecture (`sm_90a`,
//! [`crate::arch_name`]), so the result is a cubin that loads without a JIT step: the worker's load time
//! is then only the driver's, and the compile time we report is all of it. A compile error keeps NVRTC's
//! log, which names the line and the define that broke it.
//!
//! Parallelism: NVRTC is thread-safe but serialises compilations inside one process (on the H100 box, 32
//! vector-add configs took 663 ms on one thread and 727 ms on sixteen). So a batch is split into chunks
//! and each chunk compiled by a child process (`__worker` answering a `compile` request,
//! [`Compiler::compile_in_processes`]); [`Compiler::compile_all`] (threads in this process) stays as the
//! fallback when no child can be started.

use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use cudarc::nvrtc::{result, sys};

use super::{ensure_nvrtc, CudaError};
use crate::worker::protocol::{from_hex, Request, Response};

/// A compiled config.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The cubin.
    pub image: Vec<u8>,
    pub compile_ms: f64,
    /// NVRTC's log (warnings), usually empty.
    pub log: String,
}

/// A remembered cubin's key: the source's hash, the architecture, the options and the defines.
type MemoKey = (u64, String, Vec<String>, Vec<String>);

fn memo() -> &'static std::sync::Mutex<std::collections::HashMap<MemoKey, Compiled>> {
    static MEMO: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<MemoKey, Compiled>>> =
        std::sync::OnceLock::new();
    MEMO.get_or_init(Default::default)
}

/// Compiles one kernel source for one architecture.
#[derive(Clone, Debug)]
pub struct Compiler {
    kernel: String,
    file_name: String,
    arch: String,
    text: String,
    /// A hash of `text`, made once: the first part of the keys of [`Compiler::remember`].
    text_hash: u64,
    source: CString,
    name: CString,
    options: Vec<String>,
}

fn nvrtc_err(call: &'static str) -> impl Fn(result::NvrtcError) -> CudaError {
    move |e| CudaError::Nvrtc { call, message: format!("{e:?}") }
}

impl Compiler {
    /// `kernel` names the kernel in errors; `file_name` is the program name NVRTC uses in its log;
    /// `arch` is NVRTC's `--gpu-architecture` (`sm_90a`, [`crate::arch_name`]).
    pub fn new(kernel: &str, file_name: &str, source: &str, arch: &str) -> Result<Compiler, CudaError> {
        ensure_nvrtc()?;
        let source = CString::new(source).map_err(|_| CudaError::Nvrtc {
            call: "nvrtcCreateProgram",
            message: format!("the source of `{kernel}` contains a NUL byte"),
        })?;
        let name = CString::new(file_name.replace('\0', "")).expect("NULs removed");
        let mut options = vec![format!("--gpu-architecture={arch}"), "--std=c++17".to_owned()];
        // The toolkit's headers, for kernels that include <cuda_fp16.h> and friends.
        for dir in [std::env::var("CUDA_PATH").ok(), std::env::var("CUDA_HOME").ok(), Some("/usr/local/cuda".into())]
            .into_iter()
            .flatten()
        {
            let inc = std::path::Path::new(&dir).join("include");
            if inc.join("cuda_fp16.h").exists() {
                options.push(format!("--include-path={}", inc.display()));
                break;
            }
        }
        Ok(Compiler {
            kernel: kernel.to_owned(),
            file_name: file_name.to_owned(),
            arch: arch.to_owned(),
            text: source.to_str().expect("built from a str").to_owned(),
            text_hash: {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                source.hash(&mut h);
                h.finish()
            },
            source,
            name,
            options,
        })
    }

    /// The cubin of `defines` if this process compiled it before, for this source, architecture and
    /// options ([`Compiler::remember`]).
    pub fn remembered(&self, defines: &[String]) -> Option<Compiled> {
        memo().lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&self.memo_key(defines)).cloned()
    }

    /// Keeps a cubin for the rest of the process. A kernel tuned at several sizes (`sizes(…)`) passes
    /// its sizes as arguments, so a config's cubin is the same at every size: each tune after the first
    /// takes the configs it shares with an earlier one from here instead of running NVRTC again.
    pub fn remember(&self, defines: &[String], compiled: &Compiled) {
        memo()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(self.memo_key(defines), compiled.clone());
    }

    /// [`Compiler::compile`], unless this process compiled `defines` before ([`Compiler::remembered`]);
    /// the result is remembered.
    pub fn compile_once(&self, defines: &[String]) -> Result<Compiled, CudaError> {
        match self.remembered(defines) {
            Some(c) => Ok(c),
            None => self.compile(defines).inspect(|c| self.remember(defines, c)),
        }
    }

    fn memo_key(&self, defines: &[String]) -> MemoKey {
        (self.text_hash, self.arch.clone(), self.options.clone(), defines.to_vec())
    }

    /// Compiles with `defines` (`-DNAME=value` each).
    pub fn compile(&self, defines: &[String]) -> Result<Compiled, CudaError> {
        let start = Instant::now();
        let prog = result::create_program(&self.source, Some(&self.name)).map_err(nvrtc_err("nvrtcCreateProgram"))?;
        let mut opts = self.options.clone();
        opts.extend(defines.iter().cloned());
        let out = (|| {
            // SAFETY: `prog` is a live program; options are plain strings.
            let compiled = unsafe { result::compile_program(prog, &opts) };
            // SAFETY: as above; the log is NUL-terminated.
            let log = unsafe { result::get_program_log(prog) }
                .map(|raw| unsafe { CStr::from_ptr(raw.as_ptr()) }.to_string_lossy().trim().to_owned())
                .unwrap_or_default();
            if compiled.is_err() {
                return Err(CudaError::Compile { kernel: self.kernel.clone(), defines: defines.to_vec(), log });
            }
            let mut size = 0usize;
            // SAFETY: writes the size.
            unsafe { sys::nvrtcGetCUBINSize(prog, &mut size) }.result().map_err(nvrtc_err("nvrtcGetCUBINSize"))?;
            let mut image = vec![0u8; size];
            // SAFETY: `image` has the size NVRTC reported.
            unsafe { sys::nvrtcGetCUBIN(prog, image.as_mut_ptr() as *mut c_char) }
                .result()
                .map_err(nvrtc_err("nvrtcGetCUBIN"))?;
            Ok(Compiled { image, compile_ms: 0.0, log })
        })();
        // SAFETY: destroyed once, after its last use.
        let _ = unsafe { result::destroy_program(prog) };
        out.map(|c| Compiled { compile_ms: start.elapsed().as_secs_f64() * 1e3, ..c })
    }

    /// Compiles every define set on `threads` threads; results in input order.
    pub fn compile_all(&self, defines: &[Vec<String>], threads: usize) -> Vec<Result<Compiled, CudaError>> {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Result<Compiled, CudaError>>>> =
            defines.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..threads.clamp(1, defines.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(d) = defines.get(i) else { break };
                    let r = self.compile(d);
                    *results[i].lock().expect("no thread panics while holding it") = Some(r);
                });
            }
        });
        results
            .into_iter()
            .map(|m| m.into_inner().expect("no thread panicked").expect("every index was compiled"))
            .collect()
    }
}

impl Compiler {
    /// Compiles every define set in up to `procs` child processes of `exe` (`__worker`), each taking a
    /// contiguous chunk; results in input order. A chunk whose child cannot be started or dies is
    /// compiled here instead.
    pub fn compile_in_processes(
        &self,
        exe: &Path,
        defines: &[Vec<String>],
        procs: usize,
    ) -> Vec<Result<Compiled, CudaError>> {
        if defines.is_empty() {
            return Vec::new();
        }
        let chunk = defines.len().div_ceil(procs.max(1));
        let mut results: Vec<Option<Result<Compiled, CudaError>>> = (0..defines.len()).map(|_| None).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = defines
                .chunks(chunk)
                .enumerate()
                .map(|(c, part)| s.spawn(move || (c * chunk, self.compile_in_child(exe, part))))
                .collect();
            for h in handles {
                let (offset, part) = h.join().expect("a compile thread does not panic");
                for (i, r) in part {
                    results[offset + i] = Some(r);
                }
            }
        });
        results.into_iter().zip(defines).map(|(r, d)| r.unwrap_or_else(|| self.compile(d))).collect()
    }

    /// One child compiling `part`; missing entries are the caller's to redo.
    fn compile_in_child(&self, exe: &Path, part: &[Vec<String>]) -> Vec<(usize, Result<Compiled, CudaError>)> {
        let request = Request::Compile {
            kernel: self.kernel.clone(),
            file_name: self.file_name.clone(),
            source: self.text.clone(),
            arch: self.arch.clone(),
            jobs: part.to_vec(),
        };
        let child =
            Command::new(exe).arg(crate::serve::WORKER_ARG).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn();
        let Ok(mut child) = child else { return Vec::new() };
        let line = serde_json::to_string(&request).expect("requests always serialise");
        if let Some(mut stdin) = child.stdin.take() {
            // A write error shows up as missing answers, compiled here instead.
            let _ = writeln!(stdin, "{line}");
        }
        let mut out = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(Response::Compiled { index, image, log, compile_ms }) = serde_json::from_str(&line) {
                    let Some(defines) = part.get(index) else { continue };
                    let r = match image.as_deref().map(from_hex) {
                        Some(Some(image)) => Ok(Compiled { image, compile_ms, log }),
                        _ => Err(CudaError::Compile { kernel: self.kernel.clone(), defines: defines.clone(), log }),
                    };
                    out.push((index, r));
                }
            }
        }
        let _ = child.wait();
        out
    }
}

/// Threads to compile with: every CPU.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(4)
}

/// Compiles `source` with NVRTC for the architecture of `ctx`'s device with `defines`, and loads it
/// there: what a tuned launcher does at its first launch on a device.
pub fn load_module(
    ctx: &std::sync::Arc<cudarc::driver::CudaContext>,
    kernel: &str,
    file_name: &str,
    source: &str,
    defines: &[String],
) -> Result<std::sync::Arc<cudarc::driver::CudaModule>, CudaError> {
    use super::DriverContext;
    let (major, minor) = ctx.compute_capability().call("cuDeviceGetAttribute")?;
    let compiled =
        Compiler::new(kernel, file_name, source, &crate::arch_name((major as u32, minor as u32)))?.compile(defines)?;
    ctx.load_module(cudarc::nvrtc::Ptx::from_binary(compiled.image)).call("cuModuleLoadData")
}

/// The entry point `entry` of a loaded module, allowed all the shared memory per block the device has
/// beside the kernel's static shared memory: a launch asking for more than 48 KiB of dynamic shared
/// memory (a config's `shared` expression) needs that opt-in, and a launch asking for more than the
/// device has fails with the driver's error.
pub fn load_function(
    ctx: &std::sync::Arc<cudarc::driver::CudaContext>,
    module: &std::sync::Arc<cudarc::driver::CudaModule>,
    entry: &str,
) -> Result<cudarc::driver::CudaFunction, CudaError> {
    use super::DriverContext;
    use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute};
    let function = module.load_function(entry).call("cuModuleGetFunction")?;
    let most = ctx
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
        .call("cuDeviceGetAttribute")?;
    // The opt-in covers static and dynamic shared memory together.
    let fixed = function.shared_size_bytes().call("cuFuncGetAttribute")?;
    function
        .set_attribute(CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (most - fixed).max(0))
        .call("cuFuncSetAttribute")?;
    Ok(function)
}
