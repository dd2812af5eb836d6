//! Socket address utilities with CPython's exact `socket` semantics, and the browser client.
//!
//! # Layout
//! - [`inet`]: the pure address core (plain std Rust, no wasm-bindgen). The native `sockrelay`
//!   CLI and the browser modules both call it, so there is one implementation to test.
//! - `js` (wasm32 only): the thin `#[wasm_bindgen]` surface of the converter module `inet.js`.
//! - `client` (feature `client`): the browser client UI. Its pure parts (hex, echo matching,
//!   statistics, the converter panel's answers) also build natively, for their unit tests.

pub mod inet;

#[cfg(target_arch = "wasm32")]
mod js;

#[cfg(any(test, feature = "client"))]
mod client;

// The converter allocates a few short strings per call; a small free list serves that as well
// as dlmalloc and is a tenth of its size.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
