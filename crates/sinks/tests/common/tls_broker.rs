//! A private mosquitto as a real user's Home Assistant broker: TLS only (a CA and a
//! server certificate for 127.0.0.1 made here with rcgen, as the simulator makes its
//! own) and a password file (`mosquitto_passwd`), anonymous clients refused.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use testkit::{Missing, Mosquitto, TempDir};

pub const USER: &str = "ha-user";

/// The broker, its CA certificate file and the one user's password.
pub struct TlsBroker {
    pub mosquitto: Mosquitto,
    pub ca_file: PathBuf,
    pub password: String,
    _dir: TempDir,
}

impl TlsBroker {
    /// `mqtts://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.mosquitto.port())
    }
}

/// The mosquitto binary and `mosquitto_passwd` (both in Debian's `mosquitto`).
pub fn tools() -> Result<(PathBuf, PathBuf), Missing> {
    Ok((
        testkit::services::mosquitto()?,
        testkit::services::program("mosquitto_passwd", "mosquitto")?,
    ))
}

/// Starts the broker: TLS with a fresh CA, user [`USER`] with a fresh password.
pub fn start((mosquitto, passwd): &(PathBuf, PathBuf)) -> TlsBroker {
    let dir = testkit::temp_dir("tls-broker");
    let (ca_pem, cert_pem, key_pem) = certificates();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write a broker file");
        path
    };
    let ca_file = write("ca.pem", &ca_pem);
    let cert = write("server.pem", &cert_pem);
    let key = write("server.key", &key_pem);
    let password = testkit::unique("pw-ha");
    let password_file = dir.path().join("passwords");
    let status = Command::new(passwd)
        .arg("-b")
        .arg("-c")
        .arg(&password_file)
        .arg(USER)
        .arg(&password)
        .status()
        .expect("run mosquitto_passwd");
    assert!(status.success(), "mosquitto_passwd failed");
    // `user root`: a root mosquitto otherwise drops to the `mosquitto` user before it
    // reads the password file, which lives in our private temp folder (no effect when
    // the tests do not run as root).
    let conf = format!(
        "certfile {}\nkeyfile {}\npassword_file {}\nallow_anonymous false\nuser root\n",
        cert.display(),
        key.display(),
        password_file.display()
    );
    TlsBroker {
        mosquitto: Mosquitto::start_with(mosquitto, &conf),
        ca_file,
        password,
        _dir: dir,
    }
}

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it (PEM: CA
/// certificate, server certificate, server key).
fn certificates() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "oceanbridge test broker CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "test broker");
    params.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::DnsName("localhost".try_into().expect("dns name")),
    ];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
