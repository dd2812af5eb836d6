//! Read sizes that follow the traffic, so that bulk data moves in few large reads while the many
//! quiet connections hold little memory: the bridge's target-side buffer and the echo services
//! read with [`ReadSize`].

/// The size of the next read into a buffer a connection keeps: [`ReadSize::MIN`] at first,
/// [`ReadSize::MAX`] once a read fills the buffer (bulk data: fewer, larger syscalls), and back
/// to the small size after [`ReadSize::SHRINK_AFTER`] small reads in a row.
#[derive(Debug, Clone, Copy)]
pub struct ReadSize {
    size: usize,
    /// Reads of at most `MIN / 2` bytes in a row.
    small_reads: u8,
}

impl Default for ReadSize {
    fn default() -> Self {
        ReadSize {
            size: Self::MIN,
            small_reads: 0,
        }
    }
}

impl ReadSize {
    /// The first read size, and what a connection with small traffic keeps.
    pub const MIN: usize = 2 * 1024;
    /// The largest read size.
    pub const MAX: usize = 64 * 1024;
    /// Small reads in a row after which the size goes back to [`ReadSize::MIN`].
    pub const SHRINK_AFTER: u8 = 8;

    /// The size of the next read.
    pub fn get(self) -> usize {
        self.size
    }

    /// Records a read of `n` bytes made with the current size.
    pub fn record(&mut self, n: usize) {
        if n >= self.size && self.size < Self::MAX {
            self.size = Self::MAX;
            self.small_reads = 0;
        } else if n <= Self::MIN / 2 {
            self.small_reads = self.small_reads.saturating_add(1);
            if self.small_reads >= Self::SHRINK_AFTER && self.size > Self::MIN {
                *self = ReadSize::default();
            }
        } else {
            self.small_reads = 0;
        }
    }
}
