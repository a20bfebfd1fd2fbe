//! Memory hygiene for model weights and per-request activations.
//!
//! - [`lock`] keeps a buffer's pages out of swap (`mlock(2)`) for as long as
//!   the returned [`Locked`] lives. Where the system refuses (no
//!   `CAP_IPC_LOCK` and `RLIMIT_MEMLOCK` too small) it says so once and the
//!   caller goes on unlocked: [`Locked::is_locked`] tells which.
//! - [`WipeOnFree`] is a global allocator that overwrites every block with
//!   zeros before it goes back to the system allocator while at least one
//!   [`WipeScope`] is alive. An inference runs inside a scope, so every heap
//!   buffer it frees (token ids, attention masks, hidden states, attention
//!   scores, gemm packing buffers, on any thread) is zeroed as it is freed.
//!   Outside a scope it costs one relaxed atomic load per free.
//!
//! What this does not do, compared with hardware memory encryption
//! (AMD SEV-SNP, Intel TDX), is keep plaintext from whoever can read the
//! process's memory *while* it runs (root, a debugger, a DMA-capable device,
//! a cold-boot attack on DRAM): weights are plaintext in RAM for as long as
//! the model is loaded, and activations for as long as a request runs.
//! It bounds how long plaintext lives and keeps it out of swap and out of
//! freed memory that a later allocation (or a core dump taken later) could
//! read. See `docs/annotate.md`.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// Pages locked in RAM; unlocked when dropped.
#[derive(Debug)]
pub struct Locked {
    start: usize,
    len: usize,
}

impl Locked {
    /// Whether the pages are really locked (false where `mlock` was refused).
    pub fn is_locked(&self) -> bool {
        self.len != 0
    }

