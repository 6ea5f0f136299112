//! Markdown parser for the state spec: `## Channel`, `### kind`, then `|...|` table rows.

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Number,
    Diagnostic,
    Text,
    Array,
}

impl Kind {
    pub fn variant(self) -> &'static str {
        match self {
            Kind::Number => "Number",
            Kind::Diagnostic => "Diagnostic",
            Kind::Text => "Text",
            Kind::Array => "Array",
        }
    }
}

#[derive(Debug)]
pub struct State {
    pub channel: String,
    pub name: String,
    pub kind: Kind,
    pub unit: String,
    pub mult: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub human_name: String,
    pub enum_map: Vec<(u32, String)>,
}

impl State {
    /// The Rust `Channel` variant for the spec's channel name.
    pub fn channel_variant(&self) -> &'static str {
        CHANNELS
            .iter()
            .find(|(spec, _)| *spec == self.channel)
            .map(|(_, variant)| *variant)
            .expect("channel validated while parsing")
    }
}

pub struct Spec {
    pub version: String,
    pub states: Vec<State>,
}

/// Spec channel name → `Channel` variant; the spec must hold exactly these.
const CHANNELS: [(&str, &str); 6] = [
    ("CloudBmsInfoReport", "CloudBmsInfoReport"),
    ("EMSHeartbeatReport", "EmsHeartbeatReport"),
    ("EnergyStreamItem", "EnergyStreamItem"),
    ("bpInfo0", "BpInfo0"),
    ("bpInfo1", "BpInfo1"),
    ("bpInfo2", "BpInfo2"),
];

pub fn parse_spec(text: &str) -> Result<Spec, String> {
    let mut version = None;
    let mut channel: Option<String> = None;
    let mut kind: Option<Kind> = None;
    let mut states = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = |msg: String| format!("line {}: {msg}", n + 1);
        if let Some(v) = line.strip_prefix("### version:") {
            version = Some(v.trim().to_string());
        } else if let Some(h) = line.strip_prefix("### ") {
            kind = Some(match h.trim() {
                "number" => Kind::Number,
                "diagnostic" => Kind::Diagnostic,
                "string" => Kind::Text,
                "array" => Kind::Array,
                other => return Err(at(format!("unknown section {other:?}"))),
            });
        } else if let Some(h) = line.strip_prefix("## ") {
            let name = h.trim();
            if !CHANNELS.iter().any(|(c, _)| *c == name) {
                return Err(at(format!("unknown channel {name:?}")));
            }
            channel = Some(name.to_string());
            kind = None;
        } else if line.starts_with('|') && !is_table_header(line) {
            let (Some(channel), Some(kind)) = (&channel, kind) else {
                return Err(at("table row outside a channel/kind section".into()));
            };
            states.push(parse_row(channel, kind, line).map_err(at)?);
        }
    }
    check_counts(&states)?;
    Ok(Spec {
        version: version.ok_or("no `### version:` line")?,
        states,
    })
}

fn is_table_header(line: &str) -> bool {
    line.starts_with("| State") || line.starts_with("|---")
}

fn cells(line: &str) -> Vec<&str> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

fn parse_row(channel: &str, kind: Kind, line: &str) -> Result<State, String> {
    let c = cells(line);
    let mut st = State {
        channel: channel.to_string(),
        name: c[0].to_string(),
        kind,
        unit: String::new(),
        mult: 1.0,
        min: None,
        max: None,
        human_name: String::new(),
        enum_map: Vec::new(),
    };
    if st.name.is_empty() || !st.name.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(format!("bad state name {:?}", st.name));
    }
    match (kind, c.len()) {
        (Kind::Number, 6) => {
            st.min = Some(number(c[1])?);
            st.max = if c[2] == "n/a" {
                None
            } else {
                Some(number(c[2])?)
            };
            st.unit = c[3].to_string();
            st.mult = number(c[4])?;
            st.human_name = c[5].to_string();
        }
        (Kind::Diagnostic, 3) => {
            st.human_name = c[1].to_string();
            st.enum_map = parse_enum(c[2])?;
        }
        (Kind::Text | Kind::Array, 2) => st.human_name = c[1].to_string(),
        (_, n) => return Err(format!("{n} cells for a {kind:?} row: {line}")),
    }
    Ok(st)
}

fn number(cell: &str) -> Result<f64, String> {
    cell.parse().map_err(|_| format!("not a number: {cell:?}"))
}

/// `{0:RUNSTA_STANDBY,1:RUNSTA_RUN}` → pairs; texts trimmed of spaces (rule 6.4).
fn parse_enum(cell: &str) -> Result<Vec<(u32, String)>, String> {
    let body = cell
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or_else(|| format!("enum map not in braces: {cell:?}"))?;
    body.split(',')
        .map(|pair| {
            let (k, v) = pair
                .split_once(':')
                .ok_or_else(|| format!("enum entry without ':' in {cell:?}"))?;
            let k = k.trim().parse().map_err(|_| format!("enum key {k:?}"))?;
            Ok((k, v.trim().to_string()))
        })
        .collect()
}

fn check_counts(states: &[State]) -> Result<(), String> {
    for (channel, _) in CHANNELS {
        if !states.iter().any(|s| s.channel == channel) {
            return Err(format!("channel {channel} has no states"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in states {
        if !seen.insert((s.channel.as_str(), s.name.as_str())) {
            return Err(format!("duplicate state {}.{}", s.channel, s.name));
        }
    }
    Ok(())
}
