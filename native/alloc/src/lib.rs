//! The relay's memory allocator: mimalloc, with the pages that empty given back to the system
//! at once.
//!
//! An idle bridge drops its WebSocket codec's buffers (`sockrelay::bridge::park`). With the
//! system's allocator those freed blocks stay resident between the live ones around them;
//! mimalloc keeps each size class in pages of its own, so the pages they leave empty can go
//! back. By default it gives them back 10 ms after they empty, but only when the thread that
//! owns them next allocates or frees, and a relay whose bridges are all quiet does neither: so
//! the relay asks for "at once" ([`return_empty_pages_at_once`]). Measured (BENCHMARKS.md,
//! item 21): 6.2 KiB of RSS per idle bridge with glibc's allocator, 4.7-4.9 with mimalloc's
//! defaults, 3.6-3.7 with empty pages given back at once, and no change in throughput in any
//! of the harness's workloads.

pub use mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in the `mi_option_t` enumeration of
/// mimalloc 2.x's `mimalloc.h` (show_errors = 0, ... eager_commit_delay = 14, purge_delay,
/// use_numa_nodes = 16), which the Rust bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc to give pages back to the system as soon as they empty, not 10 ms later at
/// the owning thread's next allocation, unless `MIMALLOC_PURGE_DELAY` in the environment
/// chose otherwise (mimalloc reads its options from there). Takes effect for every thread.
pub fn return_empty_pages_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` reads two integers and stores the value in the option's slot;
    // mimalloc documents its options as settable at any time from any thread, and every
    // value of `purge_delay` is valid (0 means at once).
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

/// The purge delay in force, in milliseconds.
// `c_long` is 64 bits here but 32 on other platforms.
#[allow(clippy::useless_conversion)]
pub fn purge_delay_ms() -> i64 {
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_get` only reads the option's slot (reading the environment the first
    // time), for any option id of the enumeration.
    i64::from(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static GLOBAL: MiMalloc = MiMalloc;

    #[test]
    fn the_purge_delay_is_the_option_set() {
        // mimalloc 2.x's default for purge_delay, unless the environment says otherwise: the
        // option id names that option, not another.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), 10);
        }
        return_empty_pages_at_once();
        assert_eq!(purge_delay_ms(), 0);
        // Allocation goes on as before.
        let v: Vec<u8> = vec![7; 1 << 20];
        assert_eq!(v.iter().map(|&b| u64::from(b)).sum::<u64>(), 7 << 20);
    }
}
