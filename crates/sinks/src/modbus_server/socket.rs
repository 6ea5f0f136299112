//! [`Guarded`]: a client's socket as tokio-modbus's per-connection loop reads it, with
//! the two bounds that loop lacks:
//! - an idle timeout: it fails with `TimedOut` once nothing was read or written for it —
//!   a client gone silent and one that stopped reading its answers alike;
//! - a header check: every frame's MBAP header (Modbus Messaging on TCP/IP Implementation
//!   Guide §3.1.3) must say protocol 0 and a length of 2..=254 (unit id and a PDU of at
//!   most 253 bytes), else it fails with `InvalidData` at once. tokio-modbus's decoder
//!   trusts the length up to 65535 and waits for that many bytes before it looks at the
//!   protocol id, so an HTTP request or random bytes would hold a slot until the idle
//!   timeout; this closes it on its first 7 bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep, sleep};

/// The largest MBAP length: the unit id and a PDU of at most 253 bytes (Modbus
/// Application Protocol §4.1).
const MAX_LENGTH: u16 = 254;
const HEADER: usize = 7;

/// `inner` with an idle deadline, pushed back by every byte moved either way, and its
/// incoming frames' headers checked.
pub(crate) struct Guarded<S> {
    inner: S,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    frames: Frames,
}

impl<S> Guarded<S> {
    pub(crate) fn new(inner: S, timeout: Duration) -> Guarded<S> {
        Guarded {
            inner,
            timeout,
            deadline: Box::pin(sleep(timeout)),
            frames: Frames::default(),
        }
    }

    fn progress(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
    }

    /// Called when `inner` is not ready: an error once the deadline passed (the task
    /// is woken for it), else pending.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no traffic for the idle timeout",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if !new.is_empty() {
                    this.progress();
                    this.frames.check(new)?;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.pending(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.progress();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.pending(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.pending(cx),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where the incoming bytes stand: inside a frame's header or its body.
#[derive(Default)]
struct Frames {
    header: [u8; HEADER],
    /// Header bytes seen of the current frame.
    have: usize,
    /// Body bytes still to come after a complete header.
    body_left: usize,
}

impl Frames {
    /// Follows `bytes` (the next ones on the socket) frame by frame.
    fn check(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < HEADER {
                return Ok(());
            }
            self.have = 0;
            let protocol = u16::from_be_bytes([self.header[2], self.header[3]]);
            let length = u16::from_be_bytes([self.header[4], self.header[5]]);
            if protocol != 0 || !(2..=MAX_LENGTH).contains(&length) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not a Modbus TCP header (protocol {protocol}, length {length})"),
                ));
            }
            // The unit id is the header's last byte and counts in the length.
            self.body_left = usize::from(length) - 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_followed_across_reads_and_bad_headers_refused() {
        let read = [0u8, 1, 0, 0, 0, 6, 1, 3, 0x9E, 0x47, 0, 2];
        let mut f = Frames::default();
        // Two frames, split at every possible point.
        let two: Vec<u8> = read.iter().chain(&read).copied().collect();
        for cut in 0..two.len() {
            f.check(&two[..cut]).unwrap();
            f.check(&two[cut..]).unwrap();
            assert_eq!((f.have, f.body_left), (0, 0), "cut at {cut}");
        }
        let kind = |bytes: &[u8]| Frames::default().check(bytes).map_err(|e| e.kind());
        assert_eq!(kind(b"GET / HTTP/1.1"), Err(io::ErrorKind::InvalidData));
        assert_eq!(
            kind(&[0, 1, 0, 0, 0, 0, 1]),
            Err(io::ErrorKind::InvalidData)
        );
        assert_eq!(
            kind(&[0, 1, 0, 0, 0, 1, 1]),
            Err(io::ErrorKind::InvalidData)
        );
        assert_eq!(
            kind(&[0, 1, 0, 0, 0, 255, 1]),
            Err(io::ErrorKind::InvalidData)
        );
        assert_eq!(kind(&[0, 1, 0, 0, 0, 254, 1]), Ok(()));
    }
}
