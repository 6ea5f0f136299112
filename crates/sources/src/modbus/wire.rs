//! One Modbus TCP connection to the device (protocol §14): opened with a time-out, framed
//! by tokio-modbus, every request bounded by the configured timeout, every byte counted.
//!
//! Requests go through tokio-modbus's `Client::call`, not its `read_holding_registers`:
//! the latter only `debug_assert`s that the answer holds as many registers as asked, so a
//! hostile or broken server answering short would panic a debug build and slip through a
//! release one. Here a short answer is a typed error ([`ModbusError::WrongLength`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use protocol::modbus::{Block, Values};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_modbus::client::{Client, Context};
use tokio_modbus::{ExceptionCode, Request, Response, Slave};

use super::config::ModbusConfig;
use super::error::ModbusError;
use super::stats::ModbusStats;

/// At most this much of a library's error text goes into an error (a hostile server's
/// answer is quoted in some of them).
const MAX_MESSAGE: usize = 160;

/// An open connection.
pub(crate) struct Connection {
    ctx: Context,
    addr: String,
    timeout: Duration,
    stats: Arc<ModbusStats>,
    /// Whether any request was answered on this connection (a device that holds a second
    /// client off answers none, §14).
    answered: bool,
}

/// What one poll read: the values of the blocks answered, and the blocks answered with a
/// Modbus exception instead (their registers stay empty).
pub(crate) struct PollRead {
    pub(crate) values: Values,
    pub(crate) exceptions: Vec<(Block, ExceptionCode)>,
}

/// Opens the TCP connection within the configured timeout.
pub(crate) async fn connect(
    config: &ModbusConfig,
    stats: &Arc<ModbusStats>,
) -> Result<Connection, ModbusError> {
    let addr = config.address();
    let failed = |message: String| ModbusError::Connect {
        addr: addr.clone(),
        message,
    };
    let stream = match tokio::time::timeout(config.timeout, TcpStream::connect(&addr)).await {
        Err(_) => return Err(failed(format!("no connection within {:?}", config.timeout))),
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Ok(Ok(stream)) => stream,
    };
    // Small requests, one at a time: send each at once.
    let _ = stream.set_nodelay(true);
    let counted = Counted {
        inner: stream,
        stats: stats.clone(),
    };
    Ok(Connection {
        ctx: tokio_modbus::client::tcp::attach_slave(counted, Slave(config.unit)),
        addr,
        timeout: config.timeout,
        stats: stats.clone(),
        answered: false,
    })
}

impl Connection {
    /// Whether any request was answered on this connection.
    pub(crate) fn answered(&self) -> bool {
        self.answered
    }

    /// Reads `blocks` in order into one [`Values`]. The first request that fails ends the
    /// poll (and the connection is not to be used again: a late answer would arrive as
    /// the answer to the next request).
    pub(crate) async fn poll(&mut self, blocks: &[Block]) -> Result<PollRead, ModbusError> {
        let mut read = PollRead {
            values: Values::new(),
            exceptions: Vec::new(),
        };
        for block in blocks {
            match self.read(*block).await? {
                Ok(words) => {
                    read.values.read_block(block.start, &words);
                }
                Err(code) => read.exceptions.push((*block, code)),
            }
        }
        Ok(read)
    }

    /// One function-03 request.
    async fn read(&mut self, block: Block) -> Result<Result<Vec<u16>, ExceptionCode>, ModbusError> {
        self.stats.request(block.count);
        let call = self
            .ctx
            .call(Request::ReadHoldingRegisters(block.start, block.count));
        let answer = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => {
                self.stats.timeouts();
                return Err(ModbusError::Timeout {
                    addr: self.addr.clone(),
                    block,
                    timeout_ms: self.timeout.as_millis(),
                });
            }
            Ok(answer) => answer,
        };
        self.answered |= answer.is_ok();
        let bad = |stats: &ModbusStats, message: String| {
            stats.bad_answers();
            ModbusError::Transport {
                addr: self.addr.clone(),
                message: bounded(&message),
            }
        };
        match answer {
            Err(tokio_modbus::Error::Transport(e))
                if e.kind() != std::io::ErrorKind::InvalidData =>
            {
                Err(ModbusError::Transport {
                    addr: self.addr.clone(),
                    message: bounded(&e.to_string()),
                })
            }
            Err(e) => Err(bad(&self.stats, e.to_string())),
            Ok(Err(code)) => {
                self.stats.exceptions();
                Ok(Err(code))
            }
            Ok(Ok(Response::ReadHoldingRegisters(words))) => {
                if words.len() == usize::from(block.count) {
                    Ok(Ok(words))
                } else {
                    self.stats.bad_answers();
                    Err(ModbusError::WrongLength {
                        addr: self.addr.clone(),
                        block,
                        got: words.len(),
                    })
                }
            }
            Ok(Ok(other)) => Err(bad(&self.stats, format!("answered {other:?}"))),
        }
    }
}

fn bounded(message: &str) -> String {
    let mut out: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE)
        .collect();
    if message.chars().count() > MAX_MESSAGE {
        out.push('…');
    }
    out
}

/// The TCP stream, counting the bytes that pass both ways.
#[derive(Debug)]
struct Counted {
    inner: TcpStream,
    stats: Arc<ModbusStats>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            self.stats.received(buf.filled().len() - before);
        }
        result
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            self.stats.sent(*n);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
