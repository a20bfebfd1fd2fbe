//! Every unsafe call into the CUDA driver API, each with its `SAFETY:`
//! argument. Handles never leave this module except as opaque types.
#![allow(unsafe_code)]

use std::ffi::{c_void, CString};

use cudarc::driver::result::{self as cu, stream::StreamKind, DriverError};
use cudarc::driver::sys;

use crate::device::{check_range, Block, Device, DeviceContext, HostCopy};
use crate::error::{DeviceError, DeviceOp, GpuError};
use crate::DeviceInfo;

/// Threads per block for the fill kernel.
const FILL_BLOCK_THREADS: u32 = 256;
/// Most blocks per fill launch; the kernel's grid-stride loop covers the rest.
const FILL_MAX_BLOCKS: u64 = 1 << 16;

/// Whether libcuda can be loaded. Never panics.
pub fn driver_present() -> bool {
    // SAFETY: `is_culib_present` only tries `dlopen` on the candidate names
    // and drops the handle; it runs no library initialisers beyond what
    // loading libcuda itself runs, and touches no shared state.
    unsafe { sys::is_culib_present() }
}

fn dev_err(op: DeviceOp, err: DriverError) -> DeviceError {
    DeviceError::new(op, err.0 as u32 as i64, "CUDA driver call failed")
}

fn destroyed(op: DeviceOp) -> DeviceError {
    DeviceError::new(op, 0, "the job's CUDA context was already destroyed")
}

/// Loads the driver and calls `cuInit`, or reports why not.
fn init(ordinal: u32) -> Result<sys::CUdevice, GpuError> {
    if !driver_present() {
        return Err(GpuError::NoDriver);
    }
    cu::init().map_err(|e| dev_err(DeviceOp::CreateContext, e))?;
    let count = cu::device::get_count().map_err(|e| dev_err(DeviceOp::CreateContext, e))?;
    let count = u32::try_from(count).unwrap_or(0);
    if ordinal >= count {
        return Err(GpuError::NoDevice { index: ordinal, count });
    }
    let ordinal = i32::try_from(ordinal).map_err(|_| GpuError::NoDevice { index: ordinal, count })?;
    Ok(cu::device::get(ordinal).map_err(|e| dev_err(DeviceOp::CreateContext, e))?)
}

/// Describes device `ordinal` without creating a context.
pub(crate) fn device_info(ordinal: u32) -> Result<DeviceInfo, GpuError> {
    let dev = init(ordinal)?;
    let err = |e| GpuError::from(dev_err(DeviceOp::CreateContext, e));
    let name = cu::device::get_name(dev).map_err(err)?;
    // SAFETY: `dev` came from `cuDeviceGet` after a successful `cuInit`.
    let total = unsafe { cu::device::total_mem(dev) }.map_err(err)?;
    let attr = |a| {
        // SAFETY: as above; the attribute is a valid enum value.
        unsafe { cu::device::get_attribute(dev, a) }.map_err(err)
    };
    let major = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
    let minor = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
    let mut version = 0;
    // SAFETY: `version` is a valid, writable c_int for the call's duration.
    unsafe { sys::cuDriverGetVersion(&mut version) }.result().map_err(err)?;
    Ok(DeviceInfo {
        ordinal,
        name,
        total_memory_bytes: total as u64,
        compute_capability: (major, minor),
        driver_version: version,
    })
}

/// One allocation in a [`CudaDevice`]'s context.
#[derive(Debug, PartialEq, Eq)]
pub struct CudaBlock {
    ptr: sys::CUdeviceptr,
    len: usize,
}

impl CudaBlock {
    /// The device address, for passing to kernels. Valid until the block is
    /// returned to its pool.
    pub fn device_ptr(&self) -> u64 {
        self.ptr
    }
}

impl Block for CudaBlock {
    fn len(&self) -> usize {
        self.len
    }
}