    /// Bytes locked (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is locked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: `start..start+len` is the page range that `lock` locked;
            // munlock only changes paging attributes and never touches the bytes.
            unsafe {
                libc::munlock(self.start as *const libc::c_void, self.len);
            }
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// Locks the pages holding `buf` in RAM. Never fails: where the system
/// refuses, logs a warning once and returns an unlocked [`Locked`].
pub fn lock<T>(buf: &[T]) -> Locked {
    let bytes = std::mem::size_of_val(buf);
    if bytes == 0 {
        return Locked { start: 0, len: 0 };
    }
    let page = page_size();
    let addr = buf.as_ptr() as usize;
    let start = addr & !(page - 1);
    let end = (addr + bytes).div_ceil(page) * page;
    let len = end - start;
    // SAFETY: the range covers pages of a live allocation borrowed for the
    // call; mlock only changes paging attributes and never touches the bytes.
    let rc = unsafe { libc::mlock(start as *const libc::c_void, len) };
    if rc == 0 {
        Locked { start, len }
    } else {
        static WARN: Once = Once::new();
        let err = std::io::Error::last_os_error();
        WARN.call_once(|| {
            tracing::warn!(
                error = %err,
                "cannot lock model memory against swapping (needs CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK); \
                 decrypted weights may reach swap"
            );
        });
        Locked { start: 0, len: 0 }
    }
}

static SCOPES: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// While alive, every heap block freed in the process is zeroed first (when
/// [`WipeOnFree`] is the global allocator). Scopes nest and may overlap
/// across threads.
#[derive(Debug)]
pub struct WipeScope(());

impl WipeScope {
    /// Opens a scope.
    pub fn enter() -> Self {
        SCOPES.fetch_add(1, Ordering::SeqCst);
        WipeScope(())
    }
}

impl Drop for WipeScope {
    fn drop(&mut self) {
        SCOPES.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the running binary installed [`WipeOnFree`] as its global
/// allocator (so that [`WipeScope`] has an effect).
pub fn wiping_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// A global allocator that zeroes freed blocks while a [`WipeScope`] is
/// alive. Install it in a binary:
///
/// ```
/// #[global_allocator]
/// static ALLOC: seqshield_annotate::secmem::WipeOnFree = seqshield_annotate::secmem::WipeOnFree::SYSTEM;
///
/// let v = vec![1u8; 64];
/// assert!(seqshield_annotate::secmem::wiping_installed());
/// let _wipe = seqshield_annotate::secmem::WipeScope::enter();
/// drop(v); // zeroed, then freed
/// ```
#[derive(Debug)]
pub struct WipeOnFree<A = System>(pub A);

impl WipeOnFree<System> {
    /// Wraps the system allocator.
    pub const SYSTEM: WipeOnFree<System> = WipeOnFree(System);
}

#[inline]
fn wiping() -> bool {
    SCOPES.load(Ordering::Relaxed) != 0
}

/// Zeroes `len` bytes at `ptr` in a way the optimiser cannot drop as a dead
/// store before the free.
///
/// # Safety
/// `ptr..ptr+len` must be writable.
#[inline]
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees the range is writable.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    std::hint::black_box(ptr);
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

// SAFETY: every method forwards to the wrapped allocator with the caller's
// layout; the only addition is zeroing a block the caller is giving back,
// which is still owned by us at that point.
unsafe impl<A: GlobalAlloc> GlobalAlloc for WipeOnFree<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if wiping() {
            // SAFETY: the block `ptr` of `layout.size()` bytes is ours until
            // it is handed back below.
            unsafe { wipe(ptr, layout.size()) };
        }
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !wiping() {
            // SAFETY: forwarded with the caller's arguments.
            return unsafe { self.0.realloc(ptr, layout, new_size) };
        }
        // A moving realloc would leave the old block unwiped: allocate,
        // copy, wipe and free by hand instead.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: new_layout has a non-zero size (realloc's contract).
        let new = unsafe { self.0.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; the copy stays
            // within the smaller of the two; the old block is then ours to
            // wipe and free.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                wipe(ptr, layout.size());
                self.0.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_reports_what_it_did() {
        let buf = vec![7u8; 3 * 4096 + 5];
        let l = lock(&buf);
        if l.is_locked() {
            assert!(l.len() >= buf.len());
            assert_eq!(l.len() % page_size(), 0);
        }
        assert!(lock::<u8>(&[]).is_empty());
    }

    #[test]
    fn scopes_nest() {
        let base = SCOPES.load(Ordering::SeqCst);
        let a = WipeScope::enter();
        let b = WipeScope::enter();
        assert!(wiping());
        drop(a);
        assert!(SCOPES.load(Ordering::SeqCst) > base);
        drop(b);
        assert_eq!(SCOPES.load(Ordering::SeqCst), base);
    }

    #[test]
    fn the_allocator_wipes_freed_blocks_only_inside_a_scope() {
        // Driven directly (not installed): a freed block is zero inside a
        // scope. We read it back through a second allocator that never
        // frees, so the read is of memory we still own.
        struct Keep;
        // SAFETY: a test allocator that forwards allocation to System and
        // never frees, so the test may read a "freed" block.
        unsafe impl GlobalAlloc for Keep {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                // SAFETY: forwarded.
                unsafe { System.alloc(layout) }
            }
            unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
        }
        let a = WipeOnFree(Keep);
        let layout = Layout::from_size_align(4096, 8).unwrap();
        for inside in [false, true] {
            let _scope = inside.then(WipeScope::enter);
            // SAFETY: a fresh 4096-byte block, filled, "freed" into Keep
            // (which keeps it), read back, then really freed into System.
            unsafe {
                let p = a.alloc(layout);
                std::ptr::write_bytes(p, 0xA5, 4096);
                a.dealloc(p, layout);
                let seen = std::slice::from_raw_parts(p, 4096).to_vec();
                System.dealloc(p, layout);
                if inside {
                    assert!(seen.iter().all(|&b| b == 0), "wiped inside a scope");
                } else if !wiping() {
                    // (Another test's inference may hold a scope meanwhile.)
                    assert!(seen.iter().all(|&b| b == 0xA5), "left alone outside a scope");
                }
            }
        }
    }
}
