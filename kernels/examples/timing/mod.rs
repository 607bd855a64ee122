//! How the comparison examples time a launch: the median of many CUDA-event timings, each after a
//! 256 MiB memset that evicts the L2 (50 MiB on an H100), after warm-up launches.

use std::sync::Arc;

use cudarc::driver::{sys::CUevent_flags, CudaSlice, CudaStream};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub const WARMUP: usize = 10;
pub const RUNS: usize = 100;

#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

pub struct Timer {
    stream: Arc<CudaStream>,
    flush: CudaSlice<u8>,
}

impl Timer {
    pub fn new(stream: &Arc<CudaStream>) -> Result<Timer> {
        Ok(Timer { stream: stream.clone(), flush: stream.alloc_zeros::<u8>(256 << 20)? })
    }

    /// Median of `RUNS` event-timed calls of `f`, each after an L2 flush, after `WARMUP` calls.
    pub fn time(&mut self, mut f: impl FnMut() -> Result<()>) -> Result<Stats> {
        for _ in 0..WARMUP {
            f()?;
        }
        self.stream.synchronize()?;
        let mut ts = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            self.stream.memset_zeros(&mut self.flush)?;
            let start = self.stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
            f()?;
            let end = self.stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
            ts.push(start.elapsed_ms(&end)? as f64);
        }
        ts.sort_by(|a, b| a.total_cmp(b));
        Ok(Stats { median: ts[ts.len() / 2], min: ts[0], max: ts[ts.len() - 1], runs: ts.len() })
    }
}
