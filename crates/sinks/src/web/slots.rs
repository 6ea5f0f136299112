//! [`Slots`]: the cap on open connections. A connection gets a [`Slot`] when it is
//! accepted and gives it back when it closes. At the cap, a new connection takes the slot
//! of the oldest one that is not serving a request — a half-sent request (slowloris) or
//! an idle keep-alive — which is closed; when every connection is busy answering, the new
//! one is refused. So a flood of connections that never finish a request cannot lock out
//! a health probe or a browser, and the process never runs out of file descriptors.
//!
//! A replaced connection's socket is closed by its own task; [`Admission::Replaced`]
//! carries a [`Closed`] to wait for that, so a burst of connections never holds more
//! sockets than the cap (plus the one being admitted).
//!
//! "Serving a request" lasts from the moment hyper hands the request over until the answer's
//! body has been sent ([`Busy`], held by the body), so an open event stream or a long
//! download is never cut.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// What became of a connection asking for a slot.
pub enum Admission {
    /// Below the cap.
    Admitted(Slot),
    /// At the cap: the oldest idle connection is being closed for this one.
    Replaced(Slot, Closed),
    /// At the cap with every connection busy: refused.
    Full,
}

/// The open connections.
#[derive(Clone)]
pub struct Slots {
    inner: Arc<Mutex<Open>>,
    cap: usize,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    /// By id: the oldest first.
    by_id: BTreeMap<u64, Entry>,
}

struct Entry {
    busy: Arc<AtomicUsize>,
    close: CancellationToken,
    closed: oneshot::Receiver<()>,
}

/// Resolves once a replaced connection's slot (and so its socket) is gone.
pub struct Closed(oneshot::Receiver<()>);

impl Closed {
    pub async fn wait(self) {
        // The sender is never used: it is dropped with the slot.
        let _ = self.0.await;
    }
}

impl Slots {
    pub fn new(cap: usize) -> Slots {
        Slots {
            inner: Arc::default(),
            cap: cap.max(1),
        }
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        // Plain bookkeeping: a panic elsewhere cannot leave it half-changed.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many connections hold a slot now.
    pub fn len(&self) -> usize {
        self.open().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// A slot for a new connection (see [`Admission`]).
    pub fn admit(&self) -> Admission {
        let mut open = self.open();
        let mut replaced = None;
        if open.by_id.len() >= self.cap {
            let idle = open
                .by_id
                .iter()
                .find(|(_, e)| e.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id);
            let Some(entry) = idle.and_then(|id| open.by_id.remove(&id)) else {
                return Admission::Full;
            };
            entry.close.cancel();
            replaced = Some(Closed(entry.closed));
        }
        let id = open.next_id;
        open.next_id += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let close = CancellationToken::new();
        let (gone, closed) = oneshot::channel();
        open.by_id.insert(
            id,
            Entry {
                busy: busy.clone(),
                close: close.clone(),
                closed,
            },
        );
        let slot = Slot {
            id,
            slots: self.clone(),
            busy,
            close,
            _gone: gone,
        };
        match replaced {
            Some(closed) => Admission::Replaced(slot, closed),
            None => Admission::Admitted(slot),
        }
    }
}

/// One connection's place; given back when dropped.
pub struct Slot {
    id: u64,
    slots: Slots,
    busy: Arc<AtomicUsize>,
    close: CancellationToken,
    /// Dropped with the slot: tells a waiting [`Closed`].
    _gone: oneshot::Sender<()>,
}

impl Slot {
    /// Fires when a newer connection took this slot: the connection is to close now.
    pub fn replaced(&self) -> CancellationToken {
        self.close.clone()
    }

    /// Marks the connection busy until the returned guard is dropped.
    pub fn busy(&self) -> BusyCounter {
        BusyCounter(self.busy.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.open().by_id.remove(&self.id);
    }
}

/// Hands out [`Busy`] guards for one connection (moved into its service).
#[derive(Clone)]
pub struct BusyCounter(Arc<AtomicUsize>);

impl BusyCounter {
    pub fn enter(&self) -> Busy {
        self.0.fetch_add(1, Ordering::SeqCst);
        Busy(self.0.clone())
    }
}

/// The connection serves a request while this lives.
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer's body that keeps its connection busy until it is sent (or dropped).
pub struct BusyBody {
    body: Body,
    _busy: Busy,
}

impl BusyBody {
    pub fn wrap(body: Body, busy: Busy) -> Body {
        Body::new(BusyBody { body, _busy: busy })
    }
}

impl http_body::Body for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(a: Admission) -> Slot {
        match a {
            Admission::Admitted(s) | Admission::Replaced(s, _) => s,
            Admission::Full => panic!("refused"),
        }
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let slots = Slots::new(3);
        let first = slot(slots.admit());
        let second = slot(slots.admit());
        let third = slot(slots.admit());
        assert_eq!(slots.len(), 3);
        // The oldest is busy: the second (oldest idle) goes.
        let working = first.busy().enter();
        let (fourth, closed) = match slots.admit() {
            Admission::Replaced(s, closed) => (s, closed),
            _ => panic!("expected a replacement"),
        };
        assert!(!first.replaced().is_cancelled());
        assert!(second.replaced().is_cancelled());
        // Its closing is seen once the replaced connection gave up its slot.
        let mut waiting = Box::pin(closed.wait());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        drop(second);
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        assert_eq!(slots.len(), 3);
        // All busy: refused.
        let _b3 = third.busy().enter();
        let _b4 = fourth.busy().enter();
        assert!(matches!(slots.admit(), Admission::Full));
        // A finished request frees its connection for replacement again.
        drop(working);
        assert!(matches!(slots.admit(), Admission::Replaced(..)));
        assert!(first.replaced().is_cancelled());
        // Closed connections give their slot back.
        drop((first, third, fourth));
        assert_eq!(slots.len(), 0, "the replacement was dropped at once too");
        assert!(matches!(slots.admit(), Admission::Admitted(_)));
    }
}
