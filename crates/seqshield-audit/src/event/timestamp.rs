//! When an event happened: Unix seconds, also written as RFC 3339 UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::EventError;

/// Latest representable time, `9999-12-31T23:59:59Z`: RFC 3339 years have
/// four digits.
pub const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

/// A point in time, whole seconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The time `secs` seconds after the Unix epoch.
    pub fn from_unix(secs: u64) -> Result<Self, EventError> {
        if secs > MAX_UNIX_SECONDS {
            return Err(EventError::TimeOutOfRange { unix: secs });
        }
        Ok(Self(secs))
    }

    /// Now, by the system clock (the epoch if the clock is before it).
    pub fn now() -> Self {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self(secs.min(MAX_UNIX_SECONDS))
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> u64 {
        self.0
    }

    /// RFC 3339 §5.6 `date-time` in UTC, whole seconds:
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(self) -> String {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
    }
}

/// Year, month, day of the proleptic Gregorian calendar for a day count
/// since 1970-01-01 (Howard Hinnant's `civil_from_days`, for days ≥ 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        for (unix, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (68_255_999, "1972-02-29T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (MAX_UNIX_SECONDS, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(Timestamp::from_unix(unix).unwrap().rfc3339(), text, "{unix}");
        }
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Why: a calendar slip (leap years, month ends) would put events on
        // dates that do not exist; walk 2,000 years day by day.
        let mut prev = civil_from_days(0);
        for day in 1..(2000 * 366) {
            let (y, m, d) = civil_from_days(day);
            let next_day = (y, m, d) == (prev.0, prev.1, prev.2 + 1);
            let next_month = (y, m, d) == (prev.0, prev.1 + 1, 1);
            let next_year = (y, m, d) == (prev.0 + 1, 1, 1) && prev.1 == 12 && prev.2 == 31;
            assert!(next_day || next_month || next_year, "{prev:?} -> {:?}", (y, m, d));
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m as usize - 1];
            assert!(d <= month_len);
            prev = (y, m, d);
        }
    }

    #[test]
    fn out_of_range_times_are_refused() {
        assert!(Timestamp::from_unix(MAX_UNIX_SECONDS + 1).is_err());
        assert!(Timestamp::now().unix() > 1_600_000_000);
    }
}
