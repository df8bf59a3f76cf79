//! cargo-fuzz target `ws_client_frame`: the check in `checks/ws_client_frame.rs`, shared with
//! the owning crate's replay test (see `fuzz/README.md`), and here also the size of the largest
//! allocation it makes (the replay test cannot: the workspace forbids unsafe code, which a
//! global allocator needs).
#![no_main]

#[path = "../checks/ws_client_frame.rs"]
mod checks;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, noting the largest allocation of this thread while a check runs.
struct Peak;

thread_local! {
    static LARGEST: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| {
        if let Some(seen) = largest.get() {
            largest.set(Some(seen.max(size)));
        }
    });
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Peak = Peak;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    LARGEST.with(|largest| largest.set(Some(0)));
    checks::check(data);
    let largest = LARGEST.with(|largest| largest.replace(None)).unwrap_or(0);
    let bound = checks::alloc_bound(data);
    assert!(largest <= bound, "an allocation of {largest} bytes for {} bytes of input (bound {bound})", data.len());
});
