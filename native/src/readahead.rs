//! Read sizes that follow the traffic, so that bulk data moves in few large reads while the many
//! quiet connections hold little memory: [`ReadAhead`] for the client side of a bridge (under
//! tungstenite), [`ReadSize`] for the buffers of the bridge's target side and the echo services.
//!
//! Large reads from a client that sends in bulk, without memory for one that does not:
//! tungstenite reads from its stream in pieces of its read buffer's size, which is kept small
//! because every bridge holds that buffer (see `ws_config` in `http.rs`). A 64 KiB frame then
//! costs eight `recvfrom` calls, each with the kernel's fixed cost per call. [`ReadAhead`] sits
//! between tungstenite and the socket: while reads are small it passes them straight through
//! (no buffer, no copy); once a read fills what tungstenite asked for, more is waiting, so it
//! reads up to [`AHEAD`] bytes at once and hands them out from its own buffer, which it frees as
//! soon as a read no longer brings more than was asked for and the buffer has been drained.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::bytes::{Buf, BytesMut};

/// The largest read made ahead of the caller.
pub const AHEAD: usize = 64 * 1024;

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

/// A stream whose reads grow while the peer sends faster than they are consumed.
#[derive(Debug)]
pub struct ReadAhead<I> {
    inner: I,
    /// Bytes read from `inner` and not yet handed out; unallocated while reads are small.
    ahead: BytesMut,
    /// Whether the peer is sending faster than the caller reads (the last read filled the
    /// caller's buffer, or brought more than it).
    bulk: bool,
}

impl<I> ReadAhead<I> {
    pub fn new(inner: I) -> ReadAhead<I> {
        ReadAhead {
            inner,
            ahead: BytesMut::new(),
            bulk: false,
        }
    }

    /// Copies what fits of the read-ahead bytes to `out`; frees the buffer when it is drained
    /// and the bulk transfer is over.
    fn hand_out(&mut self, out: &mut ReadBuf<'_>) {
        let n = self.ahead.len().min(out.remaining());
        out.put_slice(&self.ahead[..n]);
        self.ahead.advance(n);
        if self.ahead.is_empty() && !self.bulk {
            self.ahead = BytesMut::new();
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ReadAhead<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ahead.is_empty() {
            this.hand_out(out);
            return Poll::Ready(Ok(()));
        }
        let wanted = out.remaining();
        if !this.bulk || wanted == 0 {
            let before = out.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
            this.bulk = wanted > 0 && out.filled().len() - before == wanted;
            return Poll::Ready(Ok(()));
        }
        this.ahead.reserve(AHEAD);
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.ahead);
        let Poll::Ready(n) = read else {
            // Caught up with the peer: hold no buffer while it is quiet.
            this.ahead = BytesMut::new();
            return Poll::Pending;
        };
        let n = n?;
        this.bulk = n > wanted;
        this.hand_out(out);
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ReadAhead<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A reader that counts the reads made on it.
    struct Counting<R> {
        inner: R,
        reads: usize,
    }

    impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = &mut *self;
            let r = Pin::new(&mut this.inner).poll_read(cx, buf);
            if r.is_ready() {
                this.reads += 1;
            }
            r
        }
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[tokio::test]
    async fn small_reads_pass_straight_through_without_a_buffer() {
        let (mut far, near) = tokio::io::duplex(1 << 20);
        let mut r = ReadAhead::new(Counting {
            inner: near,
            reads: 0,
        });
        let mut buf = [0u8; 8192];
        for i in 0..20u8 {
            far.write_all(&[i; 100]).await.unwrap();
            let n = r.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i; 100]);
            assert!(!r.bulk);
            assert_eq!(r.ahead.capacity(), 0);
        }
        assert_eq!(r.inner.reads, 20);
    }

    #[tokio::test]
    async fn bulk_data_is_read_in_large_pieces_exactly_then_the_buffer_goes() {
        let (mut far, near) = tokio::io::duplex(1 << 22);
        let data = pattern(3 << 20);
        far.write_all(&data).await.unwrap();
        let mut r = ReadAhead::new(Counting {
            inner: near,
            reads: 0,
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while got.len() < data.len() {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == data);
        // 8 KiB asked for at a time, 64 KiB read at a time (one small read first).
        assert!(
            r.inner.reads <= data.len() / AHEAD + 2,
            "{} reads",
            r.inner.reads
        );
        // Nothing more yet: the read waits holding no buffer.
        assert!(r.bulk);
        assert!(futures_util::FutureExt::now_or_never(r.read(&mut buf)).is_none());
        assert_eq!(r.ahead.capacity(), 0);
        // Then the sender slows down: reads are small again and the buffer is freed.
        far.write_all(b"one").await.unwrap();
        let n = r.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one");
        far.write_all(b"two").await.unwrap();
        let n = r.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"two");
        assert!(!r.bulk);
        assert_eq!(r.ahead.capacity(), 0);
    }

    #[tokio::test]
    async fn eof_and_writes_pass_through() {
        let (mut far, near) = tokio::io::duplex(1 << 16);
        let mut r = ReadAhead::new(near);
        r.write_all(b"to the peer").await.unwrap();
        r.shutdown().await.unwrap();
        let mut back = Vec::new();
        far.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"to the peer");
        far.write_all(&pattern(50_000)).await.unwrap();
        drop(far);
        let mut all = Vec::new();
        r.read_to_end(&mut all).await.unwrap();
        assert!(all == pattern(50_000));
    }
}
