//! The simulator's MQTT side, chosen at start: its own broker behind TLS (accepting the
//! generated [`Logins`]), or a link into an external broker. Either way it yields the
//! outlet the devices publish through, the address clients dial, and what the
//! certification endpoints hand out ([`MqttInfo`]).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::SharedHandles;
use crate::broker::{Broker, ConnectRules, Message};
use crate::credentials::{CredentialBook, MqttCredentials, random_hex};
use crate::outlet::{self, Outlet};
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

/// The host name a certification answer gives for a broker dialled at `addr`: with
/// `distinct` a loopback IP is named `localhost`, so it differs from the API's host
/// (protocol §9: connect to the broker certification names, not to the API host).
fn broker_host(addr: SocketAddr, distinct: bool) -> String {
    if distinct && addr.ip().is_loopback() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    }
}

/// Starts the embedded broker (accepting the logins in `book`), or links to
/// `config.external_broker`; client publishes (get-all requests, switches) go to
/// `shared.inbound`.
pub(crate) async fn start(
    config: &SimulatorConfig,
    acceptor: &tokio_rustls::TlsAcceptor,
    book: &Arc<CredentialBook>,
    shared: &SharedHandles,
    stop: CancellationToken,
) -> Result<MqttSide, SimulatorError> {
    match &config.external_broker {
        None => {
            let rules = ConnectRules {
                user_id: config.user_id.clone(),
                app_client_id_form: config.field.app_client_id_form,
                takeover: config.field.client_id_takeover,
            };
            let broker = Broker::start(
                config.mqtt_bind,
                acceptor.clone(),
                book.clone(),
                rules,
                shared,
                stop,
            )
            .await?;
            let addr = dial_addr(broker.addr());
            let host = broker_host(addr, config.field.distinct_broker_host);
            let logins = book.base();
            let info = |c: &MqttCredentials| MqttInfo {
                url: host.clone(),
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
        Some(ext) => external(ext, shared.inbound.clone(), stop).await,
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
