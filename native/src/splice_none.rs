//! Spliced frames need Linux's `splice(2)`: on other systems every frame takes the codec's path
//! and this handle is never made.

use std::io;
use std::task::{Context, Poll};

use tokio::net::TcpStream;

/// Cannot exist here: a bridge's `Option<Splicer>` is always `None`.
#[derive(Debug, Clone)]
pub enum Splicer {}

impl Splicer {
    pub fn ensure_pipe(&self) -> io::Result<()> {
        match *self {}
    }

    pub fn poll_splice_in(
        &self,
        _target: &TcpStream,
        _max: usize,
        _cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match *self {}
    }

    pub fn poll_frame(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match *self {}
    }

    pub fn release_pipe(&self) {
        match *self {}
    }
}
