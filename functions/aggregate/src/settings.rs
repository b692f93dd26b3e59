//! The report Lambda's settings, read once from its environment (names:
//! the crate's documentation). An empty variable counts as unset: a
//! template parameter left empty arrives as an empty string.

use pullgate_report::sql::{DEFAULT_LATE_DAYS, MAX_LATE_DAYS};
use pullgate_settings::lookup::process_env;
use pullgate_settings::{defaults, SettingsError, Vars};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub workgroup: String,
    pub database: String,
    pub table: String,
    pub bucket: String,
    pub days: i64,
    /// Days of `dt` partitions read after the range, for events stored
    /// after their own day (`pullgate_report::sql::DEFAULT_LATE_DAYS`).
    pub late_days: u32,
    pub output_location: Option<String>,
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let vars = Vars::new(|name: &str| lookup(name).filter(|v| !v.is_empty()));
        Ok(Settings {
            workgroup: vars.required(
                "ATHENA_WORKGROUP",
                "the Athena workgroup the queries run in",
            )?,
            database: vars
                .optional("GLUE_DATABASE")
                .unwrap_or_else(|| defaults::GLUE_DATABASE.into()),
            table: vars
                .optional("EVENTS_TABLE")
                .unwrap_or_else(|| defaults::EVENTS_TABLE.into()),
            bucket: vars.required("REPORTS_BUCKET", "the bucket the reports are written to")?,
            days: vars.parsed(
                "REPORT_DAYS",
                defaults::REPORT_DAYS,
                "a positive number of days",
                |v| v.parse().ok().filter(|d| *d >= 1),
            )?,
            late_days: vars.parsed(
                "REPORT_LATE_DAYS",
                DEFAULT_LATE_DAYS,
                "a whole number of days, at most a year",
                |v| v.parse().ok().filter(|d| *d <= MAX_LATE_DAYS),
            )?,
            output_location: vars.optional("ATHENA_OUTPUT_LOCATION"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        Settings::from_lookup(|name| map.get(name).map(|v| v.to_string()))
    }

    const REQUIRED: [(&str, &str); 2] = [("ATHENA_WORKGROUP", "wg"), ("REPORTS_BUCKET", "bucket")];

    #[test]
    fn only_the_required_given_means_the_defaults() {
        let settings = read(&REQUIRED).unwrap();
        assert_eq!(
            settings,
            Settings {
                workgroup: "wg".into(),
                database: "pullgate".into(),
                table: "events".into(),
                bucket: "bucket".into(),
                days: 30,
                late_days: 1,
                output_location: None,
            }
        );
    }

    #[test]
    fn every_variable_is_read() {
        let mut pairs = REQUIRED.to_vec();
        pairs.extend([
            ("GLUE_DATABASE", "db"),
            ("EVENTS_TABLE", "t"),
            ("REPORT_DAYS", "7"),
            ("REPORT_LATE_DAYS", "3"),
            ("ATHENA_OUTPUT_LOCATION", "s3://results/"),
        ]);
        let settings = read(&pairs).unwrap();
        assert_eq!(
            (settings.database.as_str(), settings.table.as_str()),
            ("db", "t")
        );
        assert_eq!((settings.days, settings.late_days), (7, 3));
        assert_eq!(settings.output_location.as_deref(), Some("s3://results/"));
    }

    #[test]
    fn empty_counts_as_unset() {
        let mut pairs = REQUIRED.to_vec();
        pairs.extend([
            ("ATHENA_OUTPUT_LOCATION", ""),
            ("GLUE_DATABASE", ""),
            ("REPORT_DAYS", ""),
        ]);
        let settings = read(&pairs).unwrap();
        assert_eq!(settings.output_location, None);
        assert_eq!(
            (settings.database.as_str(), settings.days),
            ("pullgate", 30)
        );
        let error = read(&[("ATHENA_WORKGROUP", ""), ("REPORTS_BUCKET", "b")]).unwrap_err();
        assert!(
            error.to_string().starts_with("ATHENA_WORKGROUP is not set"),
            "{error}"
        );
    }

    #[test]
    fn the_workgroup_and_the_bucket_are_required() {
        let error = read(&REQUIRED[1..]).unwrap_err().to_string();
        assert!(error.starts_with("ATHENA_WORKGROUP is not set"), "{error}");
        let error = read(&REQUIRED[..1]).unwrap_err().to_string();
        assert!(error.starts_with("REPORTS_BUCKET is not set"), "{error}");
    }

    #[test]
    fn days_must_be_a_positive_whole_number() {
        for value in ["0", "-3", "abc", "1.5"] {
            let mut pairs = REQUIRED.to_vec();
            pairs.push(("REPORT_DAYS", value));
            let error = read(&pairs).unwrap_err().to_string();
            assert_eq!(
                error,
                format!("REPORT_DAYS={value:?} is not valid: expected a positive number of days")
            );
        }
    }

    #[test]
    fn late_days_may_be_none_up_to_a_year() {
        for (value, late) in [("0", 0), ("366", 366)] {
            let mut pairs = REQUIRED.to_vec();
            pairs.push(("REPORT_LATE_DAYS", value));
            assert_eq!(read(&pairs).unwrap().late_days, late);
        }
        for value in ["367", "-1", "1.5", "x"] {
            let mut pairs = REQUIRED.to_vec();
            pairs.push(("REPORT_LATE_DAYS", value));
            let error = read(&pairs).unwrap_err().to_string();
            assert_eq!(
                error,
                format!("REPORT_LATE_DAYS={value:?} is not valid: expected a whole number of days, at most a year")
            );
        }
    }
}
