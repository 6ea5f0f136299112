//! Battery modes with a lease for optimisers (docs/optimisers.md): [`lease`] decides,
//! [`BatteryModes`] carries it out through the settings controller (protocol §10) and
//! keeps the running leases in the state directory.

pub mod lease;
