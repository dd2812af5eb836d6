//! Spliced frames need Linux's `splice(2)`: on other systems every frame takes the codec's path
//! and this handle is never made.

use std::io;
use std::task::{Context, Poll};

use tokio::net::TcpStream;

/// The largest spliced frame (none here).
pub const MAX_FRAME: usize = 256 * 1024;

/// Pipes the relay holds at most (none here).
pub const MAX_PIPES: usize = 0;

/// What [`Splicer::poll_splice_in`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceIn {
    Frame(usize),
    Eof,
    Copy,
}

/// What [`Splicer::poll_copy_in`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyIn {
    Frame(usize),
    Eof,
}

/// Cannot exist here: a bridge's `Option<Splicer>` is always `None`.
#[derive(Debug, Clone)]
pub enum Splicer {}

impl Splicer {
    pub fn poll_splice_in(
        &self,
        _target: &TcpStream,
        _max: usize,
        _cx: &mut Context<'_>,
    ) -> Poll<io::Result<SpliceIn>> {
        match *self {}
    }

    pub fn poll_frame(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match *self {}
    }

    pub fn poll_copy_in<R>(
        &self,
        _target: &mut R,
        _max: usize,
        _cx: &mut Context<'_>,
    ) -> Poll<io::Result<CopyIn>> {
        match *self {}
    }

    pub fn codec_wrote(&self) -> bool {
        match *self {}
    }

    pub fn codec_idle(&self) {
        match *self {}
    }

    pub fn bytes(&self) -> u64 {
        match *self {}
    }

    pub fn moved(&self) -> u64 {
        match *self {}
    }

    pub fn release_pipe(&self) {
        match *self {}
    }
}
