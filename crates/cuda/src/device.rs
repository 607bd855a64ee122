//! The device fingerprint, read from the driver without creating a context.
//!
//! The parent process needs the compute capability to pick NVRTC's architecture before any worker
//! exists, and must not hold a GPU context of its own (the workers own the GPUs), so this reads device
//! attributes only: name, compute capability, SM count, memory, L2 size, the opt-in shared memory limit,
//! and the driver and NVRTC versions.

use cudarc::driver::result;
use cudarc::driver::sys::CUdevice_attribute as A;

use super::{ensure_driver, ensure_nvrtc, CudaError, DriverContext};
use crate::worker::GpuInfo;
use tuner_spec::device::{choose_devices, DeviceFingerprint};

/// Describes CUDA device `ordinal`.
pub fn query_device(ordinal: usize) -> Result<GpuInfo, CudaError> {
    ensure_driver()?;
    result::init().call("cuInit")?;
    let count = result::device::get_count().call("cuDeviceGetCount")?;
    if ordinal as i64 >= count as i64 {
        return Err(CudaError::Protocol(format!("device {ordinal} does not exist ({count} CUDA devices)")));
    }
    let dev = result::device::get(ordinal as i32).call("cuDeviceGet")?;
    // SAFETY: `dev` is a valid device handle from cuDeviceGet.
    let attr = |a: A| unsafe { result::device::get_attribute(dev, a) }.call("cuDeviceGetAttribute");
    let name = result::device::get_name(dev).call("cuDeviceGetName")?;
    // SAFETY: as above.
    let memory = unsafe { result::device::total_mem(dev) }.call("cuDeviceTotalMem")?;
    let mut driver = 0i32;
    // SAFETY: writes one int.
    unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut driver) }.result().call("cuDriverGetVersion")?;
    Ok(GpuInfo {
        ordinal,
        name,
        compute_capability: (
            attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)? as u32,
            attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)? as u32,
        ),
        sm_count: attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32,
        memory_bytes: memory as u64,
        l2_bytes: attr(A::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)? as u64,
        max_shared_per_block: attr(A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)? as u32,
        driver: format!("{}.{}", driver / 1000, (driver % 1000) / 10),
        nvrtc: nvrtc_version().unwrap_or_else(|e| format!("unavailable ({e})")),
    })
}

/// The GPUs a run measures on: `requested` ordinals (all of one model, else an error), or every visible
/// device of device 0's model. Devices of another model are returned as skipped so the caller can say so;
/// see [`choose_devices`] for why one run never mixes models.
pub fn select_devices(requested: Option<&[usize]>) -> Result<(Vec<GpuInfo>, Vec<GpuInfo>), CudaError> {
    let ordinals: Vec<usize> = match requested {
        Some(list) => list.to_vec(),
        None => {
            ensure_driver()?;
            result::init().call("cuInit")?;
            let count = result::device::get_count().call("cuDeviceGetCount")?;
            (0..count.max(0) as usize).collect()
        }
    };
    let infos = ordinals.iter().map(|&o| query_device(o)).collect::<Result<Vec<_>, _>>()?;
    let found = infos.iter().map(|g| (g.ordinal, DeviceFingerprint::from(g))).collect();
    let (chosen, skipped) = choose_devices(found, requested.is_some())?;
    let pick = |list: &[(usize, DeviceFingerprint)]| -> Vec<GpuInfo> {
        infos.iter().filter(|g| list.iter().any(|(o, _)| *o == g.ordinal)).cloned().collect()
    };
    Ok((pick(&chosen), pick(&skipped)))
}

/// NVRTC's version, `13.0` style.
pub fn nvrtc_version() -> Result<String, CudaError> {
    ensure_nvrtc()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    r.result().map_err(|e| CudaError::Nvrtc { call: "nvrtcVersion", message: format!("{e:?}") })?;
    Ok(format!("{major}.{minor}"))
}
