//! Source configuration (`[source]` in `oceanbridge.toml`): the EcoFlow cloud
//! ([`CloudConfig`]) or, in fleet mode, the user's own broker ([`BrokerConfig`]). Durations
//! are written the humantime way: `"500ms"`, `"30s"`, `"5m"`.

mod broker;
mod cloud;

use std::time::Duration;

pub use broker::{BrokerConfig, DEFAULT_TOPICS, WhenFull};
pub use cloud::{CloudConfig, DEFAULT_API_URL, WayIn};

/// The longest reconnect delay, get-all period or timeout accepted: a day.
const DAY: Duration = Duration::from_secs(24 * 3600);
/// MQTT carries the keep-alive as 16-bit seconds.
const MAX_KEEPALIVE: Duration = Duration::from_secs(u16::MAX as u64);

/// `key` must be more than zero and at most `max`; the message names the key.
fn check_duration(key: &str, value: Duration, max: Duration) -> Result<(), String> {
    if value.is_zero() || value > max {
        return Err(format!(
            "{key} = {:?} must be more than 0 and at most {}",
            humantime::format_duration(value).to_string(),
            humantime::format_duration(max)
        ));
    }
    Ok(())
}

/// The timers both MQTT sources have. `prefix` is how the section names its keys.
fn check_timers(
    prefix: &str,
    keepalive: Duration,
    reconnect_min: Duration,
    reconnect_max: Duration,
) -> Result<(), String> {
    if keepalive > MAX_KEEPALIVE {
        return Err(format!(
            "{prefix}keepalive must be at most {} (MQTT sends it as 16-bit seconds)",
            humantime::format_duration(MAX_KEEPALIVE)
        ));
    }
    check_duration(&format!("{prefix}reconnect_min"), reconnect_min, DAY)?;
    check_duration(&format!("{prefix}reconnect_max"), reconnect_max, DAY)?;
    if reconnect_max < reconnect_min {
        return Err(format!(
            "{prefix}reconnect_max must not be less than {prefix}reconnect_min"
        ));
    }
    Ok(())
}
