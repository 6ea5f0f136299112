//! [`Masker`]: hides serial numbers, user and account ids and e-mail addresses in
//! everything a diagnostics bundle holds — text (config, JSON, metrics, log lines) and
//! the captured payloads themselves — so a user can attach the bundle to a public report.
//!
//! What is secret is learnt, not guessed: from the config (devices, e-mail, keys), from
//! the topics (`/app/<userId>/<SN>/…`, `/open/<account>/<SN>/…`, protocol §1b, §2), from
//! the frames (header `device_sn`/`module_sn`, every catalog state named `…Sn`, such as the
//! battery packs' `bpSn`) and from open-API JSON (keys ending in `sn`). E-mail addresses are
//! also found by pattern wherever they appear.
//!
//! A masked value keeps its length and its ends (`HC31ZDH5ZF220123` → `HC31********0123`):
//! enough to tell two devices apart in a report, and the payloads stay valid protobuf
//! (a string keeps its length prefix) so a masked capture still replays. XOR-ed `pdata`
//! (protocol §3) is un-XOR-ed, masked and XOR-ed again.
//!
//! Linear in the size of what is masked, whatever the number of secrets: every secret is
//! found in one pass of an Aho-Corasick automaton (built once, after learning), instead of
//! one search per secret (a capture with 48 000 fake serials took minutes that way).
//!
//! [`mask_paths`] also replaces the home part of absolute paths (`/home/alice/…` →
//! `~/…`), which names the user, in the bundle's text files.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::{LazyLock, OnceLock};

use aho_corasick::{AhoCorasick, MatchKind};
use prost::Message as _;
use prost::encoding::{WireType, decode_key, decode_varint};
use protocol::pb;
use regex::bytes::Regex;

/// Shorter strings are not masked as secrets: they would mask ordinary words and numbers.
const MIN_SECRET_LEN: usize = 4;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .unwrap_or_else(|e| unreachable!("constant pattern: {e}"))
});

/// `/home/<user>`, `/Users/<user>` (macOS), `/root`: the part of a path that names the
/// user (followed by `/`, the end, or a character no user name has).
static HOME_PATH: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"(^|[^\w/.~])((?:/home|/Users)/[^/\s"'`:;,]+|/root\b)"#)
        .unwrap_or_else(|e| unreachable!("constant pattern: {e}"))
});

/// The secrets found so far, and how to hide them.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: HashSet<Vec<u8>>,
    /// Every secret with its masked form, searched in one pass; made on first use after
    /// the last [`Masker::add`] (learning first, then masking, as a bundle is built).
    finder: OnceLock<Option<Finder>>,
}

/// The automaton and, per pattern, its masked form (same length).
#[derive(Debug, Clone)]
struct Finder {
    automaton: AhoCorasick,
    masked: Vec<Vec<u8>>,
}

impl Finder {
    fn new(secrets: &HashSet<Vec<u8>>) -> Option<Finder> {
        if secrets.is_empty() {
            return None;
        }
        let patterns: Vec<&Vec<u8>> = secrets.iter().collect();
        let masked = patterns
            .iter()
            .map(|s| {
                if EMAIL.is_match(s) {
                    mask_email(s)
                } else {
                    mask_value(s)
                }
            })
            .collect();
        // Standard semantics with overlapping matches: a secret that overlaps another
        // (or sits inside a longer one) is masked too; the stars of all are kept.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| tracing::warn!("diagnostics masking: {e}"))
            .ok()?;
        Some(Finder { automaton, masked })
    }
}

impl Masker {
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Adds one secret (ignored when shorter than 4 bytes or known).
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() < MIN_SECRET_LEN || self.secrets.contains(secret.as_bytes()) {
            return;
        }
        self.secrets.insert(secret.as_bytes().to_vec());
        self.finder = OnceLock::new();
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Learns the user/account id and serial a topic carries.
    pub fn learn_topic(&mut self, topic: &str) {
        let parts: Vec<&str> = topic.split('/').collect();
        match parts.as_slice() {
            ["", "app", "device", "property", sn] => self.add(sn),
            ["", "app", user, sn, ..] => {
                self.add(user);
                self.add(sn);
            }
            ["", "open", account, sn, ..] => {
                self.add(account);
                self.add(sn);
            }
            _ => {}
        }
        if let Some(sn) = protocol::topics::device_sn_from_topic(topic) {
            self.add(sn);
        }
    }

    /// Learns the serials a payload carries: frame headers and `…Sn` states, or the
    /// `…sn` keys of open-API JSON.
    pub fn learn_payload(&mut self, topic: &str, payload: &[u8]) {
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(payload) {
            self.learn_json(&json);
            return;
        }
        if let Ok(frames) = pb::Frames::decode(payload) {
            for h in &frames.header {
                for s in [&h.device_sn, &h.module_sn].into_iter().flatten() {
                    self.add(s);
                }
            }
        }
        let sn = protocol::topics::device_sn_from_topic(topic).unwrap_or("");
        if let Ok(decoded) = protocol::decode_payload(payload, sn) {
            for u in &decoded.updates {
                self.add(&u.device_sn);
                if is_serial_name(u.state.name)
                    && let protocol::Value::Text(text) = &u.value
                {
                    self.add(text);
                }
            }
        }
    }

