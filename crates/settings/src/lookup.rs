//! Settings read through a lookup, `Fn(&str) -> Option<String>`: the
//! process environment in Lambda, a map in tests, so that every parse and
//! every error is tested without touching the environment. A bad value is an
//! error naming the variable and the value, never a silent default.

use pullgate_domain::privacy::Rotation;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{name} is not set: {what}")]
    Missing {
        name: &'static str,
        /// What the variable names, and when it is needed.
        what: &'static str,
    },
    #[error("{name}={value:?} is not valid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// The process environment as a lookup. A value that is not UTF-8 reads as
/// unset, as `std::env::var` has it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Typed reads of named variables through a lookup.
pub struct Vars<L> {
    lookup: L,
}

impl<L: Fn(&str) -> Option<String>> Vars<L> {
    pub fn new(lookup: L) -> Self {
        Vars { lookup }
    }

    /// The value as given, if set (an empty value is a value).
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    pub fn required(
        &self,
        name: &'static str,
        what: &'static str,
    ) -> Result<String, SettingsError> {
        self.optional(name)
            .ok_or(SettingsError::Missing { name, what })
    }

    /// `parse` of the value, or `default` when unset; a value `parse`
    /// rejects is an error that says what was `expected`.
    pub fn parsed<T>(
        &self,
        name: &'static str,
        default: T,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, SettingsError> {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => parse(&value).ok_or(SettingsError::Invalid {
                name,
                value,
                expected,
            }),
        }
    }

    /// A whole number of seconds.
    pub fn secs(&self, name: &'static str, default: Duration) -> Result<Duration, SettingsError> {
        self.parsed(name, default, "a whole number of seconds", |v| {
            v.parse().ok().map(Duration::from_secs)
        })
    }

    /// A whole number of milliseconds.
    pub fn millis(&self, name: &'static str, default: Duration) -> Result<Duration, SettingsError> {
        self.parsed(name, default, "a whole number of milliseconds", |v| {
            v.parse().ok().map(Duration::from_millis)
        })
    }

    /// `day`, `month` or `never` (and `daily`, `monthly`).
    pub fn rotation(
        &self,
        name: &'static str,
        default: Rotation,
    ) -> Result<Rotation, SettingsError> {
        self.parsed(name, default, "day, month or never", |v| v.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Vars::new(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn unset_values_take_the_default() {
        let vars = vars(&[]);
        assert_eq!(
            vars.secs("A_SECS", Duration::from_secs(7)),
            Ok(Duration::from_secs(7))
        );
        assert_eq!(vars.millis("A_MS", Duration::ZERO), Ok(Duration::ZERO));
        assert_eq!(
            vars.rotation("A_ROTATION", Rotation::Month),
            Ok(Rotation::Month)
        );
        assert_eq!(vars.optional("A_NAME"), None);
    }

    #[test]
    fn set_values_are_parsed_in_their_unit() {
        let vars = vars(&[("A_SECS", "90"), ("A_MS", "250"), ("A_ROTATION", "daily")]);
        assert_eq!(
            vars.secs("A_SECS", Duration::ZERO),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(
            vars.millis("A_MS", Duration::ZERO),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(
            vars.rotation("A_ROTATION", Rotation::Month),
            Ok(Rotation::Day)
        );
    }

    #[test]
    fn a_number_that_is_not_one_names_the_variable_and_the_value() {
        let error = vars(&[("PULLGATE_MAPPING_TTL_SECS", "abc")])
            .secs("PULLGATE_MAPPING_TTL_SECS", Duration::from_secs(60))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "PULLGATE_MAPPING_TTL_SECS=\"abc\" is not valid: expected a whole number of seconds"
        );
        // Negative, fractional and empty values are no whole number either.
        for value in ["-1", "1.5", "", " 5"] {
            assert!(
                vars(&[("MS", value)]).millis("MS", Duration::ZERO).is_err(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn an_unknown_rotation_names_the_variable_and_the_value() {
        let error = vars(&[("PULLGATE_CLIENT_ID_ROTATION", "weekly")])
            .rotation("PULLGATE_CLIENT_ID_ROTATION", Rotation::Month)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "PULLGATE_CLIENT_ID_ROTATION=\"weekly\" is not valid: expected day, month or never"
        );
    }

    #[test]
    fn a_missing_required_value_says_what_it_is() {
        let error = vars(&[])
            .required("A_TABLE", "the mapping table")
            .unwrap_err();
        assert_eq!(error.to_string(), "A_TABLE is not set: the mapping table");
        assert_eq!(
            vars(&[("A_TABLE", "t")]).required("A_TABLE", "-"),
            Ok("t".into())
        );
    }
}
