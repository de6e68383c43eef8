//! Event times of canonical readings: RFC 3339 text or epoch milliseconds.
//!
//! Both forms become milliseconds since the Unix epoch and must lie within
//! [`ranges::EVENT_TIME_MS`]. Nothing here reads a clock.

use chrono::DateTime;
use serde_json::Value;

use super::InputError;
use super::json::{as_integer, invalid_field, render};
use super::ranges;

/// Example of the RFC 3339 form, for error messages.
const RFC3339_EXAMPLE: &str = "2026-12-04T10:15:00Z";

/// Parses an RFC 3339 date and time with a UTC offset, such as `2026-12-04T10:15:00Z` or
/// `2026-12-04T11:15:00+01:00`. Fractions of a millisecond are truncated.
pub(super) fn parse_rfc3339(field: &str, value: &Value) -> Result<i64, InputError> {
    let expected = format!("an RFC 3339 date and time with an offset, such as {RFC3339_EXAMPLE}");
    let text = value
        .as_str()
        .ok_or_else(|| invalid_field(field, value, &expected))?;
    let time = DateTime::parse_from_rfc3339(text).map_err(|error| {
        InputError::InvalidField(format!(
            "invalid {field} {} ({error}): expected {expected}",
            render(value)
        ))
    })?;
    check_range(field, time.timestamp_millis())
}

/// Parses whole milliseconds since the Unix epoch.
pub(super) fn parse_epoch_ms(field: &str, value: &Value) -> Result<i64, InputError> {
    let millis = as_integer(field, value, "whole milliseconds since the Unix epoch")?;
    check_range(field, millis)
}

fn check_range(field: &str, millis: i64) -> Result<i64, InputError> {
    ranges::EVENT_TIME_MS.check(field, millis as f64)?;
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-12-04T10:15:00Z in milliseconds since the Unix epoch.
    const EXAMPLE_MS: i64 = 1_796_379_300_000;

    #[test]
    fn rfc3339_offsets_give_the_same_instant() {
        for text in [
            "2026-12-04T10:15:00Z",
            "2026-12-04T10:15:00+00:00",
            "2026-12-04T11:15:00+01:00",
            "2026-12-04T05:15:00-05:00",
            "2026-12-04T15:45:00+05:30",
        ] {
            assert_eq!(
                parse_rfc3339("time", &json!(text)),
                Ok(EXAMPLE_MS),
                "{text}"
            );
        }
    }

    #[test]
    fn rfc3339_keeps_milliseconds() {
        let parsed = parse_rfc3339("time", &json!("2026-12-04T10:15:00.123456Z"));
        assert_eq!(parsed, Ok(EXAMPLE_MS + 123));
    }

    #[test]
    fn rfc3339_without_offset_is_rejected() {
        for text in ["2026-12-04T10:15:00", "2026-12-04", "yesterday", ""] {
            let error = parse_rfc3339("time", &json!(text)).unwrap_err();
            assert!(matches!(error, InputError::InvalidField(_)), "{text}");
            let message = error.to_string();
            assert!(message.contains(&format!("time \"{text}\"")), "{message}");
            assert!(message.contains(RFC3339_EXAMPLE), "{message}");
        }
    }

    #[test]
    fn rfc3339_number_is_rejected() {
        let error = parse_rfc3339("time", &json!(EXAMPLE_MS)).unwrap_err();
        assert!(matches!(error, InputError::InvalidField(_)), "{error}");
    }

    #[test]
    fn rfc3339_bounds_are_1970_and_2200() {
        for text in ["1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z"] {
            assert!(parse_rfc3339("time", &json!(text)).is_ok(), "{text}");
        }
        for text in ["1969-12-31T23:59:59.999Z", "2200-01-01T00:00:00.001Z"] {
            let error = parse_rfc3339("time", &json!(text)).unwrap_err();
            assert!(matches!(error, InputError::Implausible { .. }), "{text}");
        }
    }

    #[test]
    fn epoch_ms_accepts_integers() {
        assert_eq!(
            parse_epoch_ms("time_ms", &json!(EXAMPLE_MS)),
            Ok(EXAMPLE_MS)
        );
        assert_eq!(parse_epoch_ms("time_ms", &json!(0)), Ok(0));
    }

    #[test]
    fn epoch_ms_bounds_are_inclusive() {
        let max = ranges::EVENT_TIME_MS.max as i64;
        assert_eq!(parse_epoch_ms("time_ms", &json!(max)), Ok(max));
        for outside in [-1, max + 1] {
            let error = parse_epoch_ms("time_ms", &json!(outside)).unwrap_err();
            assert!(matches!(error, InputError::Implausible { .. }), "{outside}");
        }
    }

    #[test]
    fn epoch_ms_rejects_fraction_and_text() {
        for value in [json!(1.5), json!("1796379300000")] {
            let error = parse_epoch_ms("time_ms", &value).unwrap_err();
            assert!(matches!(error, InputError::InvalidField(_)), "{value}");
        }
    }
}
