//! The embedded MQTT 3.1.1 broker behind TLS: checks the certification credentials, routes
//! publishes to subscribers, hands client publishes (get-all requests) to the devices, and
//! obeys the fault switches. Packets are parsed with rumqttc's MQTT v4 codec.

mod control;

pub(crate) use control::BrokerControl;