/// A job's own CUDA context (from `cuCtxCreate`, never the shared primary
/// context), with one non-blocking stream and the fill kernel loaded.
///
/// Not `Send`: it stays on the thread that created it. Every operation makes
/// the context current first, so several jobs may share a thread.
#[derive(Debug)]
pub struct CudaDevice {
    ordinal: u32,
    ctx: sys::CUcontext,
    stream: sys::CUstream,
    module: sys::CUmodule,
    fill: sys::CUfunction,
    destroyed: bool,
}

impl CudaDevice {
    /// Creates a new context on device `ordinal` for one job.
    pub fn create_for_job(ordinal: u32) -> Result<Self, GpuError> {
        let dev = init(ordinal)?;
        let op = DeviceOp::CreateContext;
        let mut ctx = std::ptr::null_mut();
        // SAFETY: `dev` is a valid device after `cuInit`; `ctx` is a valid
        // out-pointer. The new context becomes current on this thread.
        unsafe { sys::cuCtxCreate_v2(&mut ctx, 0, dev) }.result().map_err(|e| dev_err(op, e))?;
        let mut device = Self {
            ordinal,
            ctx,
            stream: std::ptr::null_mut(),
            module: std::ptr::null_mut(),
            fill: std::ptr::null_mut(),
            destroyed: false,
        };
        // On any error below, dropping `device` destroys the context, which
        // frees whatever was created in it.
        device.stream = cu::stream::create(StreamKind::NonBlocking).map_err(|e| dev_err(op, e))?;
        // SAFETY: the image is a NUL-terminated PTX string with 'static
        // lifetime; the driver copies it during the call.
        device.module =
            unsafe { cu::module::load_data(super::FILL_RANDOM_PTX.as_ptr().cast()) }.map_err(|e| dev_err(op, e))?;
        let entry =
            CString::new(super::FILL_RANDOM_ENTRY).map_err(|_| DeviceError::new(op, 0, "kernel name contains NUL"))?;
        // SAFETY: `module` was just loaded and is not unloaded before
        // `destroy`.
        device.fill = unsafe { cu::module::get_function(device.module, entry) }.map_err(|e| dev_err(op, e))?;
        Ok(device)
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> u32 {
        self.ordinal
    }

    /// Makes this context current on the calling thread.
    fn enter(&self, op: DeviceOp) -> Result<(), DeviceError> {
        if self.destroyed {
            return Err(destroyed(op));
        }
        // SAFETY: `ctx` was created by `cuCtxCreate` and is not destroyed
        // (checked above; only `destroy` destroys it and sets the flag).
        unsafe { cu::ctx::set_current(self.ctx) }.map_err(|e| dev_err(op, e))
    }
}

impl Device for CudaDevice {
    type Block = CudaBlock;

    fn alloc(&self, bytes: usize) -> Result<CudaBlock, DeviceError> {
        self.enter(DeviceOp::Alloc)?;
        // SAFETY: a context is current; the returned memory is only ever
        // treated as bytes.
        let ptr = unsafe { cu::malloc_sync(bytes) }.map_err(|e| dev_err(DeviceOp::Alloc, e))?;
        Ok(CudaBlock { ptr, len: bytes })
    }

    fn free(&self, block: CudaBlock) -> Result<(), DeviceError> {
        self.enter(DeviceOp::Free)?;
        // Work queued on the block must finish before the free.
        self.synchronize()?;
        // SAFETY: `block` is consumed, so this is its only free; it was
        // allocated in this context by `cuMemAlloc`; the stream was
        // synchronised, so no queued work still uses it.
        unsafe { cu::memory_free(block.ptr) }.map_err(|e| dev_err(DeviceOp::Free, e))
    }

