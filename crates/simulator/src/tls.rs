//! The simulator's TLS identity: a CA and a server certificate for 127.0.0.1 and localhost,
//! generated at start (rcgen), and the rustls server config both HTTPS and MQTT use.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::SimulatorError;

/// The generated certificates and the ready server config.
pub(crate) struct TlsIdentity {
    /// PEM of the CA certificate clients must trust.
    pub(crate) ca_pem: String,
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

fn tls_err(e: impl std::fmt::Display) -> SimulatorError {
    SimulatorError::Tls(e.to_string())
}

/// Makes a fresh CA and a server certificate signed by it (SANs 127.0.0.1, localhost).
pub(crate) fn generate() -> Result<TlsIdentity, SimulatorError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "oceanbridge simulator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(tls_err)?;

    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "oceanbridge simulator");
    params.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::DnsName("localhost".try_into().map_err(tls_err)?),
    ];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(tls_err)?;
    let cert = params.signed_by(&key, &ca).map_err(tls_err)?;

    let chain = vec![cert.der().clone(), CertificateDer::from(ca.der().to_vec())];
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(tls_err)?;
    Ok(TlsIdentity {
        ca_pem: ca.pem(),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn generates_a_ca_pem() {
        let id = super::generate().unwrap();
        assert!(id.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
