//! One client connection: TLS handshake, CONNECT with the certification credentials and a
//! client id the field rules accept (protocol §9), then subscribe/publish/ping until the
//! client leaves, a fault or a takeover drops it, its login expires, or shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, QoS, SubAck,
    SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::BrokerCtx;
use super::router::Message;
use crate::credentials::LoginCheck;
use crate::field::client_id;
use crate::field::stats::{APP, Refusal};
use crate::stats::{bump, drop_one};

/// Largest packet a client may send: twice the bridge's 1 MiB payload limit, so a test
/// can push an oversized payload through to a subscriber (the bridge must skip it).
const MAX_PACKET: usize = 2 * 1024 * 1024;
/// Time allowed for the TLS handshake and the CONNECT packet.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between the last delivered message and the close at shutdown.
const LAST_WORDS_GRACE: Duration = Duration::from_millis(200);

/// Why a session ended early.
#[derive(Debug)]
enum SessionEnd {
    Io,
    Protocol,
}

pub(super) async fn run(tcp: TcpStream, ctx: Arc<BrokerCtx>, shutdown: CancellationToken) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        h = timeout(HANDSHAKE_TIMEOUT, ctx.acceptor.accept(tcp)) => h,
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!("mqtt tls handshake failed: {e}");
            return;
        }
        Err(_) => return,
    };
    if let Err(e) = serve(tls, &ctx, &shutdown).await {
        debug!("mqtt session ended: {e:?}");
    }
}

