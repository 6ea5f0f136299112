//! TLS client settings shared by HTTPS (reqwest) and MQTT (rumqttc): public web roots
//! plus, only when configured, extra CA certificates from a PEM file. Verification is
//! always on; the crypto provider is `ring` (no OpenSSL, no C toolchain beyond cc).

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a TLS client config could not be built; each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("bad CA PEM: {0}")]
    BadPem(String),
    #[error("unusable CA certificate: {0}")]
    UnusableCert(String),
    #[error("CA PEM holds no CERTIFICATE block")]
    NoCertificate,
    #[error("cannot read CA file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Builds the client TLS config: web roots + the certificates in `extra_ca_pem`.
pub fn client_config(extra_ca_pem: Option<&str>) -> Result<ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| TlsError::BadPem(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| TlsError::UnusableCert(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError::NoCertificate);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Reads an extra CA PEM file (for `ca_file`).
pub fn read_ca_file(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_roots_only_by_default() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn garbage_ca_is_a_clear_error() {
        let e = client_config(Some("not a pem")).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    }
}
