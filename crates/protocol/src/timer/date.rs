//! The two small time types of a timer task (protocol §12): a calendar [`Date`] (the
//! one-off task's `time_param`) and a [`Window`] of local time (one `time_table` entry).
//! Pure arithmetic: no clock, no time zone; the caller says what "today" is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::plan::TimerError;

/// Minutes in a day: window ends are minutes after local midnight, below this.
pub const MINUTES_PER_DAY: u16 = 1440;

/// A calendar date (proleptic Gregorian), as a one-off task names its day. Written and
/// read as `2026-08-29`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A valid date with a year of 1–9999, else `None`.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Date { year, month, day })
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// `time_param` of a one-off task: `day | month << 5 | year << 9` (§12).
    pub fn param(self) -> u32 {
        u32::from(self.day) | u32::from(self.month) << 5 | u32::from(self.year) << 9
    }

    /// The date a one-off `time_param` names, if it names a valid one.
    pub fn from_param(param: u32) -> Option<Date> {
        let day = (param & 0x1f) as u8;
        let month = (param >> 5 & 0x0f) as u8;
        let year = u16::try_from(param >> 9).ok()?;
        Date::new(year, month, day)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        // H. Hinnant's days_from_civil: the year counted from March, so that the leap
        // day comes last.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01, if its year is within 1–9999.
    pub fn from_days_since_epoch(days: i64) -> Option<Date> {
        // H. Hinnant's civil_from_days.
        let z = days.checked_add(719_468)?;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date::new(u16::try_from(year).ok()?, month as u8, day as u8)
    }

    /// The day before (itself on 0001-01-01, which no task names).
    pub fn previous(self) -> Date {
        Date::from_days_since_epoch(self.days_since_epoch() - 1).unwrap_or(self)
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = TimerError;

    /// `YYYY-MM-DD`.
    fn from_str(s: &str) -> Result<Date, TimerError> {
        let bad = || TimerError::BadDate(s.chars().take(40).collect());
        let mut parts = s.trim().splitn(3, '-');
        let mut next = |len: usize| {
            parts
                .next()
                .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
        };
        let (year, month, day) = (next(4), next(2), next(2));
        let (Some(year), Some(month), Some(day)) = (year, month, day) else {
            return Err(bad());
        };
        Date::new(year, month as u8, day as u8).ok_or_else(bad)
    }
}

impl TryFrom<String> for Date {
    type Error = TimerError;

    fn try_from(s: String) -> Result<Date, TimerError> {
        s.parse()
    }
}

impl From<Date> for String {
    fn from(d: Date) -> String {
        d.to_string()
    }
}

/// One `time_table` entry: `start_min | end_min << 16`, minutes after local midnight.
/// `end < start` crosses midnight; `0/0` is unset (§12). Any raw value is kept as it
/// came, so a write echoes it unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start_min: u16,
    pub end_min: u16,
}

impl Window {
    /// A window from its start and end (see [`Window::is_valid`]).
    pub const fn new(start_min: u16, end_min: u16) -> Window {
        Window { start_min, end_min }
    }

    pub const fn from_raw(raw: u32) -> Window {
        Window {
            start_min: (raw & 0xffff) as u16,
            end_min: (raw >> 16) as u16,
        }
    }

    pub const fn raw(self) -> u32 {
        self.start_min as u32 | (self.end_min as u32) << 16
    }

    /// `0/0`: the slot has no window.
    pub const fn is_unset(self) -> bool {
        self.start_min == 0 && self.end_min == 0
    }

    /// Set, both ends within the day, and not empty.
    pub const fn is_valid(self) -> bool {
        self.start_min < MINUTES_PER_DAY
            && self.end_min < MINUTES_PER_DAY
            && self.start_min != self.end_min
    }

    /// Ends on the next day (`end < start`).
    pub const fn crosses_midnight(self) -> bool {
        self.end_min < self.start_min
    }

    /// Length in minutes (of a valid window).
    pub fn minutes(self) -> u16 {
        if self.crosses_midnight() {
            MINUTES_PER_DAY - self.start_min + self.end_min
        } else {
            self.end_min.saturating_sub(self.start_min)
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unset() {
            return f.write_str("no window (0/0)");
        }
        if !self.is_valid() {
            return write!(f, "window {} (unknown)", self.raw());
        }
        let hm = |m: u16| (m / 60, m % 60);
        let ((sh, sm), (eh, em)) = (hm(self.start_min), hm(self.end_min));
        write!(f, "{sh:02}:{sm:02}-{eh:02}:{em:02}")?;
        if self.crosses_midnight() {
            f.write_str(" (next day)")?;
        }
        Ok(())
    }
}

impl FromStr for Window {
    type Err = TimerError;

    /// `HH:MM-HH:MM` in local time, e.g. `22:00-05:30` (crosses midnight); the end must
    /// differ from the start.
    fn from_str(s: &str) -> Result<Window, TimerError> {
        let bad = || TimerError::BadWindow(s.chars().take(40).collect());
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
            if !(1..=2).contains(&h.len()) || m.len() != 2 || !digits(h) || !digits(m) {
                return None;
            }
            let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start, end) = s.split_once('-').ok_or_else(bad)?;
        let w = Window::new(
            minutes(start).ok_or_else(bad)?,
            minutes(end).ok_or_else(bad)?,
        );
        if w.is_valid() {
            Ok(w)
        } else {
            Err(TimerError::EmptyWindow)
        }
    }
}
