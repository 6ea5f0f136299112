//! The classic Prometheus text format (version 0.0.4) of the OpenMetrics text that
//! [`crate::metrics`] renders, for scrapers that do not ask for OpenMetrics: `curl`,
//! `promtool check metrics`, other tools reading the classic format. Prometheus itself
//! asks for OpenMetrics (`Accept: application/openmetrics-text…`) and gets it unchanged.
//!
//! The two formats differ, for what prometheus-client writes, in three places: a counter
//! family is named without `_total` in OpenMetrics (`# TYPE x counter`, sample `x_total`)
//! and with it in the classic format (`# TYPE x_total counter`); `# UNIT` and `# EOF`
//! exist only in OpenMetrics; `unknown` is `untyped`. Samples and label escaping are the
//! same. Read by the classic parser as-is, every counter would lose its HELP and TYPE.

use std::collections::HashSet;

/// The `Content-Type` of [`from_openmetrics`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (a media range
/// `application/openmetrics-text` without `q=0`), as Prometheus's scrapes do.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            media.eq_ignore_ascii_case("application/openmetrics-text")
                && !parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                })
        })
    })
}

/// Converts OpenMetrics text (prometheus-client's) to the classic text format.
pub fn from_openmetrics(text: &str) -> String {
    let counters: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some((kind, rest)) = line
            .strip_prefix("# HELP ")
            .map(|r| ("HELP", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("TYPE", r)))
        {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let tail = if kind == "TYPE" && tail == "unknown" {
                "untyped"
            } else {
                tail
            };
            let suffix = if counters.contains(name) {
                "_total"
            } else {
                ""
            };
            out.push_str(&format!("# {kind} {name}{suffix} {tail}\n"));
            continue;
        }
        // A counter's creation time has no place in the classic format.
        let sample = line.split(['{', ' ']).next().unwrap_or_default();
        if sample
            .strip_suffix("_created")
            .is_some_and(|family| counters.contains(family))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_units_and_eof_go() {
        let om = "# HELP ob_payloads Payloads.\n# TYPE ob_payloads counter\nob_payloads_total 7\n\
                  ob_payloads_created 1.5\n\
                  # HELP ob_age_seconds Age.\n# TYPE ob_age_seconds gauge\n# UNIT ob_age_seconds seconds\n\
                  ob_age_seconds{device=\"a b\"} 2.5\n# HELP ob_x X.\n# TYPE ob_x unknown\nob_x 1\n# EOF\n";
        assert_eq!(
            from_openmetrics(om),
            "# HELP ob_payloads_total Payloads.\n# TYPE ob_payloads_total counter\nob_payloads_total 7\n\
             # HELP ob_age_seconds Age.\n# TYPE ob_age_seconds gauge\nob_age_seconds{device=\"a b\"} 2.5\n\
             # HELP ob_x X.\n# TYPE ob_x untyped\nob_x 1\n"
        );
    }

    #[test]
    fn prometheus_gets_openmetrics_and_others_the_classic_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(wants_openmetrics(Some("application/openmetrics-text")));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }
}
