//! Open-API request signing (protocol §1b): flatten, sort, append the auth tail, HMAC-SHA256.
//!
//! The simulator verifies signatures with its own implementation (`simulator::open_api`),
//! on purpose: a misreading of the protocol shared by both sides could not show in tests.
//! Only the JSON flattening is shared (`protocol::open_api::flatten_text`).

use hmac::{Hmac, KeyInit, Mac};
use protocol::open_api::flatten_text;
use serde_json::Value as Json;
use sha2::Sha256;

/// The four auth headers of one signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub access_key: String,
    pub nonce: String,
    pub timestamp: String,
    pub sign: String,
}

/// The string that is signed: sorted `k=v` pairs, then `accessKey`, `nonce`, `timestamp`.
pub fn string_to_sign(params: &Json, access_key: &str, nonce: &str, timestamp: &str) -> String {
    let mut pairs = flatten_text(params);
    pairs.sort();
    let mut parts: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.push(format!("accessKey={access_key}"));
    parts.push(format!("nonce={nonce}"));
    parts.push(format!("timestamp={timestamp}"));
    parts.join("&")
}

/// Lowercase hex HMAC-SHA256 of `message` under `secret_key`.
pub fn hmac_hex(secret_key: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty MAC text.
    match Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Signs a request with an explicit nonce and timestamp (deterministic; for tests).
pub fn sign_with(
    params: &Json,
    access_key: &str,
    secret_key: &str,
    nonce: &str,
    timestamp: &str,
) -> SignedHeaders {
    let message = string_to_sign(params, access_key, nonce, timestamp);
    SignedHeaders {
        access_key: access_key.to_string(),
        nonce: nonce.to_string(),
        timestamp: timestamp.to_string(),
        sign: hmac_hex(secret_key, &message),
    }
}

/// Digits of the nonce. Peers use 6 random digits; at a few requests a minute that
/// collides with a recent nonce often enough to draw 8521 (protocol §9), 18 digits never.
pub const NONCE_DIGITS: usize = 18;

/// Signs a request now, with a random 18-digit nonce and the millisecond clock.
pub fn sign(params: &Json, access_key: &str, secret_key: &str) -> SignedHeaders {
    let nonce = format!(
        "{:018}",
        rand::random_range(0..1_000_000_000_000_000_000u64)
    );
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
        .to_string();
    sign_with(params, access_key, secret_key, &nonce, &timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_nested_and_arrays_sorted() {
        let p = json!({"sn": "HJ31", "params": {"b": 2, "a": [1, "x"]}});
        let s = string_to_sign(&p, "AK", "123456", "1700000000000");
        assert_eq!(
            s,
            "params.a[0]=1&params.a[1]=x&params.b=2&sn=HJ31&accessKey=AK&nonce=123456&timestamp=1700000000000"
        );
    }

    /// §9: booleans as `true`/`false`, null as `null` (how the server reads the JSON).
    #[test]
    fn booleans_and_null_are_signed_the_json_way() {
        let p = json!({"enabled": true, "off": false, "none": null, "n": 1.5});
        let s = string_to_sign(&p, "AK", "1", "2");
        assert_eq!(
            s,
            "enabled=true&n=1.5&none=null&off=false&accessKey=AK&nonce=1&timestamp=2"
        );
    }

    #[test]
    fn no_params_is_just_the_tail() {
        let s = string_to_sign(&json!({}), "AK", "000001", "5");
        assert_eq!(s, "accessKey=AK&nonce=000001&timestamp=5");
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signature_depends_on_secret_and_params() {
        let a = sign_with(&json!({"sn": "A"}), "AK", "SK", "1", "2");
        let b = sign_with(&json!({"sn": "A"}), "AK", "SK2", "1", "2");
        let c = sign_with(&json!({"sn": "B"}), "AK", "SK", "1", "2");
        assert_ne!(a.sign, b.sign);
        assert_ne!(a.sign, c.sign);
        assert_eq!(a.sign.len(), 64);
        let n = sign(&json!({}), "AK", "SK");
        assert_eq!(n.nonce.len(), NONCE_DIGITS);
        assert!(n.nonce.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(sign(&json!({}), "AK", "SK").nonce, n.nonce);
    }
}
