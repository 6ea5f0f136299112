//! How Home Assistant shows each catalog state — its display name, whether it is on by
//! default and on the device page or in the Diagnostic card, and the decimals HA
//! suggests — read from the data file `entities.txt` (one row a state; the catalog and
//! the state keys stay as the spec has them). A state without a row (a newer catalog)
//! still gets a name made from the spec's, shown as diagnostic.

use std::collections::HashMap;
use std::sync::LazyLock;

use catalog::{Kind, StateDef};

use crate::units::display_unit;

/// The table, as written.
const TABLE: &str = include_str!("entities.txt");

/// Where an entity appears in Home Assistant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// On, on the device page (no entity category).
    Main,
    /// On, in the device page's Diagnostic card.
    Diagnostic,
    /// Off until enabled by hand (`enabled_by_default: false`), entity category diagnostic.
    Disabled,
}

impl Shown {
    fn parse(text: &str) -> Option<Shown> {
        match text {
            "main" => Some(Shown::Main),
            "diagnostic" => Some(Shown::Diagnostic),
            "disabled" => Some(Shown::Disabled),
            _ => None,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    pub name: String,
    pub shown: Shown,
    /// `suggested_display_precision` (numbers only).
    pub precision: Option<u8>,
}

/// The decimals HA suggests for a unit, unless the table says otherwise: whole watts,
/// watt-hours, percent and milliamp-hours; a tenth of a volt, ampere and degree.
pub fn unit_precision(unit: &str) -> Option<u8> {
    match unit {
        "W" | "Wh" | "%" | "mAh" | "h" => Some(0),
        "V" | "A" | "°C" => Some(1),
        _ => None,
    }
}

/// One row as written: the precision is the table's override, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    shown: Shown,
    precision: Option<u8>,
    name: String,
}

/// The rows by key.
type Rows = HashMap<String, Row>;

/// The row key of a state: its catalog key, or `bpInfoN.<state>` for a battery pack's.
fn row_key(state: &StateDef) -> String {
    match state.channel.pack_index() {
        Some(_) => format!("bpInfoN.{}", state.name),
        None => state.key.to_string(),
    }
}

/// The first bad line of the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entities.txt line {line}: {why}: {text:?}")]
struct TableError {
    line: usize,
    why: &'static str,
    text: String,
}

/// Parses the table; `Err` names the first bad line.
fn parse(table: &str) -> Result<Rows, TableError> {
    let mut rows = HashMap::new();
    for (n, line) in table.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &'static str| TableError {
            line: n + 1,
            why,
            text: line.to_string(),
        };
        let cells: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();
        let [key, shown, precision, name] = cells[..] else {
            return Err(bad("expected `key | shown | precision | name`"));
        };
        let shown =
            Shown::parse(shown).ok_or_else(|| bad("shown is main, diagnostic or disabled"))?;
        let precision = match precision {
            "-" => None,
            p => Some(p.parse().map_err(|_| bad("precision is a number or -"))?),
        };
        if name.is_empty() {
            return Err(bad("no name"));
        }
        let row = Row {
            shown,
            precision,
            name: name.to_string(),
        };
        if rows.insert(key.to_string(), row).is_some() {
            return Err(bad("a second row for this key"));
        }
    }
    Ok(rows)
}

static ROWS: LazyLock<Rows> = LazyLock::new(|| match parse(TABLE) {
    Ok(rows) => rows,
    Err(e) => {
        // The sink's tests parse the table, so this is a build that skipped them.
        tracing::error!("{e}; Home Assistant names fall back to the spec's");
        HashMap::new()
    }
});

/// How HA shows `state`.
pub fn of(state: &StateDef) -> Presentation {
    let number = state.kind == Kind::Number;
    match ROWS.get(&row_key(state)) {
        Some(row) => Presentation {
            name: row.name.clone(),
            shown: row.shown,
            precision: number
                .then(|| {
                    row.precision
                        .or_else(|| unit_precision(display_unit(state)))
                })
                .flatten(),
        },
        None => Presentation {
            name: fallback_name(state),
            shown: Shown::Diagnostic,
            precision: number
                .then(|| unit_precision(display_unit(state)))
                .flatten(),
        },
    }
}

/// The spec's name with a capital first letter (for a state the table lacks).
fn fallback_name(state: &StateDef) -> String {
    let human = state.human_name.trim();
    let mut chars = human.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => state.name.to_string(),
    }
}

#[cfg(test)]
#[path = "presentation_tests.rs"]
mod tests;
