//! The browser client (`web/pkg/client.js`), over the address core `sockrelay-inet`.
//!
//! # Layout
//! - [`inet`]: the address core, the `sockrelay-inet` crate (`wasm/inet`), re-exported.
//! - `client`: the browser client UI, built for wasm32. Its pure parts (hex dumps, echo
//!   matching, statistics, the converter panel's answers) also build natively, for their unit
//!   tests; nothing else of the crate does.
//!
//! The converter module `inet.js` is another crate, `sockrelay-converter` (`wasm/converter`):
//! neither module exports the other's functions.

pub use sockrelay_inet as inet;

#[cfg(any(test, target_arch = "wasm32"))]
mod client;

// lol_alloc's free list instead of std's dlmalloc, as in the converter: the client's
// allocations are few and small, and the allocator is a tenth of the size.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
