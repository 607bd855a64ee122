//! Support for the code `#[autotune]` generates. Not public API: names and signatures here change
//! whenever the macro and the code generator change together.
//!
//! Generated code names everything through `::tuner_runtime::__private::…`, so a user crate needs no
//! imports and a rename elsewhere in this crate cannot break it.

pub use crate::value::Value;

/// The best config of one device, as the generated `ENTRIES` table lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceEntry<T: 'static> {
    /// The GPU name the driver reports.
    pub device: &'static str,
    pub compute_capability: (u32, u32),
    pub config: T,
}

/// The config of the entry matching the GPU `name` with `compute_capability`: both must be equal, since
/// a config tuned for one GPU says little about another.
pub fn select<T: Copy>(entries: &[DeviceEntry<T>], name: &str, compute_capability: (u32, u32)) -> Option<T> {
    entries.iter().find(|e| e.device == name && e.compute_capability == compute_capability).map(|e| e.config)
}

/// The name and compute capability of the GPU this process runs on (device 0 of the visible devices),
/// or `None` when there is none or the crate was built without the `cuda` feature.
pub fn running_device() -> Option<(String, (u32, u32))> {
    #[cfg(feature = "cuda")]
    {
        use cudarc::driver::CudaContext;
        // SAFETY: only asks the loader whether the driver library can be opened.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return None;
        }
        let ctx = CudaContext::new(0).ok()?;
        let (major, minor) = ctx.compute_capability().ok()?;
        Some((ctx.name().ok()?, (u32::try_from(major).ok()?, u32::try_from(minor).ok()?)))
    }
    #[cfg(not(feature = "cuda"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_needs_name_and_compute_capability() {
        let entries = [
            DeviceEntry { device: "NVIDIA H100 80GB HBM3", compute_capability: (9, 0), config: 1 },
            DeviceEntry { device: "NVIDIA A100-SXM4-80GB", compute_capability: (8, 0), config: 2 },
        ];
        assert_eq!(select(&entries, "NVIDIA H100 80GB HBM3", (9, 0)), Some(1));
        assert_eq!(select(&entries, "NVIDIA A100-SXM4-80GB", (8, 0)), Some(2));
        assert_eq!(select(&entries, "NVIDIA H100 80GB HBM3", (8, 0)), None);
        assert_eq!(select(&entries, "NVIDIA L4", (8, 9)), None);
    }
}
