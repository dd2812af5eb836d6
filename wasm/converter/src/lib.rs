//! `sockrelay-converter`: the converter module `web/pkg/inet.js`, CPython's `socket` address
//! helpers for JavaScript (the API of DESIGN.md, "The converter module").
//!
//! This crate owns the module's JS surface and nothing else: `js`, the `#[wasm_bindgen]`
//! exports that convert JS arguments as CPython converts Python arguments and throw Python's
//! exceptions. The answers come from `sockrelay-inet` (`wasm/inet`). `wasm/build.sh` builds it
//! into `inet.js` and appends the JS of `wasm/js/` (the constants, the argument count check and
//! the fast paths); the module exports that API only. The crate is empty on other targets.

#[cfg(target_arch = "wasm32")]
mod js;

// The converter allocates a few short strings per call; a small free list serves that as well
// as dlmalloc and is a tenth of its size.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
