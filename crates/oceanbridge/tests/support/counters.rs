//! Reading energy counters as Home Assistant would sum them: the numeric values a bridge
//! published on its state topics (`<prefix>/<SN>/<channel>/<state>`, docs/home-assistant.md),
//! by catalog key and in arrival order, and the steps back in a series — which the
//! Energy dashboard takes for a reset and sums forever unless it is the midnight one.

use std::collections::BTreeMap;
use std::time::Instant;

use catalog::StateDef;

use super::wire::Heard;

/// A daily counter falls to this share of its last value or below at local midnight
/// (the bridge's reset rule, docs/field-behaviour.md).
pub const RESET_SHARE: f64 = 0.1;

/// One numeric value on a state topic.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub at: Instant,
    pub state: &'static StateDef,
    pub value: f64,
}

/// The catalog state a topic under `<prefix>/<sn>/` is for.
pub fn state_of_topic(topic: &str, prefix: &str, sn: &str) -> Option<&'static StateDef> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let rest = rest.strip_prefix(sn)?.strip_prefix('/')?;
    let (channel, name) = rest.split_once('/')?;
    let key = format!("{channel}.{name}");
    catalog::STATES.iter().find(|s| s.key == key)
}

/// The numeric values among `messages` (arrival, topic, payload) on state topics of `sn`.
pub fn numbers(messages: &[(Instant, String, String)], prefix: &str, sn: &str) -> Vec<Published> {
    messages
        .iter()
        .filter_map(|(at, topic, payload)| {
            let state = state_of_topic(topic, prefix, sn)?;
            let value = payload.trim().parse().ok()?;
            Some(Published {
                at: *at,
                state,
                value,
            })
        })
        .collect()
}

/// Each key's values in order.
pub fn series(values: &[Published]) -> BTreeMap<&'static str, Vec<(Instant, f64)>> {
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for p in values {
        out.entry(p.state.key).or_default().push((p.at, p.value));
    }
    out
}

/// The steps back in a series: (index of the lower value, before, after).
pub fn steps_back(values: &[f64]) -> Vec<(usize, f64, f64)> {
    values
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1] < w[0])
        .map(|(i, w)| (i + 1, w[0], w[1]))
        .collect()
}

/// A step from `before` to `after` that is a midnight reset, not a dip.
pub fn is_reset(before: f64, after: f64) -> bool {
    after <= before * RESET_SHARE
}

/// How many of the values heard on the wire are placeholders (protocol §11).
pub fn placeholders(heard: &[Heard]) -> usize {
    heard
        .iter()
        .flat_map(|h| h.numbers.iter())
        .filter(|(k, v)| {
            catalog::STATES
                .iter()
                .find(|s| s.key == **k)
                .is_some_and(|s| protocol::field::is_placeholder(s, **v))
        })
        .count()
}
