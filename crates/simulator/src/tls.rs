//! The simulator's TLS identity: a CA and a server certificate for 127.0.0.1 and localhost,
//! generated at start (rcgen) or read back from the state dir where the first start kept
//! them, and the rustls server config both HTTPS and MQTT use.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
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

/// The files kept in a state dir: CA certificate and key, server certificate and key (PEM).
const FILES: [&str; 4] = ["ca.pem", "ca.key", "server.pem", "server.key"];

/// The identity kept in `state_dir` (made and stored there on first use), or a fresh one
/// without a state dir.
pub(crate) fn load_or_generate(state_dir: Option<&Path>) -> Result<TlsIdentity, SimulatorError> {
    let Some(dir) = state_dir else {
        return Ok(generate()?.0);
    };
    let io = |what: &str, e: std::io::Error| {
        SimulatorError::Tls(format!("state dir {}: {what}: {e}", dir.display()))
    };
    if FILES.iter().all(|f| dir.join(f).exists()) {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| io(f, e));
        return acceptor(read("ca.pem")?, &read("server.pem")?, &read("server.key")?);
    }
    let (identity, pems) = generate()?;
    std::fs::create_dir_all(dir).map_err(|e| io("create", e))?;
    for (name, text) in FILES.iter().zip(pems) {
        write_private(&dir.join(name), &text).map_err(|e| io(name, e))?;
    }
    Ok(identity)
}

/// Writes `text` readable by the owner only (the keys are secrets).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// The server config for a stored identity.
fn acceptor(ca_pem: String, cert_pem: &str, key_pem: &str) -> Result<TlsIdentity, SimulatorError> {
    let chain = CertificateDer::pem_slice_iter(format!("{cert_pem}{ca_pem}").as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_err)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(tls_err)?;
    server_identity(ca_pem, chain, key)
}

fn server_identity(
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsIdentity, SimulatorError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    Ok(TlsIdentity {
        ca_pem,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    })
}

/// Makes a fresh CA and a server certificate signed by it (SANs 127.0.0.1, localhost);
/// also returns the PEM texts of [`FILES`] in that order.
fn generate() -> Result<(TlsIdentity, [String; 4]), SimulatorError> {
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
    let pems = [
        ca.pem(),
        ca.key().serialize_pem(),
        cert.pem(),
        key.serialize_pem(),
    ];
    Ok((server_identity(ca.pem(), chain, key_der)?, pems))
}

#[cfg(test)]
mod tests {
    #[test]
    fn generates_a_ca_pem() {
        let id = super::load_or_generate(None).unwrap();
        assert!(id.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn a_state_dir_keeps_the_same_ca() {
        let dir = std::env::temp_dir().join(format!("sim-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = super::load_or_generate(Some(&dir)).unwrap();
        let again = super::load_or_generate(Some(&dir)).unwrap();
        assert_eq!(first.ca_pem, again.ca_pem);
        assert_ne!(first.ca_pem, super::load_or_generate(None).unwrap().ca_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("server.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "keys are private");
        }
        std::fs::write(dir.join("server.key"), "garbage").unwrap();
        assert!(super::load_or_generate(Some(&dir)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