    /// Learns every string value whose key names a serial, an id or an e-mail.
    pub fn learn_json(&mut self, json: &serde_json::Value) {
        match json {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        serde_json::Value::String(s) if is_secret_key(key) => self.add(s),
                        other => self.learn_json(other),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| self.learn_json(v)),
            _ => {}
        }
    }

    /// `text` with every secret and e-mail address masked (same length in bytes).
    pub fn text(&self, text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        self.bytes_in_place(&mut bytes);
        // Masking swaps whole ASCII-or-not byte runs for `*`s of the same length only
        // inside secrets; a secret cut in the middle of a multi-byte character cannot
        // match (it is valid UTF-8 itself), so the text stays UTF-8.
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }

    /// Masks every secret and e-mail address in `bytes`, in place: one pass for all
    /// secrets, one for e-mail addresses.
    pub fn bytes_in_place(&self, bytes: &mut [u8]) {
        if let Some(finder) = self.finder.get_or_init(|| Finder::new(&self.secrets)) {
            let found: Vec<(usize, usize)> = finder
                .automaton
                .find_overlapping_iter(&*bytes)
                .map(|m| (m.start(), m.pattern().as_usize()))
                .collect();
            for (start, pattern) in found {
                let masked = &finder.masked[pattern];
                // Only the stars: what another match already starred stays starred.
                for (b, &m) in bytes[start..start + masked.len()].iter_mut().zip(masked) {
                    if m == b'*' {
                        *b = b'*';
                    }
                }
            }
        }
        let found: Vec<Range<usize>> = EMAIL.find_iter(bytes).map(|m| m.range()).collect();
        for range in found {
            let masked = mask_email(&bytes[range.clone()]);
            bytes[range].copy_from_slice(&masked);
        }
    }

    /// A payload with its secrets masked, XOR-ed `pdata` included; same length, so a
    /// protobuf payload stays decodable.
    pub fn payload(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = payload.to_vec();
        for (range, key) in pdata_ranges(payload).unwrap_or_default() {
            let pdata = &mut out[range];
            if let Some(k) = key {
                pdata.iter_mut().for_each(|b| *b ^= k);
            }
            self.bytes_in_place(pdata);
            if let Some(k) = key {
                pdata.iter_mut().for_each(|b| *b ^= k);
            }
        }
        self.bytes_in_place(&mut out);
        out
    }
}

/// A catalog state that holds a serial number (`bpSn`, `moduleSn`, …).
fn is_serial_name(name: &str) -> bool {
    name.ends_with("Sn") || name.ends_with("SN") || name == "sn"
}

/// A JSON key whose string value identifies a device, person or account.
fn is_secret_key(key: &str) -> bool {
    let last = key
        .rsplit(['.', ']'])
        .next()
        .unwrap_or(key)
        .to_ascii_lowercase();
    last.ends_with("sn")
        || last.contains("serial")
        || last.contains("email")
        || last.contains("userid")
        || last.contains("account")
}

#[cfg(test)]
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `text` with the user's part of absolute paths replaced by `~` (`/home/alice/x` →
/// `~/x`, `/root/x` → `~/x`): a path in a log line or the config names the account.
pub fn mask_paths(text: &str) -> String {
    HOME_PATH.replace_all(text, "${1}~").into_owned()
}

/// Keeps the ends (4 bytes each from 12 bytes on, 2 from 8, 1 from 4), stars between.
pub fn mask_value(value: &[u8]) -> Vec<u8> {
    let keep = match value.len() {
        12.. => 4,
        8.. => 2,
        _ => 1,
    };
    let mut out = value.to_vec();
    let end = out.len() - keep;
    out[keep..end].fill(b'*');
    out
}

/// `demo@oceanbridge.local` → `d***@************.local`: the first letter and the
/// top-level domain stay.
fn mask_email(email: &[u8]) -> Vec<u8> {
    let mut out = email.to_vec();
    let at = out.iter().position(|&b| b == b'@').unwrap_or(0);
    let tld = out.iter().rposition(|&b| b == b'.').unwrap_or(out.len());
    for (i, b) in out.iter_mut().enumerate() {
        if (i > 0 && i < at) || (i > at && i < tld) {
            *b = b'*';
        }
    }
    out
}

/// Where each frame's `pdata` sits in a `Frames` payload, with its XOR key (protocol §3:
/// `enc_type == 1` and `src != 32` → XOR with the low byte of `seq`). `None`: not frames.
pub fn pdata_ranges(payload: &[u8]) -> Option<Vec<(Range<usize>, Option<u8>)>> {
    let mut out = Vec::new();
    for field in fields(payload)? {
        let Field::Len(1, header) = field else {
            continue;
        };
        let (mut pdata, mut enc_type, mut src, mut seq) = (None, 0, 0, 0);
        for f in fields(&payload[header.clone()])? {
            match f {
                Field::Len(1, r) => pdata = Some(header.start + r.start..header.start + r.end),
                Field::Varint(6, v) => enc_type = v,
                Field::Varint(2, v) => src = v,
                Field::Varint(14, v) => seq = v,
                _ => {}
            }
        }
        if let Some(range) = pdata {
            let key = (enc_type == 1 && src != 32).then_some(seq as u8);
            out.push((range, key));
        }
    }
    Some(out)
}

enum Field {
    Varint(u32, u64),
    Len(u32, Range<usize>),
    Other,
}

/// The top-level fields of a protobuf message (`None` if it is not one).
fn fields(buf: &[u8]) -> Option<Vec<Field>> {
    let mut rest = buf;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (number, wire) = decode_key(&mut rest).ok()?;
        match wire {
            WireType::Varint => out.push(Field::Varint(number, decode_varint(&mut rest).ok()?)),
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
                let start = buf.len() - rest.len();
                rest = rest.get(len..)?;
                out.push(Field::Len(number, start..start + len));
            }
            WireType::ThirtyTwoBit => {
                rest = rest.get(4..)?;
                out.push(Field::Other);
            }
            WireType::SixtyFourBit => {
                rest = rest.get(8..)?;
                out.push(Field::Other);
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
#[path = "mask_tests.rs"]
mod tests;