async fn serve<S>(
    stream: S,
    ctx: &BrokerCtx,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(4096);
    let first = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        first = timeout(HANDSHAKE_TIMEOUT, read_packet(&mut rd, &mut buf)) => first,
    };
    let first = first.map_err(|_| SessionEnd::Io)??;
    let Packet::Connect(connect) = first else {
        return Err(SessionEnd::Protocol);
    };
    let login = connect.login.as_ref();
    let check = login.map_or(LoginCheck::Unknown, |l| {
        ctx.book.check(&l.username, &l.password)
    });
    let (route, expires) = match check {
        LoginCheck::Valid { route, expires } => (route, expires),
        LoginCheck::Expired(route) => {
            return refuse(&mut wr, ctx, Some(route), Refusal::ExpiredCredentials).await;
        }
        LoginCheck::Unknown => {
            let route = login.and_then(|l| ctx.book.route_of(&l.username));
            return refuse(&mut wr, ctx, route, Refusal::BadCredentials).await;
        }
    };
    let client_id = if connect.client_id.is_empty() {
        format!(
            "auto-{}",
            ctx.counters
                .mqtt_connections
                .load(std::sync::atomic::Ordering::Relaxed)
        )
    } else {
        connect.client_id.clone()
    };
    if route == APP
        && ctx.rules.app_client_id_form
        && !client_id::app_form_ok(&connect.client_id, &ctx.rules.user_id)
    {
        return refuse(&mut wr, ctx, Some(route), Refusal::ClientIdForm).await;
    }
    if !ctx.field.admit_client_id(route, &client_id) {
        return refuse(&mut wr, ctx, Some(route), Refusal::ClientIdLimit).await;
    }
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    let (id, kill, took_over) = ctx.router.register(&client_id, tx, ctx.rules.takeover);
    ctx.field.connected(route, took_over);
    let mut generation = ctx.control.generation();
    generation.borrow_and_update();
    bump(&ctx.counters.mqtt_connections);
    bump(&ctx.counters.mqtt_clients);
    let result = async {
        write_packet(
            &mut wr,
            Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)),
        )
        .await?;
        let keep_alive = (connect.keep_alive > 0)
            .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
        let mut last_seen = Instant::now();
        loop {
            // Packets already buffered first (several may arrive in one read).
            while let Some(packet) = parse(&mut buf)? {
                last_seen = Instant::now();
                if !handle(packet, id, ctx, &mut wr).await? {
                    return Ok(());
                }
            }
            let deadline = keep_alive.map(|k| last_seen + k);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    // Deliver what is already queued (e.g. the devices' offline messages).
                    while let Ok(msg) = rx.try_recv() {
                        let publish = Publish::from_bytes(msg.topic, QoS::AtMostOnce, msg.payload);
                        write_packet(&mut wr, Packet::Publish(publish)).await?;
                    }
                    // Let the client read the last messages before it sees the close
                    // (rumqttc drops packets that arrive in the same read as EOF).
                    tokio::time::sleep(LAST_WORDS_GRACE).await;
                    return Ok(());
                }
                _ = kill.cancelled() => return Ok(()),
                _ = async { match expires { Some(e) => sleep_until(e).await, None => std::future::pending().await } } => {
                    // Protocol §9: an expired login loses its connections.
                    ctx.field.expired_drop(route);
                    return Ok(());
                }
                _ = generation.changed() => return Ok(()),
                _ = async { match deadline { Some(d) => sleep_until(d).await, None => std::future::pending().await } } => {
                    return Err(SessionEnd::Io);
                }
                msg = rx.recv() => {
                    let Some(msg) = msg else { return Ok(()) };
                    let publish = Publish::from_bytes(msg.topic, QoS::AtMostOnce, msg.payload);
                    write_packet(&mut wr, Packet::Publish(publish)).await?;
                }
                n = rd.read_buf(&mut buf) => {
                    match n {
                        Ok(0) | Err(_) => return Err(SessionEnd::Io),
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    .await;
    ctx.router.unregister(id);
    drop_one(&ctx.counters.mqtt_clients);
    let _ = wr.shutdown().await;
    result
}

/// Answers a CONNECT with a refusal and counts it: "bad user name or password" for an
/// unknown login, "not authorised" for the field rules (expired login, client id), as the
/// EcoFlow broker answers them (protocol §9).
async fn refuse<W: AsyncWrite + Unpin>(
    wr: &mut W,
    ctx: &BrokerCtx,
    route: Option<&'static str>,
    why: Refusal,
) -> Result<(), SessionEnd> {
    bump(&ctx.counters.mqtt_refused);
    if let Some(route) = route {
        ctx.field.refused(route, why);
    }
    let code = match why {
        Refusal::BadCredentials => ConnectReturnCode::BadUserNamePassword,
        _ => ConnectReturnCode::NotAuthorized,
    };
    write_packet(wr, Packet::ConnAck(ConnAck::new(code, false))).await
}

/// Handles one packet; false means the client said goodbye.
async fn handle<W: AsyncWrite + Unpin>(
    packet: Packet,
    id: u64,
    ctx: &BrokerCtx,
    wr: &mut W,
) -> Result<bool, SessionEnd> {
    match packet {
        Packet::Publish(p) => {
            if !rumqttc::valid_topic(&p.topic) {
                return Err(SessionEnd::Protocol);
            }
            match p.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => write_packet(wr, Packet::PubAck(PubAck::new(p.pkid))).await?,
                QoS::ExactlyOnce => write_packet(wr, Packet::PubRec(PubRec::new(p.pkid))).await?,
            }
            ctx.router.client_publish(Message {
                topic: p.topic,
                payload: p.payload,
            });
        }
        Packet::PubRel(r) => write_packet(wr, Packet::PubComp(PubComp::new(r.pkid))).await?,
        Packet::Subscribe(s) => {
            let codes = s
                .filters
                .iter()
                .map(|f| {
                    if rumqttc::valid_filter(&f.path) {
                        ctx.router.subscribe(id, &f.path);
                        SubscribeReasonCode::Success(QoS::AtMostOnce)
                    } else {
                        SubscribeReasonCode::Failure
                    }
                })
                .collect();
            write_packet(wr, Packet::SubAck(SubAck::new(s.pkid, codes))).await?;
        }
        Packet::Unsubscribe(u) => {
            for topic in &u.topics {
                ctx.router.unsubscribe(id, topic);
            }
            write_packet(wr, Packet::UnsubAck(UnsubAck::new(u.pkid))).await?;
        }
        Packet::PingReq => write_packet(wr, Packet::PingResp).await?,
        Packet::Disconnect => return Ok(false),
        Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => {}
        Packet::Connect(_)
        | Packet::ConnAck(_)
        | Packet::SubAck(_)
        | Packet::UnsubAck(_)
        | Packet::PingResp => return Err(SessionEnd::Protocol),
    }
    Ok(true)
}

/// One whole packet from the buffer, if it holds one.
fn parse(buf: &mut BytesMut) -> Result<Option<Packet>, SessionEnd> {
    match Packet::read(buf, MAX_PACKET) {
        Ok(p) => Ok(Some(p)),
        Err(rumqttc::Error::InsufficientBytes(_)) => Ok(None),
        Err(_) => Err(SessionEnd::Protocol),
    }
}

async fn read_packet<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
) -> Result<Packet, SessionEnd> {
    loop {
        if let Some(p) = parse(buf)? {
            return Ok(p);
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(SessionEnd::Io),
            Ok(_) => {}
        }
    }
}

async fn write_packet<W: AsyncWrite + Unpin>(wr: &mut W, packet: Packet) -> Result<(), SessionEnd> {
    let mut out = BytesMut::with_capacity(packet.size() + 8);
    packet
        .write(&mut out, MAX_PACKET * 2)
        .map_err(|_| SessionEnd::Protocol)?;
    wr.write_all(&out).await.map_err(|_| SessionEnd::Io)?;
    wr.flush().await.map_err(|_| SessionEnd::Io)
}
