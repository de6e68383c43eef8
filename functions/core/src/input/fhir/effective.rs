//! Event time of an Observation: `effectiveDateTime`, `effectiveInstant` or
//! `effectivePeriod.start`, as milliseconds since the Unix epoch.
//!
//! Only a date and time with seconds and a UTC offset names one instant, so partial dates
//! and times without an offset are rejected rather than guessed.

use serde_json::{Map, Value};

use super::as_object;
use crate::input::InputError;
use crate::input::json::{get, invalid_field, render};
use crate::input::time::parse_rfc3339;

/// The `effective[x]` choice elements of an Observation.
const EFFECTIVE_KEYS: [&str; 4] = [
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod",
    "effectiveTiming",
];

/// Form of an accepted `dateTime`, for error messages.
const DATE_TIME_EXPECTED: &str = "a dateTime with seconds and a UTC offset, such as \
                                  2026-12-04T10:15:00Z";

/// Reads the event time of `effectiveDateTime`, `effectiveInstant` or
/// `effectivePeriod.start`, or `None` when the Observation has no `effective[x]`.
pub(super) fn effective_time(
    path: &str,
    observation: &Map<String, Value>,
) -> Result<Option<i64>, InputError> {
    let present: Vec<&str> = EFFECTIVE_KEYS
        .into_iter()
        .filter(|key| get(observation, key).is_some())
        .collect();
    let [key] = present.as_slice() else {
        if present.is_empty() {
            return Ok(None);
        }
        return Err(InputError::InvalidField(format!(
            "invalid {path}: it has {}, expected only one effective[x] element",
            present.join(" and ")
        )));
    };
    let field = format!("{path}.{key}");
    let value = &observation[*key];
    match *key {
        "effectiveDateTime" | "effectiveInstant" => parse_date_time(&field, value).map(Some),
        "effectivePeriod" => {
            let start_field = format!("{field}.start");
            let start = as_object(&field, value)?
                .get("start")
                .filter(|start| !start.is_null())
                .ok_or_else(|| InputError::MissingField(start_field.clone()))?;
            parse_date_time(&start_field, start).map(Some)
        }
        _ => Err(InputError::InvalidField(format!(
            "unsupported {field}: expected effectiveDateTime, effectiveInstant or \
             effectivePeriod.start"
        ))),
    }
}

/// Parses a FHIR `dateTime` or `instant` that places a reading in time: a date, a time
/// with seconds and a UTC offset. Partial dates such as `2012-09-17` and times without an
/// offset are rejected, because they do not name one instant.
fn parse_date_time(field: &str, value: &Value) -> Result<i64, InputError> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid_field(field, value, DATE_TIME_EXPECTED))?;
    let reason = if is_partial_date(text) {
        Some("a date without a time of day")
    } else if lacks_offset(text) {
        Some("a time without a UTC offset")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(InputError::InvalidField(format!(
            "invalid {field} {}: {reason} cannot place the reading in time, expected \
             {DATE_TIME_EXPECTED}",
            render(value)
        )));
    }
    parse_rfc3339(field, value)
}

/// Recognises the partial dates of FHIR: `YYYY`, `YYYY-MM` and `YYYY-MM-DD`.
fn is_partial_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    match bytes.len() {
        4 => digits(0..4),
        7 => digits(0..4) && bytes[4] == b'-' && digits(5..7),
        10 => digits(0..4) && bytes[4] == b'-' && digits(5..7) && bytes[7] == b'-' && digits(8..10),
        _ => false,
    }
}

/// Recognises a date and time whose time part has no `Z` or `±hh:mm` offset.
fn lacks_offset(text: &str) -> bool {
    match text.split_once('T') {
        Some((_, time)) => !time.contains(['Z', 'z', '+', '-']),
        None => false,
    }
}
