//! `/api/export.csv`: the latest value of every state, or with `state=` the history of
//! one. Text that a spreadsheet would run as a formula — a cell starting with `=`, `+`,
//! `-`, `@`, a tab or a carriage return, e.g. a spoofed battery serial
//! `=HYPERLINK("http://…")` — gets a leading `'` and is quoted (OWASP, "CSV Injection");
//! numbers stay numbers (`-350` is still a number in the sheet).

use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use model::unix_ms;
use protocol::Value;

use super::AppState;
use super::api::{HistoryQuery, pick_device, window_points};
use crate::units::display_unit;

/// The first characters that make a spreadsheet treat a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A plain decimal number (what Rust prints for an `f64`): safe to leave unescaped even
/// with a leading `-`.
fn is_number(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && s.parse::<f64>().is_ok()
}

/// One text cell: formula-like text escaped with a leading `'`, then quoted as CSV
/// needs (separators, quotes, line breaks).
pub fn csv_text(s: &str) -> String {
    let escaped = s.starts_with(FORMULA_START) && !is_number(s);
    if escaped || s.contains([',', '"', '\n', '\r']) {
        let prefix = if escaped { "'" } else { "" };
        format!("\"{prefix}{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A value cell: a number as a number, anything else as text.
fn csv_value(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => csv_text(&other.to_string()),
    }
}

/// Year 10000: humantime formats times from 1970 up to here.
const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);

/// A CSV time: `2026-11-25T13:05:00.123Z` (UTC, humantime), or milliseconds since 1970
/// for a time RFC 3339 cannot show (a replayed file may carry any time).
pub fn csv_time(t: SystemTime) -> String {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) if since < YEAR_10000 => humantime::format_rfc3339_millis(t).to_string(),
        _ => unix_ms(t).to_string(),
    }
}

fn csv_response(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// CSV: with `state=` the history of that state, otherwise the latest value of every state.
pub async fn export_csv(State(app): State<AppState>, Query(q): Query<HistoryQuery>) -> Response {
    if q.state.is_none() {
        let device = pick_device(&app.store, q.device);
        let mut out = String::from("device,key,name,value,unit,out_of_range,updated\n");
        if let Some(device) = &device {
            for l in app.store.latest(device) {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    csv_text(device),
                    csv_text(l.state.key),
                    csv_text(l.state.human_name.trim()),
                    csv_value(&l.value),
                    csv_text(display_unit(l.state)),
                    l.out_of_range,
                    csv_time(l.updated_at),
                ));
            }
        }
        return csv_response("oceanbridge-latest.csv", out);
    }
    let (w, points) = match window_points(&app, q).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let device = csv_text(w.device.as_deref().unwrap_or_default());
    let (key, unit) = (csv_text(w.state.key), csv_text(display_unit(w.state)));
    let mut out = String::from("time,device,key,value,unit\n");
    for (t, v) in points {
        out.push_str(&format!("{},{device},{key},{v},{unit}\n", csv_time(t)));
    }
    csv_response(&format!("oceanbridge-{}.csv", w.state.key), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::from_unix_ms;

    #[test]
    fn iso_dates() {
        let iso8601 = |ms| csv_time(from_unix_ms(ms));
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_795_611_906_000), "2026-11-25T13:05:06.000Z");
        // Beyond year 9999: the milliseconds, not a panic.
        assert_eq!(iso8601(253_402_300_800_000), "253402300800000");
        assert_eq!(iso8601(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("plain"), "plain");
    }

    #[test]
    fn formulas_are_escaped_numbers_are_not() {
        assert_eq!(
            csv_text("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        for formula in ["+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "=1"] {
            let cell = csv_text(formula);
            assert!(cell.starts_with("\"'"), "{formula:?} -> {cell}");
        }
        for number in ["-350", "-0.5", "+12", "1e-3", "42"] {
            assert_eq!(csv_text(number), number);
        }
        assert_eq!(csv_value(&Value::Number(-350.5)), "-350.5");
        assert_eq!(csv_value(&Value::Text("-350".into())), "-350");
        assert_eq!(csv_value(&Value::Text("-cmd".into())), "\"'-cmd\"");
        assert_eq!(csv_value(&Value::Array(vec![-1.0, 2.0])), "\"[-1, 2]\"");
    }
}
