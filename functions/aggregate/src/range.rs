//! The days a run reports on: the event's `from` and `to`, or the last
//! `REPORT_DAYS` days ending today (UTC).

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
}
