//! The developer open-API request signature (protocol §1b), pure: parameters in, `sign` out.
//!
//! `sign` = lowercase hex of HMAC-SHA256(secretKey, S), where S is the request parameters
//! flattened (`a.b=..`, arrays `a[0]=..`), sorted by key, joined `k=v` with `&`, followed by
//! `&accessKey=..&nonce=..&timestamp=..` (S is just that tail when there are no parameters).
//! The simulator verifies with it. The bridge's client signs with its own implementation
//! (`sources::signing`), on purpose: a misreading of the protocol shared by both sides
//! would pass every test. The simulator's routes take query parameters only (`k=v` as
//! sent); a JSON body would be flattened with `protocol::open_api::flatten_text`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The string S that gets signed.
pub fn signing_string(
    params: &[(String, String)],
    access_key: &str,
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut parts: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.push(format!("accessKey={access_key}"));
    parts.push(format!("nonce={nonce}"));
    parts.push(format!("timestamp={timestamp}"));
    parts.join("&")
}

/// Lowercase hex HMAC-SHA256 of `message` under `secret_key`.
pub fn hmac_hex(secret_key: &str, message: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret_key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `sign` header for a request with these parameters.
pub fn sign(
    params: &[(String, String)],
    access_key: &str,
    secret_key: &str,
    nonce: &str,
    timestamp: &str,
) -> String {
    hmac_hex(
        secret_key,
        &signing_string(params, access_key, nonce, timestamp),
    )
}

/// True when `signature` (hex, any case) is the right `sign` for the request (constant time).
pub fn verify(
    params: &[(String, String)],
    access_key: &str,
    secret_key: &str,
    nonce: &str,
    timestamp: &str,
    signature: &str,
) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret_key.as_bytes()) else {
        return false;
    };
    mac.update(signing_string(params, access_key, nonce, timestamp).as_bytes());
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn signing_string_sorts_params_and_appends_the_tail() {
        let s = signing_string(
            &[p("sn", "HC31"), p("params.id", "1")],
            "AK",
            "123456",
            "99",
        );
        assert_eq!(
            s,
            "params.id=1&sn=HC31&accessKey=AK&nonce=123456&timestamp=99"
        );
        assert_eq!(
            signing_string(&[], "AK", "1", "2"),
            "accessKey=AK&nonce=1&timestamp=2"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_the_right_sign_and_refuses_others() {
        let params = [p("sn", "HC31")];
        let good = sign(&params, "AK", "SK", "424242", "1700000000000");
        assert!(verify(
            &params,
            "AK",
            "SK",
            "424242",
            "1700000000000",
            &good
        ));
        assert!(verify(
            &params,
            "AK",
            "SK",
            "424242",
            "1700000000000",
            &good.to_uppercase()
        ));
        assert!(!verify(
            &params,
            "AK",
            "SK",
            "424243",
            "1700000000000",
            &good
        ));
        assert!(!verify(
            &params,
            "AK",
            "other",
            "424242",
            "1700000000000",
            &good
        ));
        assert!(!verify(&[], "AK", "SK", "424242", "1700000000000", &good));
        assert!(!verify(
            &params,
            "AK",
            "SK",
            "424242",
            "1700000000000",
            "zz"
        ));
    }
}
