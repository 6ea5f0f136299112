//! The Modbus source against a hostile or broken server over real sockets: garbage,
//! answers too short, foreign transaction ids, an oversized frame header, a connection
//! closed mid-request, silence, exceptions to every request. The source never panics,
//! never publishes, counts each kind, reconnects by its backoff and logs a line per
//! change of status, not per failure. And a firmware refusing one block (no pack
//! registers): the rest is read and published.

mod modbus_common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modbus_common::*;
use protocol::modbus::{Image, Point, RegValue, Values};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does on a connection.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Garbage,
    BadPdu,
    Short,
    ForeignId,
    Oversized,
    CloseMidRequest,
    Silence,
    ExceptionsOnly,
}

/// The request's header: transaction id, unit, function code and count.
async fn request(s: &mut TcpStream) -> Option<([u8; 2], u8, u8, u16)> {
    read_request(s)
        .await
        .map(|(tid, unit, fc, _, count)| (tid, unit, fc, count))
}

/// The request: transaction id, unit, function code, start and count.
async fn read_request(s: &mut TcpStream) -> Option<([u8; 2], u8, u8, u16, u16)> {
    let mut r = [0u8; 12];
    s.read_exact(&mut r).await.ok()?;
    let word = |i: usize| u16::from_be_bytes([r[i], r[i + 1]]);
    Some(([r[0], r[1]], r[6], r[7], word(8), word(10)))
}

/// Serves `image` (the device's conventions, from `protocol::modbus`), but answers the
/// read starting at `refused` with "illegal data address", as a firmware without it.
async fn serve_image(mut s: TcpStream, image: Arc<Image>, refused: u16) {
    while let Some((tid, unit, fc, start, count)) = read_request(&mut s).await {
        let reply = if start == refused {
            [&tid[..], &[0, 0, 0, 3, unit, fc | 0x80, 2]].concat()
        } else {
            let words = image.read(start, count);
            let len = (3 + 2 * words.len()) as u16;
            let mut v = [&tid[..], &[0, 0], &len.to_be_bytes(), &[unit, fc]].concat();
            v.push((2 * words.len()) as u8);
            v.extend(words.iter().flat_map(|w| w.to_be_bytes()));
            v
        };
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

async fn serve(mut s: TcpStream, how: Behaviour) {
    while let Some((tid, unit, fc, count)) = request(&mut s).await {
        let reply: Vec<u8> = match how {
            // Not Modbus TCP: protocol id 0xBEEF.
            Behaviour::Garbage => vec![0xDE, 0xAD, 0xBE, 0xEF, 0, 6, 1, 3, 0xFF, 0xFF, 0xFF, 0xFF],
            // A byte count of 200 over one byte of data.
            Behaviour::BadPdu => [&tid[..], &[0, 0, 0, 4, unit, fc, 200, 0x12]].concat(),
            Behaviour::Short => [&tid[..], &[0, 0, 0, 5, unit, fc, 2, 0x12, 0x34]].concat(),
            Behaviour::ForeignId => {
                let other = u16::from_be_bytes(tid).wrapping_add(7).to_be_bytes();
                let len = 3 + 2 * count;
                let mut v = [&other[..], &[0, 0], &len.to_be_bytes(), &[unit, fc]].concat();
                v.push((2 * count) as u8);
                v.resize(v.len() + usize::from(2 * count), 0);
                v
            }
            Behaviour::Oversized => [&tid[..], &[0, 0, 0xFF, 0xFF, unit, fc, 0xFF]].concat(),
            Behaviour::CloseMidRequest => return,
            Behaviour::Silence => continue,
            Behaviour::ExceptionsOnly => [&tid[..], &[0, 0, 0, 3, unit, fc | 0x80, 2]].concat(),
        };
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// A server doing `plan[i % len]` on its i-th connection; counts connections.
async fn hostile(plan: Vec<Behaviour>) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("address");
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let i = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s, plan[i % plan.len()]));
        }
    });
    (addr, seen)
}

/// Log lines, captured (the source logs with `tracing`).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Installs itself as this thread's subscriber (the test runs on one thread).
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let lines = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || lines.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

