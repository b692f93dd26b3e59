//! The days a run reports on: the event's `from` and `to`, or the last
//! `REPORT_DAYS` days ending today (UTC); and how many days of partitions
//! after them it reads: the event's `late_days`, or `REPORT_LATE_DAYS`.

use anyhow::bail;
use pullgate_report::dates;
use serde_json::Value;

/// `(from, to)` as `YYYY-MM-DD`; `today` is days since the Unix epoch.
/// Giving only one of the two is an error, not half a default.
pub fn range(payload: &Value, today: i64, days: i64) -> anyhow::Result<(String, String)> {
    let field = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(match (field("from"), field("to")) {
        (Some(from), Some(to)) => (from, to),
        (None, None) => (
            dates::format_day(today - days + 1),
            dates::format_day(today),
        ),
        _ => bail!("the event must give both \"from\" and \"to\", or neither"),
    })
}

/// The event's `late_days` (a run again over a range with events replayed
/// later than the configured margin), or `default`.
pub fn late_days(payload: &Value, default: u32) -> anyhow::Result<u32> {
    match payload.get("late_days") {
        None => Ok(default),
        Some(value) => match value.as_u64().and_then(|d| u32::try_from(d).ok()) {
            Some(days) => Ok(days),
            None => bail!("\"late_days\" must be a whole number of days, not {value}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2024-03-10 in days since the Unix epoch.
    const MARCH_10: i64 = 19792;

    #[test]
    fn no_range_in_the_event_means_the_last_days_ending_today() {
        assert_eq!(dates::format_day(MARCH_10), "2024-03-10");
        let (from, to) = range(&json!({}), MARCH_10, 30).unwrap();
        assert_eq!((from.as_str(), to.as_str()), ("2024-02-10", "2024-03-10"));
        let (from, to) = range(&json!({}), MARCH_10, 1).unwrap();
        assert_eq!(from, to);
    }

    #[test]
    fn the_event_range_is_taken_as_given() {
        let event = json!({"from": "2024-01-01", "to": "2024-01-31"});
        let (from, to) = range(&event, MARCH_10, 30).unwrap();
        assert_eq!((from.as_str(), to.as_str()), ("2024-01-01", "2024-01-31"));
    }

    #[test]
    fn half_a_range_is_an_error() {
        for event in [json!({"from": "2024-01-01"}), json!({"to": "2024-01-31"})] {
            let error = range(&event, MARCH_10, 30).unwrap_err().to_string();
            assert!(error.contains("both \"from\" and \"to\""), "{error}");
        }
    }

    #[test]
    fn the_event_may_widen_the_margin_for_late_events() {
        assert_eq!(late_days(&json!({}), 1).unwrap(), 1);
        assert_eq!(late_days(&json!({"late_days": 7}), 1).unwrap(), 7);
        for bad in [
            json!({"late_days": -1}),
            json!({"late_days": "7"}),
            json!({"late_days": 1.5}),
        ] {
            let error = late_days(&bad, 1).unwrap_err().to_string();
            assert!(error.contains("whole number of days"), "{error}");
        }
    }
}
