//! An in-memory [`Device`] for tests: it records, per block, whether the
//! wipe and randomise rules were followed, and fails on request.
//!
//! Fresh allocations are filled with [`FakeDevice::REMNANT_BYTE`], standing
//! in for whatever the previous user left in device memory. Contexts made
//! by one [`FakeGpu`] instead share its physical memory: what one context
//! frees, or leaves behind when destroyed, keeps its bytes and is handed to
//! the next allocation, so the remnant scanner can be run end to end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::device::{check_range, Block, Device, DeviceContext, HostCopy};
use crate::error::{DeviceError, DeviceOp};
use crate::prng;

/// A block of a [`FakeDevice`].
#[derive(Debug, PartialEq, Eq)]
pub struct FakeBlock {
    id: u64,
    len: usize,
}

impl FakeBlock {
    /// The block's identity within its device.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Block for FakeBlock {
    fn len(&self) -> usize {
        self.len
    }
}

#[derive(Debug)]
struct Mem {
    data: Vec<u8>,
    /// Never handed out since the driver allocated it.
    fresh: bool,
    /// Zeroed, and a synchronise has completed since.
    wiped: bool,
    zero_pending: bool,
    /// Randomised while fresh or wiped (the hand-out rule).
    ready: bool,
}

#[derive(Debug, Default)]
struct State {
    mem: BTreeMap<u64, Mem>,
    next_id: u64,
    fail: BTreeSet<DeviceOpKey>,
    seeds: BTreeSet<u64>,
    seed_reused: bool,
    destroyed: bool,
    live_at_destroy: usize,
    ops: Vec<DeviceOp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DeviceOpKey(u8);

impl From<DeviceOp> for DeviceOpKey {
    fn from(op: DeviceOp) -> Self {
        Self(op as u8)
    }
}

/// An in-memory device with failure injection. Clones share one device,
/// so a test can keep a handle to inspect a device it moved into a pool.
#[derive(Debug, Default, Clone)]
pub struct FakeDevice {
    state: Arc<Mutex<State>>,
    gpu: Option<FakeGpu>,
}

/// The most freed blocks a [`FakeGpu`] remembers.
const FAKE_GPU_FREED_BLOCKS: usize = 64;

/// Physical memory shared by [`FakeDevice`] contexts, as processes share one
/// GPU. Freed memory is not cleared: the next allocation in any context
/// starts with the bytes the most recently freed block held, which is what a
/// driver is allowed to do (`cuMemAlloc`: "the memory is not cleared").
#[derive(Debug, Default, Clone)]
pub struct FakeGpu {
    freed: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FakeGpu {
    /// A GPU with no memory in use.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new context (a "process") on this GPU.
    pub fn context(&self) -> FakeDevice {
        FakeDevice { state: Arc::default(), gpu: Some(self.clone()) }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        self.freed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn give_back(&self, data: Vec<u8>) {
        let mut freed = self.lock();
        if freed.len() == FAKE_GPU_FREED_BLOCKS {
            freed.remove(0);
        }
        freed.push(data);
    }

    /// Memory for a new block: the last freed block's bytes, cut or padded
    /// with [`FakeDevice::REMNANT_BYTE`] to `bytes`.
    fn take(&self, bytes: usize) -> Vec<u8> {
        let mut data = self.lock().pop().unwrap_or_default();
        data.resize(bytes, FakeDevice::REMNANT_BYTE);
        data
    }
}

impl FakeDevice {
    /// The byte fresh allocations hold: a stand-in for remnant data.
    pub const REMNANT_BYTE: u8 = 0xAB;

    /// A device with no blocks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next call of `op` fail (once).
    pub fn fail_next(&self, op: DeviceOp) {
        self.lock().fail.insert(op.into());
    }

    /// Writes `data` at the start of `block`, as a job would.
    pub fn write(&self, block: &FakeBlock, data: &[u8]) {
        if let Some(mem) = self.lock().mem.get_mut(&block.id) {
            let n = data.len().min(mem.data.len());
            mem.data[..n].copy_from_slice(&data[..n]);
            mem.wiped = false;
            mem.ready = false;
        }
    }

    /// A copy of a live block's contents by id (empty if it was freed).
    pub fn read(&self, id: u64) -> Vec<u8> {
        self.lock().mem.get(&id).map(|m| m.data.clone()).unwrap_or_default()
    }

    /// Whether the live block `id` was randomised after being fresh or
    /// wiped, and not written since: the state a hand-out must see.
    pub fn ready_for_use(&self, id: u64) -> bool {
        self.lock().mem.get(&id).is_some_and(|m| m.ready)
    }

    /// Whether the live block `id` is zeroed and synchronised.
    pub fn is_wiped(&self, id: u64) -> bool {
        self.lock().mem.get(&id).is_some_and(|m| m.wiped && m.data.iter().all(|&b| b == 0))
    }

    /// Whether `id` is a live (allocated, not freed) block.
    pub fn is_live(&self, id: u64) -> bool {
        self.lock().mem.contains_key(&id)
    }

    /// Live blocks.
    pub fn live_blocks(&self) -> usize {
        self.lock().mem.len()
    }

    /// Whether any fill seed was used twice.
    pub fn seed_reused(&self) -> bool {
        self.lock().seed_reused
    }

    /// Whether the context was destroyed, and how many blocks were still
    /// live at that moment.
    pub fn destroyed(&self) -> Option<usize> {
        let state = self.lock();
        state.destroyed.then_some(state.live_at_destroy)
    }

    /// Every operation called, in order (failed ones included).
    pub fn ops(&self) -> Vec<DeviceOp> {
        self.lock().ops.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(&self, op: DeviceOp) -> Result<MutexGuard<'_, State>, DeviceError> {
        let mut state = self.lock();
        state.ops.push(op);
        if state.destroyed {
            return Err(DeviceError::new(op, 201, "context destroyed"));
        }
        if state.fail.remove(&op.into()) {
            return Err(DeviceError::new(op, 999, "injected failure"));
        }
        Ok(state)
    }
}

impl Device for FakeDevice {
    type Block = FakeBlock;

    fn alloc(&self, bytes: usize) -> Result<FakeBlock, DeviceError> {
        let mut state = self.enter(DeviceOp::Alloc)?;
        let id = state.next_id;
        state.next_id += 1;
        let data = self.gpu.as_ref().map_or_else(|| vec![Self::REMNANT_BYTE; bytes], |gpu| gpu.take(bytes));
        state.mem.insert(id, Mem { data, fresh: true, wiped: false, zero_pending: false, ready: false });
        Ok(FakeBlock { id, len: bytes })
    }

    fn free(&self, block: FakeBlock) -> Result<(), DeviceError> {
        let mem = self.enter(DeviceOp::Free)?.mem.remove(&block.id);
        if let (Some(gpu), Some(mem)) = (&self.gpu, mem) {
            gpu.give_back(mem.data);
        }
        Ok(())
    }

    fn fill_random(&self, block: &FakeBlock, seed: u64) -> Result<(), DeviceError> {
        let mut state = self.enter(DeviceOp::FillRandom)?;
        if !state.seeds.insert(seed) {
            state.seed_reused = true;
        }
        if let Some(mem) = state.mem.get_mut(&block.id) {
            prng::fill(seed, &mut mem.data);
            mem.ready = (mem.fresh || mem.wiped) && !mem.zero_pending;
            mem.fresh = false;
            mem.wiped = false;
        }
        Ok(())
    }

    fn zero(&self, block: &FakeBlock) -> Result<(), DeviceError> {
        let mut state = self.enter(DeviceOp::Zero)?;
        if let Some(mem) = state.mem.get_mut(&block.id) {
            mem.data.fill(0);
            mem.zero_pending = true;
            mem.ready = false;
        }
        Ok(())
    }

    fn synchronize(&self) -> Result<(), DeviceError> {
        let mut state = self.enter(DeviceOp::Synchronize)?;
        for mem in state.mem.values_mut() {
            if mem.zero_pending {
                mem.zero_pending = false;
                mem.wiped = true;
            }
        }
        Ok(())
    }
}

impl DeviceContext for FakeDevice {
    fn destroy(&mut self) -> Result<(), DeviceError> {
        let mut state = self.enter(DeviceOp::DestroyContext)?;
        state.destroyed = true;
        state.live_at_destroy = state.mem.len();
        let left = std::mem::take(&mut state.mem);
        if let Some(gpu) = &self.gpu {
            left.into_values().for_each(|mem| gpu.give_back(mem.data));
        }
        Ok(())
    }
}

impl HostCopy for FakeDevice {
    fn copy_from_host(&self, block: &FakeBlock, offset: usize, data: &[u8]) -> Result<(), DeviceError> {
        check_range(DeviceOp::Copy, block.len, offset, data.len())?;
        let mut state = self.enter(DeviceOp::Copy)?;
        if let Some(mem) = state.mem.get_mut(&block.id) {
            mem.data[offset..offset + data.len()].copy_from_slice(data);
            mem.wiped = false;
            mem.ready = false;
        }
        Ok(())
    }

    fn copy_to_host(&self, block: &FakeBlock, offset: usize, out: &mut [u8]) -> Result<(), DeviceError> {
        check_range(DeviceOp::Copy, block.len, offset, out.len())?;
        let state = self.enter(DeviceOp::Copy)?;
        if let Some(mem) = state.mem.get(&block.id) {
            out.copy_from_slice(&mem.data[offset..offset + out.len()]);
        }
        Ok(())
    }
}