    fn fill_random(&self, block: &CudaBlock, seed: u64) -> Result<(), DeviceError> {
        let op = DeviceOp::FillRandom;
        self.enter(op)?;
        let words = (block.len as u64).div_ceil(8);
        let blocks = words.div_ceil(u64::from(FILL_BLOCK_THREADS)).clamp(1, FILL_MAX_BLOCKS);
        // `blocks` is at most 2^16.
        let grid = u32::try_from(blocks).unwrap_or(1 << 16);
        let mut ptr = block.ptr;
        let mut len = block.len as u64;
        let mut seed = seed;
        let mut params: [*mut c_void; 3] = [(&raw mut ptr).cast(), (&raw mut len).cast(), (&raw mut seed).cast()];
        // SAFETY: `fill` is the kernel's handle from a module loaded in this
        // (current) context; the three parameters match its `.param .u64`
        // list and the driver copies them at launch; the kernel writes only
        // bytes `ptr .. ptr + len` of a live block, which is 256-byte
        // aligned from `cuMemAlloc`.
        unsafe { cu::launch_kernel(self.fill, (grid, 1, 1), (FILL_BLOCK_THREADS, 1, 1), 0, self.stream, &mut params) }
            .map_err(|e| dev_err(op, e))
    }

    fn zero(&self, block: &CudaBlock) -> Result<(), DeviceError> {
        self.enter(DeviceOp::Zero)?;
        // SAFETY: the block is live in this context and `len` bytes long;
        // the stream belongs to this context.
        unsafe { cu::memset_d8_async(block.ptr, 0, block.len, self.stream) }.map_err(|e| dev_err(DeviceOp::Zero, e))
    }

    fn synchronize(&self) -> Result<(), DeviceError> {
        self.enter(DeviceOp::Synchronize)?;
        // SAFETY: the stream was created in this context and not destroyed.
        unsafe { cu::stream::synchronize(self.stream) }.map_err(|e| dev_err(DeviceOp::Synchronize, e))
    }
}

impl HostCopy for CudaDevice {
    fn copy_from_host(&self, block: &CudaBlock, offset: usize, data: &[u8]) -> Result<(), DeviceError> {
        let op = DeviceOp::Copy;
        check_range(op, block.len, offset, data.len())?;
        self.enter(op)?;
        // Queued work on the block (a fill) finishes first.
        self.synchronize()?;
        // SAFETY: the block is live in this (current) context, since it is
        // owned and only freed by consuming it; `offset + data.len()` is
        // inside it (checked above); `data` is a valid host slice, only read.
        unsafe { cu::memcpy_htod_sync(block.ptr + offset as u64, data) }.map_err(|e| dev_err(op, e))
    }

    fn copy_to_host(&self, block: &CudaBlock, offset: usize, out: &mut [u8]) -> Result<(), DeviceError> {
        let op = DeviceOp::Copy;
        check_range(op, block.len, offset, out.len())?;
        self.enter(op)?;
        self.synchronize()?;
        // SAFETY: as in `copy_from_host`, with `out` a valid, exclusively
        // borrowed host slice the driver writes.
        unsafe { cu::memcpy_dtoh_sync(out, block.ptr + offset as u64) }.map_err(|e| dev_err(op, e))
    }
}

impl DeviceContext for CudaDevice {
    fn destroy(&mut self) -> Result<(), DeviceError> {
        let op = DeviceOp::DestroyContext;
        if self.destroyed {
            return Ok(());
        }
        self.enter(op)?;
        let synced = self.synchronize();
        if !self.module.is_null() {
            // SAFETY: the module was loaded in this context; nothing runs
            // (synchronised above) and `fill` is not used after this.
            let _ = unsafe { cu::module::unload(self.module) };
        }
        if !self.stream.is_null() {
            // SAFETY: the stream belongs to this context and is idle.
            let _ = unsafe { cu::stream::destroy(self.stream) };
        }
        self.destroyed = true;
        // SAFETY: `ctx` came from `cuCtxCreate` and is destroyed once
        // (guarded by `destroyed`); no handle of it is used afterwards.
        unsafe { sys::cuCtxDestroy_v2(self.ctx) }.result().map_err(|e| dev_err(op, e))?;
        synced
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        if let Err(err) = self.destroy() {
            tracing::error!(error = %err, "destroying a job's CUDA context failed");
        }
    }
}
