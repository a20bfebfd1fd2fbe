//! Time-of-week windows in UTC, computed straight from Unix time (no
//! calendar crate: days of the week and minutes of the day are all a policy
//! needs, and UTC has no daylight-saving jumps).

use std::fmt;

/// Seconds per day.
const DAY_SECS: u64 = 86_400;

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    const ALL: [Weekday; 7] = [Self::Mon, Self::Tue, Self::Wed, Self::Thu, Self::Fri, Self::Sat, Self::Sun];

    /// The UTC day of the week at Unix time `now`.
    pub fn at(now: u64) -> Self {
        // 1970-01-01 was a Thursday (index 3 counting from Monday).
        Self::ALL[((now / DAY_SECS + 3) % 7) as usize]
    }

    /// Parses `mon`, `tue`, … `sun`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The three-letter lowercase name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mon => "mon",
            Self::Tue => "tue",
            Self::Wed => "wed",
            Self::Thu => "thu",
            Self::Fri => "fri",
            Self::Sat => "sat",
            Self::Sun => "sun",
        }
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Minutes since UTC midnight at Unix time `now`.
pub fn minute_of_day(now: u64) -> u32 {
    ((now % DAY_SECS) / 60) as u32
}

/// Parses `HH:MM` (00:00 to 24:00) into minutes since midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// When a rule applies: on some days, between two times of day (UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    /// Days on which the window is open (empty: every day). The day is the
    /// UTC day of the instant being checked, also for windows that wrap
    /// past midnight.
    pub days: Vec<Weekday>,
    /// Start and end in minutes since midnight, end exclusive; `None` is all
    /// day. A start after the end wraps past midnight (22:00–06:00).
    pub minutes: Option<(u32, u32)>,
}

impl TimeWindow {
    /// Whether Unix time `now` falls inside the window.
    pub fn contains(&self, now: u64) -> bool {
        if !self.days.is_empty() && !self.days.contains(&Weekday::at(now)) {
            return false;
        }
        match self.minutes {
            None => true,
            Some((from, to)) => {
                let m = minute_of_day(now);
                if from < to {
                    (from..to).contains(&m)
                } else {
                    m >= from || m < to
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-01-01T00:00:00Z was a Monday.
    const MON_2024_01_01: u64 = 1_704_067_200;

    #[test]
    fn weekdays_from_unix_time() {
        assert_eq!(Weekday::at(0), Weekday::Thu);
        assert_eq!(Weekday::at(MON_2024_01_01), Weekday::Mon);
        assert_eq!(Weekday::at(MON_2024_01_01 - 1), Weekday::Sun);
        assert_eq!(Weekday::at(MON_2024_01_01 + 5 * DAY_SECS + 3600), Weekday::Sat);
        // 2000-02-29 (leap day) was a Tuesday.
        assert_eq!(Weekday::at(951_782_400), Weekday::Tue);
        for d in Weekday::ALL {
            assert_eq!(Weekday::parse(d.as_str()), Some(d));
        }
        assert_eq!(Weekday::parse("Monday"), None);
    }

    #[test]
    fn hhmm_parsing() {
        assert_eq!(parse_hhmm("00:00"), Some(0));
        assert_eq!(parse_hhmm("08:30"), Some(510));
        assert_eq!(parse_hhmm("23:59"), Some(1439));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        for bad in ["24:01", "8:30", "08:60", "0830", "08:3", "+8:30", "ab:cd", ""] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
    }

    #[test]
    fn office_hours_on_weekdays() {
        let w = TimeWindow {
            days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            minutes: Some((8 * 60, 18 * 60)),
        };
        assert!(!w.contains(MON_2024_01_01 + 7 * 3600 + 59 * 60 + 59));
        assert!(w.contains(MON_2024_01_01 + 8 * 3600));
        assert!(w.contains(MON_2024_01_01 + 17 * 3600 + 59 * 60));
        assert!(!w.contains(MON_2024_01_01 + 18 * 3600), "end is exclusive");
        assert!(!w.contains(MON_2024_01_01 + 5 * DAY_SECS + 12 * 3600), "Saturday");
    }

    #[test]
    fn windows_wrap_past_midnight() {
        let w = TimeWindow { days: vec![], minutes: Some((22 * 60, 6 * 60)) };
        assert!(w.contains(MON_2024_01_01 + 23 * 3600));
        assert!(w.contains(MON_2024_01_01 + 3600));
        assert!(!w.contains(MON_2024_01_01 + 12 * 3600));
        assert!(!w.contains(MON_2024_01_01 + 6 * 3600));
        let all_day = TimeWindow { days: vec![Weekday::Sun], minutes: None };
        assert!(all_day.contains(MON_2024_01_01 - 1));
        assert!(!all_day.contains(MON_2024_01_01));
    }
}
