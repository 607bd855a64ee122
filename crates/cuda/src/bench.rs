//! One GPU, one kernel spec: buffers, the reference outputs, and the measurement of one config.
//!
//! This runs inside a worker process, which owns the context. Buffers are allocated once from the
//! layout (their sizes do not depend on the config) and inputs uploaded once from
//! [`random_bytes`](crate::verify::random_bytes). For each config:
//!
//! 1. load the cubin and look up the entry; raise the dynamic shared memory limit when the config asks
//!    for more than the default 48 KiB (and refuse it beyond the device's opt-in limit);
//! 2. restore `inout` buffers from a pristine copy and poison `out` buffers with all-ones bytes;
//! 3. launch once, synchronise, and compare every output with the reference's;
//! 4. warm up (at least `warmup_ms`, at least once), then time `min_runs..=max_runs` launches with CUDA
//!    events, each after an L2 flush (a memset of twice the L2 size), all queued before one
//!    synchronisation so host overhead stays out of the gaps;
//! 5. report the median, min and max.
//!
//! Any driver error is classified with
//! [`classify_driver_error`](crate::worker::protocol::classify_driver_error); errors that poison the
//! context are reported as `sticky`, and the worker exits after answering so a fresh one takes over.

use std::sync::Arc;
use std::time::Instant;

use cudarc::driver::sys::{CUevent_flags, CUfunction_attribute};
use cudarc::driver::{result, CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, DevicePtr, PushKernelArg};
use cudarc::nvrtc::Ptx;

use super::{CudaError, DriverContext};
use crate::verify::{compare_parallel, first_nan, random_bytes};
use crate::worker::protocol::{
    classify_driver_error, tolerance, BenchOptions, EvalResult, Failure, FailureKind, GpuInfo, Measurement,
};
use tuner_spec::config::Config;
use tuner_spec::layout::{BoundArg, Launch, Layout, ScalarValue};
use tuner_spec::spec::{Access, ElemType, KernelSpec};
use tuner_spec::CheckedSpec;

struct Buffer {
    access: Access,
    elem: ElemType,
    bytes: usize,
    dev: CudaSlice<u8>,
    ptr: u64,
    /// The initial contents of an `inout` buffer, restored before each checked launch.
    pristine: Option<(CudaSlice<u8>, u64)>,
}

/// A failure and whether it poisoned the context.
pub struct Failed {
    pub failure: Failure,
    pub sticky: bool,
}

fn fail(kind: FailureKind, message: impl Into<String>) -> Failed {
    Failed { failure: Failure { kind, message: message.into() }, sticky: false }
}

fn from_cuda(e: CudaError) -> Failed {
    match e.driver_name() {
        Some(name) => {
            let (kind, sticky) = classify_driver_error(name);
            Failed { failure: Failure { kind, message: e.to_string() }, sticky }
        }
        None => fail(FailureKind::Launch, e.to_string()),
    }
}

/// Buffers and state for measuring configs of one spec on one device.
pub struct Bench {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    spec: KernelSpec,
    layout: Layout,
    options: BenchOptions,
    info: GpuInfo,
    buffers: Vec<Buffer>,
    /// For each argument, the index of its buffer.
    buffer_of_arg: Vec<Option<usize>>,
    flush: Option<(CudaSlice<u8>, u64, usize)>,
    events: Vec<(CudaEvent, CudaEvent)>,
    /// The reference outputs, per buffer (`None` for inputs).
    reference: Vec<Option<Vec<u8>>>,
    /// CPU threads for comparing outputs.
    threads: usize,
}

