//! A loopback address where nothing listens and nothing can start listening: for tests
//! of "cannot connect". (A port that was merely free a moment ago may be taken by then.)

use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

/// A TCP port bound but never listening: connecting is refused for as long as this lives.
pub struct ClosedPort {
    _socket: Socket,
    pub addr: SocketAddr,
}

/// Reserves a refused loopback port (see [`ClosedPort`]).
pub fn closed_port() -> ClosedPort {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)
        .unwrap_or_else(|e| panic!("cannot create a socket: {e}"));
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    socket
        .bind(&any.into())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    let addr = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or_else(|| panic!("the bound socket has no address"));
    ClosedPort {
        _socket: socket,
        addr,
    }
}
