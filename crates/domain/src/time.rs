//! UTC calendar arithmetic for event times and partitions, without a date
//! library: days since the epoch ⇄ (year, month, day).

use std::time::{SystemTime, UNIX_EPOCH};

/// Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) → days since the epoch: `civil_from_days` inverted.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC instant, to the millisecond.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcMillis(pub i64);

impl UtcMillis {
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// A wall-clock reading the caller already has (0 before the epoch).
    pub fn from_system(time: SystemTime) -> Self {
        let ms = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        UtcMillis(ms)
    }

    pub fn day_number(self) -> i64 {
        self.0.div_euclid(86_400_000)
    }

    /// `2026-11-22T15:04:05.123Z`, formatted without allocating.
    pub fn rfc3339(self) -> crate::inline_str::InlineStr<32> {
        let mut out = crate::inline_str::InlineStr::new();
        let _ = self.write_rfc3339(&mut out);
        out
    }

    /// Writes the RFC 3339 form without allocating (the hot path's one
    /// time formatter, [`crate::text::rfc3339`]).
    pub fn write_rfc3339(self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        crate::text::rfc3339::write_millis(self.0, out)
    }

    /// `2026-11-22`, the `dt=` partition.
    pub fn date(self) -> String {
        let (y, m, d) = civil_from_days(self.day_number());
        format!("{y:04}-{m:02}-{d:02}")
    }

    pub fn hour(self) -> u32 {
        (self.0.rem_euclid(86_400_000) / 3_600_000) as u32
    }
}

/// A UTC day as `YYYY-MM-DD` (years 0..=9999), an event's `dt=`
/// partition: copied, never allocated.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DayText([u8; 10]);

impl DayText {
    /// The day an RFC 3339 time (`YYYY-MM-DDT…`) starts with; None when
    /// the text does not start so.
    pub fn of_rfc3339(time: &str) -> Option<DayText> {
        let bytes = time.as_bytes();
        let day: [u8; 10] = bytes.get(..10)?.try_into().ok()?;
        let shaped = day.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
        (shaped && bytes.get(10) == Some(&b'T')).then_some(DayText(day))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and dashes are ever accepted.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for DayText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(UtcMillis(0).rfc3339().as_str(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            UtcMillis(1_795_363_445_123).rfc3339().as_str(),
            "2026-11-22T16:04:05.123Z"
        );
        assert_eq!(UtcMillis(951_782_400_000).date(), "2000-02-29");
        assert_eq!(
            UtcMillis(253_402_300_799_999).rfc3339().as_str(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(UtcMillis(-86_400_000).date(), "1969-12-31");
        // Within one second, across seconds and back: the per-thread text
        // of the last second never leaks into another.
        for (ms, text) in [
            (1_795_363_445_999, "2026-11-22T16:04:05.999Z"),
            (1_795_363_445_001, "2026-11-22T16:04:05.001Z"),
            (1_795_363_446_000, "2026-11-22T16:04:06.000Z"),
            (1_795_363_445_500, "2026-11-22T16:04:05.500Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(UtcMillis(ms).rfc3339().as_str(), text);
        }
        assert_eq!(
            UtcMillis(253_402_300_800_000).rfc3339().as_str(),
            "10000-01-01T00:00:00.000Z"
        );
        for days in [-800_000, -1, 0, 11_016, 20_417, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn days_of_rfc3339_times() {
        let day = |t: &str| DayText::of_rfc3339(t).map(|d| d.as_str().to_string());
        assert_eq!(
            day("2026-11-22T16:04:05.123Z").as_deref(),
            Some("2026-11-22")
        );
        assert_eq!(
            day(UtcMillis(951_782_400_000).rfc3339().as_str()),
            Some(UtcMillis(951_782_400_000).date())
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22 16:04",
            "2026/11/22T1",
            "10000-01-01T00",
            "x026-11-22T",
        ] {
            assert_eq!(day(bad), None, "{bad}");
        }
    }
}