#[tokio::test]
async fn a_hostile_server_is_counted_never_published_and_logged_per_change() {
    let lines = Lines::default();
    let _guard = lines.capture();
    use Behaviour::*;
    // Five ways to fail (unreachable), then two never completing an answer (held off):
    // two changes of status a round.
    let (addr, seen) = hostile(vec![
        Garbage,
        BadPdu,
        Short,
        ForeignId,
        CloseMidRequest,
        Oversized,
        Silence,
    ])
    .await;
    let mut run = start(sources::modbus::ModbusConfig {
        timeout: Duration::from_millis(200),
        reconnect_min: Duration::from_millis(10),
        reconnect_max: Duration::from_millis(40),
        ..source_config(addr)
    });
    testkit::wait_until("three rounds", WAIT, || seen.load(Ordering::SeqCst) >= 21).await;
    let s = run.stats.snapshot();
    assert!(run.readings.try_recv().is_err(), "nothing published");
    assert_eq!((s.polls, s.published), (0, 0), "{s:?}");
    // Garbage, a broken PDU, short answers and foreign ids are bad answers.
    assert!(s.bad_answers >= 8, "{s:?}");
    assert!(s.timeouts >= 4 && s.held_off >= 4, "{s:?}");
    assert!(s.connects >= 20, "{s:?}");
    run.stop().await;

    let text = lines.text();
    let warnings = text.lines().filter(|l| l.contains("WARN")).count();
    let rounds = seen.load(Ordering::SeqCst).div_ceil(7);
    assert!(
        warnings <= 2 * rounds + 1,
        "{warnings} warnings for {rounds} rounds:\n{text}"
    );
    assert!(text.contains("one Modbus client at a time"), "{text}");
    // No line quotes the hostile server at length.
    assert!(text.lines().all(|l| l.len() < 600), "{text}");
}

#[tokio::test]
async fn a_server_refusing_every_read_is_said_once_and_publishes_nothing() {
    let lines = Lines::default();
    let _guard = lines.capture();
    let (addr, seen) = hostile(vec![Behaviour::ExceptionsOnly]).await;
    let mut run = start(source_config(addr));
    testkit::wait_until("ten refused polls", WAIT, || {
        run.stats.snapshot().skipped >= 10
    })
    .await;
    let s = run.stats.snapshot();
    assert!(run.readings.try_recv().is_err(), "nothing published");
    assert_eq!(s.published, 0, "{s:?}");
    // Every block of every poll was refused, on one connection kept open.
    assert_eq!(s.exceptions, s.requests, "{s:?}");
    assert_eq!((s.connects, seen.load(Ordering::SeqCst)), (1, 1), "{s:?}");
    run.stop().await;
    let text = lines.text();
    assert_eq!(text.matches("was refused").count(), 1, "{text}");
}

#[tokio::test]
async fn a_refused_block_leaves_its_registers_out_and_the_rest_goes_on() {
    let lines = Lines::default();
    let _guard = lines.capture();
    let mut v = Values::new();
    v.set(Point::Serial, RegValue::Text("HC31TESTSERIAL01".into()));
    v.set_number(Point::RatedPower, 6000.0);
    v.set_number(Point::SolarPower, 1234.5);
    v.set_number(Point::BatteryPower, 800.0);
    v.set_number(Point::SolarTotal, 4321.0);
    let image = Arc::new(Image::new(&v));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            // This firmware has no pack registers.
            tokio::spawn(serve_image(s, image.clone(), 42081));
        }
    });
    let mut run = start(source_config(addr));
    let first = run.reading().await;
    run.reading().await;
    assert_eq!(first.device_sn, "HC31TESTSERIAL01");
    assert_eq!(state(&first, "EnergyStreamItem.pvPwr"), Some(1234.5));
    // + = charge on the register, − while charging in the stream.
    assert_eq!(state(&first, "EnergyStreamItem.bpPwr"), Some(-800.0));
    assert_eq!(extra(&first, "solar_total"), Some(4321.0));
    assert_eq!(extra(&first, "packs_online"), None);
    run.stop().await;
    let text = lines.text();
    assert_eq!(text.matches("42081–42084 was refused").count(), 1, "{text}");
}
