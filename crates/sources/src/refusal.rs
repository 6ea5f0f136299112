//! What the cloud's refusals mean and what the user should do about each (protocol §9):
//! one line per code, and the other region's API host for a login the region refused.

use crate::error::SourceError;

/// "signature is wrong": also intermittent; retried twice with a fresh nonce and timestamp.
pub const SIGNATURE_WRONG: &str = "8521";
/// "accessKey is invalid".
pub const ACCESS_KEY_INVALID: &str = "8513";
/// "no permission".
pub const NO_PERMISSION: &str = "8512";
/// "current device is not allowed to get device info": not linked to the developer key.
pub const DEVICE_NOT_LINKED: &str = "1006";

/// The two regions' API hosts (protocol §9).
const REGION_HOSTS: [&str; 2] = ["api.ecoflow.com", "api-e.ecoflow.com"];

/// The other region's API base URL to suggest for `api_url`; both when the configured
/// host is neither (a proxy, the simulator).
pub fn other_region(api_url: &str) -> String {
    let host = url::Url::parse(api_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    match host.as_deref() {
        Some(h) if h == REGION_HOSTS[0] => format!("\"https://{}\"", REGION_HOSTS[1]),
        Some(h) if h == REGION_HOSTS[1] => format!("\"https://{}\"", REGION_HOSTS[0]),
        _ => format!(
            "\"https://{}\" or \"https://{}\"",
            REGION_HOSTS[0], REGION_HOSTS[1]
        ),
    }
}

/// A refused app login: the same answer comes for a wrong password and for an account of
/// the other region (§9), so the line names both causes and the host to try.
pub fn login_refused(endpoint: String, code: &str, message: &str, api_url: &str) -> SourceError {
    let code = if code.is_empty() {
        String::new()
    } else {
        format!("code {code}: ")
    };
    SourceError::CredentialsRejected {
        endpoint,
        message: format!(
            "{code}{message} — check source.email and source.password; accounts live in one \
             region, so if they are right try source.api_url = {}",
            other_region(api_url)
        ),
    }
}

/// An open-API refusal (after the one 8521 retry) as a one-line error saying what to do;
/// other errors pass unchanged.
pub fn open_api_refusal(error: SourceError, api_url: &str) -> SourceError {
    let SourceError::Refused {
        endpoint,
        code,
        message,
    } = error
    else {
        return error;
    };
    let advice = match code.as_str() {
        SIGNATURE_WRONG => format!(
            "{message} (three times, each with a fresh nonce and timestamp): check source.secret_key, \
             and that this machine's clock is right"
        ),
        ACCESS_KEY_INVALID => format!(
            "{message}: check source.access_key; developer keys belong to one region, so if \
             it is right try source.api_url = {}",
            other_region(api_url)
        ),
        NO_PERMISSION => format!(
            "{message}: this developer key may not do this; check its permissions in the \
             EcoFlow developer portal, or use the app route (source.way_in = \"app\")"
        ),
        DEVICE_NOT_LINKED => format!(
            "{message}: the device is not linked to this developer key (several PowerOcean \
             models cannot be); use the app route: source.way_in = \"app\" with email and password"
        ),
        _ => {
            return SourceError::Refused {
                endpoint,
                code,
                message,
            };
        }
    };
    SourceError::Denied {
        endpoint,
        code,
        advice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str, message: &str) -> SourceError {
        SourceError::Refused {
            endpoint: "/iot-open/sign/certification".into(),
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn the_other_region_is_named() {
        assert_eq!(
            other_region("https://api.ecoflow.com"),
            "\"https://api-e.ecoflow.com\""
        );
        assert_eq!(
            other_region("https://API-E.ecoflow.com/"),
            "\"https://api.ecoflow.com\""
        );
        let both = other_region("https://127.0.0.1:4443");
        assert!(both.contains("api.ecoflow.com") && both.contains("api-e.ecoflow.com"));
        let e = login_refused(
            "/auth/login".into(),
            "2018",
            "Account doesn't exist or incorrect password",
            "https://api-e.ecoflow.com",
        );
        let line = e.to_string();
        assert!(
            line.contains("source.api_url = \"https://api.ecoflow.com\""),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert!(e.is_refusal());
    }

    #[test]
    fn each_code_says_what_to_do() {
        let url = "https://api.ecoflow.com";
        for (code, needle) in [
            ("8521", "source.secret_key"),
            ("8513", "api-e.ecoflow.com"),
            ("8512", "developer portal"),
            ("1006", "source.way_in = \"app\""),
        ] {
            let e = open_api_refusal(refused(code, "text"), url);
            let line = e.to_string();
            assert!(line.contains(needle), "{code}: {line}");
            assert!(line.contains(&format!("code {code}")), "{line}");
            assert!(e.is_refusal(), "{code}: not retried quickly");
            assert!(!line.contains('\n'));
        }
        let other = open_api_refusal(refused("9999", "busy"), url);
        assert!(matches!(other, SourceError::Refused { .. }));
        assert!(!other.is_refusal());
    }
}
