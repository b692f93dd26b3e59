//! UTC calendar days as `YYYY-MM-DD`, without a date-time dependency.

use pullgate_domain::time::UtcMillis;
pub use pullgate_domain::time::{civil_from_days, days_from_civil};

pub fn format_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD` → days since the epoch (None when malformed).
pub fn parse_day(s: &str) -> Option<i64> {
    if !crate::sql::is_date(s) {
        return None;
    }
    let y = s[0..4].parse().ok()?;
    let m = s[5..7].parse().ok()?;
    let d = s[8..10].parse().ok()?;
    let days = days_from_civil(y, m, d);
    (format_day(days) == s).then_some(days)
}

/// Today (UTC) as days since the epoch.
pub fn today() -> i64 {
    UtcMillis::now().day_number()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for days in [-1000, 0, 19_000, 20_417, 60_000] {
            let s = format_day(days);
            assert_eq!(parse_day(&s), Some(days), "{s}");
        }
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(parse_day("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(parse_day("2023-02-29"), None);
    }
}
