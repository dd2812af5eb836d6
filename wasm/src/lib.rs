//! The browser modules over the address core: the converter's JS surface and the client.
//!
//! # Layout
//! - [`inet`]: the address core, the `sockrelay-inet` crate (`wasm/inet`), re-exported.
//! - `js` (wasm32 only): the thin `#[wasm_bindgen]` surface of the converter module `inet.js`.
//! - `client` (feature `client`): the browser client UI. Its pure parts (hex, echo matching,
//!   statistics, the converter panel's answers) also build natively, for their unit tests.

pub use sockrelay_inet as inet;

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
