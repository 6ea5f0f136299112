//! The simulator's MQTT side, chosen at start: its own broker behind TLS (accepting the
//! generated [`Logins`]), or a link into an external broker. Either way it yields the
//! outlet the devices publish through, the address clients dial, and what the
//! certification endpoints hand out ([`MqttInfo`]).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, Message};
use crate::credentials::{Logins, MqttCredentials, random_hex};
use crate::outlet::{self, Outlet};
use crate::stats::Counters;
use crate::{ExternalBroker, SimulatorConfig, SimulatorError, dial_addr};

/// Where and how a client reaches MQTT (what a certification answer hands out).
#[derive(Debug, Clone)]
pub(crate) struct MqttInfo {
    pub(crate) url: String,
    pub(crate) port: u16,
    pub(crate) protocol: String,
    pub(crate) account: String,
    pub(crate) password: String,
}

/// The started MQTT side.
pub(crate) struct MqttSide {
    /// Where device payloads go.
    pub(crate) outlet: Outlet,
    /// The address clients dial.
    pub(crate) addr: SocketAddr,
    /// The embedded broker (`None` with an external one).
    pub(crate) broker: Option<Broker>,
    /// The task that keeps the external link up (`None` with the embedded broker).
    pub(crate) link: Option<JoinHandle<()>>,
    /// What the app and the open-API certification answers say.
    pub(crate) app: MqttInfo,
    pub(crate) open: MqttInfo,
}

/// Starts the embedded broker, or links to `config.external_broker`; client publishes
/// (get-all requests) go to `inbound`.
pub(crate) async fn start(
    config: &SimulatorConfig,
    acceptor: &tokio_rustls::TlsAcceptor,
    logins: &Logins,
    inbound: broadcast::Sender<Message>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> Result<MqttSide, SimulatorError> {
    match &config.external_broker {
        None => {
            let broker = Broker::start(
                config.mqtt_bind,
                acceptor.clone(),
                logins.accepted(),
                inbound,
                counters,
                stop,
            )
            .await?;
            let addr = dial_addr(broker.addr());
            let info = |c: &MqttCredentials| MqttInfo {
                url: addr.ip().to_string(),
                port: addr.port(),
                protocol: "mqtts".to_string(),
                account: c.username.clone(),
                password: c.password.clone(),
            };
            Ok(MqttSide {
                outlet: Outlet::Embedded(broker.router()),
                addr,
                app: info(&logins.app),
                open: info(&logins.open),
                broker: Some(broker),
                link: None,
            })
        }
        Some(ext) => external(ext, inbound, stop).await,
    }
}

/// The link into an external broker; both certification answers hand out its login.
async fn external(
    ext: &ExternalBroker,
    inbound: broadcast::Sender<Message>,
    stop: CancellationToken,
) -> Result<MqttSide, SimulatorError> {
    let addr = tokio::net::lookup_host((ext.host.as_str(), ext.port))
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| SimulatorError::ExternalBroker(format!("cannot resolve {}", ext.host)))?;
    let client_id = format!("oceanbridge-simulator-{}", random_hex(4)?);
    let (outlet, link) = outlet::connect_external(ext, &client_id, inbound, stop);
    let info = MqttInfo {
        url: ext.host.clone(),
        port: ext.port,
        protocol: "mqtt".to_string(),
        account: ext.username.clone().unwrap_or_default(),
        password: ext.password.clone().unwrap_or_default(),
    };
    Ok(MqttSide {
        outlet,
        addr,
        broker: None,
        link: Some(link),
        app: info.clone(),
        open: info,
    })
}