impl Bench {
    /// Creates the context on `info.ordinal`, allocates and fills the buffers.
    pub fn new(checked: &CheckedSpec, options: BenchOptions, info: GpuInfo) -> Result<Bench, CudaError> {
        let layout = checked.layout().clone();
        let ctx = CudaContext::new(info.ordinal).call("cuCtxCreate")?;
        // One stream, one thread: cudarc's per-buffer event tracking would only add work to each launch.
        // SAFETY: nothing else uses this context's buffers from another stream.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let mut buffers = Vec::new();
        let mut buffer_of_arg = vec![None; layout.args.len()];
        let mut uploads = Vec::new();
        for (arg, access, elem, len) in layout.buffers() {
            let bytes = len * elem.size();
            let mut dev = stream.alloc_zeros::<u8>(bytes).call("cuMemAlloc")?;
            let pristine = if access != Access::Out {
                let host = random_bytes(elem, len, options.seed.wrapping_add(arg as u64));
                stream.memcpy_htod(&host, &mut dev).call("cuMemcpyHtoD")?;
                let pristine = if access == Access::InOut {
                    let mut copy = stream.alloc_zeros::<u8>(bytes).call("cuMemAlloc")?;
                    stream.memcpy_htod(&host, &mut copy).call("cuMemcpyHtoD")?;
                    let ptr = copy.device_ptr(&stream).0;
                    Some((copy, ptr))
                } else {
                    None
                };
                uploads.push(host);
                pristine
            } else {
                None
            };
            let ptr = dev.device_ptr(&stream).0;
            buffer_of_arg[arg] = Some(buffers.len());
            buffers.push(Buffer { access, elem, bytes, dev, ptr, pristine });
        }
        let flush = if options.flush_l2 {
            let bytes = (2 * info.l2_bytes as usize).max(8 << 20);
            let buf = stream.alloc_zeros::<u8>(bytes).call("cuMemAlloc")?;
            let ptr = buf.device_ptr(&stream).0;
            Some((buf, ptr, bytes))
        } else {
            None
        };
        let events = (0..options.max_runs.max(options.min_runs).max(2))
            .map(|_| {
                Ok((
                    ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).call("cuEventCreate")?,
                    ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).call("cuEventCreate")?,
                ))
            })
            .collect::<Result<Vec<_>, CudaError>>()?;
        stream.synchronize().call("cuStreamSynchronize")?;
        drop(uploads);
        let reference = vec![None; buffers.len()];
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(4);
        Ok(Bench {
            ctx,
            stream,
            spec: checked.spec().clone(),
            layout,
            options,
            info,
            buffers,
            buffer_of_arg,
            flush,
            events,
            reference,
            threads,
        })
    }

    pub fn spec(&self) -> &KernelSpec {
        &self.spec
    }

    /// Measures the reference config and keeps its outputs; every later config is compared with them.
    pub fn run_reference(&mut self, config: &Config, image: &[u8]) -> Result<Measurement, CudaError> {
        let kernel = self.spec.name.clone();
        let reject =
            |reason: String| CudaError::Reference { kernel: kernel.clone(), config: config.to_string(), reason };
        let (m, outputs) = self.measure(config, image, false).map_err(|f| reject(f.failure.to_string()))?;
        for (i, out) in outputs.into_iter().enumerate() {
            if let Some(bytes) = &out {
                if let Some(at) = first_nan(self.buffers[i].elem, bytes) {
                    return Err(reject(format!("output buffer {i} has NaN at element {at} (unwritten or invalid)")));
                }
            }
            self.reference[i] = out;
        }
        Ok(m)
    }

    /// Measures `config` from its cubin; `sticky` says the context is poisoned.
    pub fn evaluate(&mut self, config: &Config, image: &[u8]) -> (EvalResult, bool) {
        match self.measure(config, image, true) {
            Ok((m, _)) => (EvalResult::Ok(m), false),
            Err(f) => (EvalResult::Failed(f.failure), f.sticky),
        }
    }

    fn measure(
        &mut self,
        config: &Config,
        image: &[u8],
        verify: bool,
    ) -> Result<(Measurement, Vec<Option<Vec<u8>>>), Failed> {
        let start = Instant::now();
        let launch = self.layout.launch(config).map_err(|e| fail(FailureKind::Resources, e.to_string()))?;
        if launch.shared > self.info.max_shared_per_block {
            return Err(fail(
                FailureKind::Resources,
                format!(
                    "{} bytes of dynamic shared memory; the device allows {}",
                    launch.shared, self.info.max_shared_per_block
                ),
            ));
        }
        if launch.threads_per_block() > 1024 {
            return Err(fail(
                FailureKind::Resources,
                format!("{} threads per block; at most 1024", launch.threads_per_block()),
            ));
        }
        let module =
            self.ctx.load_module(Ptx::from_binary(image.to_vec())).call("cuModuleLoadData").map_err(from_cuda)?;
        let func = module.load_function(&self.spec.entry).call("cuModuleGetFunction").map_err(from_cuda)?;
        let load_ms = start.elapsed().as_secs_f64() * 1e3;
        if launch.shared > 48 * 1024 {
            func.set_attribute(
                CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                launch.shared as i32,
            )
            .call("cuFuncSetAttribute")
            .map_err(from_cuda)?;
        }
        let registers = func.num_regs().call("cuFuncGetAttribute").map_err(from_cuda)?;
        let local_bytes = func.local_size_bytes().call("cuFuncGetAttribute").map_err(from_cuda)?;

        // The checked launch.
        self.reset_outputs().map_err(from_cuda)?;
        self.launch(&func, &launch).map_err(from_cuda)?;
        self.stream.synchronize().call("cuStreamSynchronize").map_err(from_cuda)?;
        let mut outputs = vec![None; self.buffers.len()];
        let mut max_abs_err = 0.0f64;
        let mut worst_index = None;
        for (i, b) in self.buffers.iter().enumerate() {
            if !b.access.is_output() {
                continue;
            }
            let mut host = vec![0u8; b.bytes];
            self.stream.memcpy_dtoh(&b.dev, &mut host).call("cuMemcpyDtoH").map_err(from_cuda)?;
            self.stream.synchronize().call("cuStreamSynchronize").map_err(from_cuda)?;
            if verify {
                let reference = self.reference[i].as_ref().expect("the reference ran at start");
                let (atol, rtol) = tolerance(b.elem);
                let s = self.options.tolerance_scale;
                let c = compare_parallel(b.elem, &host, reference, (atol * s, rtol * s), self.threads);
                if !c.ok() {
                    let (at, got, want) = c.worst.expect("a mismatch has a worst element");
                    return Err(fail(
                        FailureKind::WrongOutput,
                        format!(
                            "{} of {} elements of output buffer {i} differ from the reference; worst at {at}: {got} instead of {want}",
                            c.mismatches,
                            b.bytes / b.elem.size()
                        ),
                    ));
                }
                if c.max_abs_err > max_abs_err {
                    max_abs_err = c.max_abs_err;
                    worst_index = c.worst.map(|w| w.0);
                }
            }
            outputs[i] = Some(host);
        }

        // Estimate one launch, warm up, then time.
        let (e0, e1) = &self.events[0];
        e0.record(&self.stream).call("cuEventRecord").map_err(from_cuda)?;
        self.launch(&func, &launch).map_err(from_cuda)?;
        e1.record(&self.stream).call("cuEventRecord").map_err(from_cuda)?;
        let estimate = e0.elapsed_ms(e1).call("cuEventElapsedTime").map_err(from_cuda)? as f64;
        let estimate = estimate.max(1e-3);
        let warmups = ((self.options.warmup_ms / estimate).ceil() as usize).clamp(1, 1000);
        for _ in 0..warmups {
            self.launch(&func, &launch).map_err(from_cuda)?;
        }
        let runs = ((self.options.budget_ms / estimate) as usize)
            .clamp(self.options.min_runs.max(5), self.events.len().max(5));
        let runs = runs.min(self.events.len());
        for r in 0..runs {
            if let Some((_, ptr, bytes)) = &self.flush {
                // SAFETY: `ptr` is the flush buffer's own allocation of `bytes` bytes, alive in `self`.
                unsafe { result::memset_d8_async(*ptr, (r & 0xff) as u8, *bytes, self.stream.cu_stream()) }
                    .call("cuMemsetD8Async")
                    .map_err(from_cuda)?;
            }
            self.events[r].0.record(&self.stream).call("cuEventRecord").map_err(from_cuda)?;
            self.launch(&func, &launch).map_err(from_cuda)?;
            self.events[r].1.record(&self.stream).call("cuEventRecord").map_err(from_cuda)?;
        }
        self.stream.synchronize().call("cuStreamSynchronize").map_err(from_cuda)?;
        let mut times = self.events[..runs]
            .iter()
            .map(|(a, b)| a.elapsed_ms(b).map(|t| t as f64))
            .collect::<Result<Vec<f64>, _>>()
            .call("cuEventElapsedTime")
            .map_err(from_cuda)?;
        times.sort_by(|a, b| a.total_cmp(b));
        let median = if runs % 2 == 1 { times[runs / 2] } else { (times[runs / 2 - 1] + times[runs / 2]) / 2.0 };
        Ok((
            Measurement {
                time_ms: median,
                min_ms: times[0],
                max_ms: times[runs - 1],
                runs,
                max_abs_err,
                worst_index,
                registers,
                local_bytes,
                load_ms,
                eval_ms: start.elapsed().as_secs_f64() * 1e3,
            },
            outputs,
        ))
    }

    /// Restores `inout` buffers and poisons `out` buffers (all-ones bytes: NaN for floats, -1 for ints).
    fn reset_outputs(&self) -> Result<(), CudaError> {
        for b in &self.buffers {
            match (&b.pristine, b.access) {
                // SAFETY: both pointers are live allocations of `b.bytes` bytes owned by `self`.
                (Some((_, src)), _) => {
                    unsafe { result::memcpy_dtod_async(b.ptr, *src, b.bytes, self.stream.cu_stream()) }
                        .call("cuMemcpyDtoDAsync")?
                }
                // SAFETY: as above.
                (None, Access::Out) => {
                    unsafe { result::memset_d8_async(b.ptr, 0xff, b.bytes, self.stream.cu_stream()) }
                        .call("cuMemsetD8Async")?
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn launch(&self, func: &CudaFunction, launch: &Launch) -> Result<(), CudaError> {
        let mut b = self.stream.launch_builder(func);
        for (i, arg) in self.layout.args.iter().enumerate() {
            match (arg, &launch.scalars[i]) {
                (BoundArg::Buffer { .. }, _) => {
                    let k = self.buffer_of_arg[i].expect("every buffer argument has a buffer");
                    b.arg(&self.buffers[k].dev);
                }
                (BoundArg::Scalar { .. }, Some(ScalarValue::I32(v))) => {
                    b.arg(v);
                }
                (BoundArg::Scalar { .. }, Some(ScalarValue::U32(v))) => {
                    b.arg(v);
                }
                (BoundArg::Scalar { .. }, Some(ScalarValue::I64(v))) => {
                    b.arg(v);
                }
                (BoundArg::Scalar { .. }, Some(ScalarValue::F32(v))) => {
                    b.arg(v);
                }
                (BoundArg::Scalar { .. }, None) => unreachable!("the layout gives every scalar a value"),
            }
        }
        let cfg = crate::launch_config(launch.geometry());
        // SAFETY: the arguments follow the spec's declared order and types; the kernel's own memory
        // safety is what this benchmark tests, and a fault only costs this worker process.
        unsafe { b.launch(cfg) }.call("cuLaunchKernel")?;
        Ok(())
    }
}
