//! The canonical JSON format of cardiowatch: one reading per message, units in the names.
//!
//! A message carries vital signs, a patient profile or both. Every key is optional, but a
//! message needs at least one vital sign or a profile. A profile-only message is valid,
//! because the compacted `patients` topic carries such messages. Unknown keys are
//! rejected, so a misspelt name such as `heart_rate` cannot drop a value unnoticed. A JSON
//! `null` counts as absent.
//!
//! ```json
//! {
//!   "schema": "cardiowatch.reading/1",
//!   "patient_id": "p-001",
//!   "time": "2026-12-04T10:15:00Z",
//!   "vitals": {
//!     "heart_rate_bpm": 88,
//!     "systolic_bp_mmhg": 132,
//!     "diastolic_bp_mmhg": 84,
//!     "respiratory_rate_per_min": 18,
//!     "spo2_percent": 96,
//!     "temperature_celsius": 37.2,
//!     "supplemental_oxygen": false,
//!     "consciousness": "alert"
//!   },
//!   "profile": {
//!     "age_years": 63,
//!     "sex": "female",
//!     "height_cm": 164,
//!     "weight_kg": 71.5,
//!     "cholesterol_category": 2,
//!     "glucose_category": 1,
//!     "smoker": false,
//!     "alcohol": false,
//!     "physically_active": true,
//!     "spo2_scale": "scale1",
//!     "extra": { "serum_cholesterol_mg_dl": 233 }
//!   }
//! }
//! ```
//!
//! Top-level keys:
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `schema` | string | must be `cardiowatch.reading/1` when present |
//! | `patient_id` | string | patient id, which the host overrides with the Kafka message key |
//! | `time` | string | event time, RFC 3339 with a UTC offset (`Z` or `+01:00`) |
//! | `time_ms` | integer | event time in milliseconds since the Unix epoch |
//! | `vitals` | object | vital signs, below |
//! | `profile` | object | patient profile, below |
//!
//! A message gives `time` or `time_ms`, not both, and the time must lie between
//! 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z. Without either, the host uses the Kafka
//! message timestamp.
//!
//! Keys of `vitals`, with the inclusive plausibility range of each number:
//!
//! | key | type | range |
//! | --- | --- | --- |
//! | `heart_rate_bpm` | number | 20 to 300 beats/min |
//! | `systolic_bp_mmhg` | number | 40 to 300 mmHg |
//! | `diastolic_bp_mmhg` | number | 20 to 200 mmHg, and below the systolic value |
//! | `respiratory_rate_per_min` | number | 2 to 80 breaths/min |
//! | `spo2_percent` | number | 50 to 100 % |
//! | `temperature_celsius` | number | 25 to 45 °C |
//! | `supplemental_oxygen` | boolean | |
//! | `consciousness` | string | `alert`, `new_confusion`, `voice`, `pain` or `unresponsive` |
//!
//! Keys of `profile`:
//!
//! | key | type | range |
//! | --- | --- | --- |
//! | `age_years` | number | 0 to 120 years |
//! | `sex` | string | `female` or `male` |
//! | `height_cm` | number | 50 to 250 cm |
//! | `weight_kg` | number | 2 to 400 kg |
//! | `cholesterol_category` | integer | 1 normal, 2 above normal, 3 well above normal |
//! | `glucose_category` | integer | 1 normal, 2 above normal, 3 well above normal |
//! | `smoker`, `alcohol`, `physically_active` | boolean | |
//! | `spo2_scale` | string | `scale1` (the default) or `scale2`, the NEWS2 SpO2 scale |
//! | `extra` | object | further numbers by snake_case name, unit suffixed, no range |
//!
//! The ranges are defined in `ranges.rs`, which both input formats share.

use serde_json::{Map, Value};

use super::json::{as_bool, as_enum, as_number, get, invalid_field, render};
use super::ranges::{self, Range};
use super::time::{parse_epoch_ms, parse_rfc3339};
use super::{Format, InputError};
use crate::types::{Consciousness, Profile, Reading, Sex, Spo2Scale, Vitals};

/// The only schema version this parser accepts in the `schema` key.
pub const SCHEMA: &str = "cardiowatch.reading/1";

const READING_KEYS: [&str; 6] = [
    "schema",
    "patient_id",
    "time",
    "time_ms",
    "vitals",
    "profile",
];

const VITALS_KEYS: [&str; 8] = [
    "heart_rate_bpm",
    "systolic_bp_mmhg",
    "diastolic_bp_mmhg",
    "respiratory_rate_per_min",
    "spo2_percent",
    "temperature_celsius",
    "supplemental_oxygen",
    "consciousness",
];

const PROFILE_KEYS: [&str; 11] = [
    "age_years",
    "sex",
    "height_cm",
    "weight_kg",
    "cholesterol_category",
    "glucose_category",
    "smoker",
    "alcohol",
    "physically_active",
    "spo2_scale",
    "extra",
];

const CONSCIOUSNESS_NAMES: [(&str, Consciousness); 5] = [
    ("alert", Consciousness::Alert),
    ("new_confusion", Consciousness::NewConfusion),
    ("voice", Consciousness::Voice),
    ("pain", Consciousness::Pain),
    ("unresponsive", Consciousness::Unresponsive),
];

const SEX_NAMES: [(&str, Sex); 2] = [("female", Sex::Female), ("male", Sex::Male)];

const SPO2_SCALE_NAMES: [(&str, Spo2Scale); 2] =
    [("scale1", Spo2Scale::Scale1), ("scale2", Spo2Scale::Scale2)];

/// Converts one canonical JSON object to a reading.
pub(super) fn parse(object: &Map<String, Value>) -> Result<Reading, InputError> {
    reject_unknown_keys(object, &READING_KEYS, "the reading")?;
    check_schema(object)?;
    let patient_id = get(object, "patient_id")
        .map(parse_patient_id)
        .transpose()?;
    let event_time_ms = parse_event_time(object)?;
    let vitals = get(object, "vitals").map(parse_vitals).transpose()?;
    let profile = get(object, "profile").map(parse_profile).transpose()?;
    let vitals = vitals.unwrap_or_default();
    if vitals.is_empty() && profile.is_none() {
        return Err(InputError::MissingField("vitals".to_string()));
    }
    Ok(Reading {
        patient_id,
        event_time_ms,
        vitals,
        profile,
        format: Format::CanonicalJson.name().to_string(),
    })
}

/// Rejects the first key of `object` that is not in `accepted`, listing the accepted
/// names so that a typo is easy to fix.
fn reject_unknown_keys(
    object: &Map<String, Value>,
    accepted: &[&str],
    location: &str,
) -> Result<(), InputError> {
    let Some(unknown) = object.keys().find(|key| !accepted.contains(&key.as_str())) else {
        return Ok(());
    };
    Err(InputError::InvalidField(format!(
        "unknown field {} in {location}: expected one of {}",
        render(&Value::String(unknown.clone())),
        accepted.join(", ")
    )))
}

fn check_schema(object: &Map<String, Value>) -> Result<(), InputError> {
    let Some(value) = get(object, "schema") else {
        return Ok(());
    };
    match value.as_str() {
        Some(SCHEMA) => Ok(()),
        Some(_) => Err(InputError::UnsupportedFormat(format!(
            "unsupported schema {}: expected {SCHEMA}",
            render(value)
        ))),
        None => Err(invalid_field("schema", value, &format!("\"{SCHEMA}\""))),
    }
}

fn parse_patient_id(value: &Value) -> Result<String, InputError> {
    match value.as_str() {
        Some(id) if !id.trim().is_empty() => Ok(id.to_string()),
        _ => Err(invalid_field(
            "patient_id",
            value,
            "a non-empty string such as \"p-001\"",
        )),
    }
}

fn parse_event_time(object: &Map<String, Value>) -> Result<Option<i64>, InputError> {
    match (get(object, "time"), get(object, "time_ms")) {
        (Some(_), Some(_)) => Err(InputError::InvalidField(
            "invalid time: time and time_ms are both present, give only one of them".to_string(),
        )),
        (Some(text), None) => parse_rfc3339("time", text).map(Some),
        (None, Some(millis)) => parse_epoch_ms("time_ms", millis).map(Some),
        (None, None) => Ok(None),
    }
}

fn parse_vitals(value: &Value) -> Result<Vitals, InputError> {
    let object = as_object("vitals", value)?;
    reject_unknown_keys(object, &VITALS_KEYS, "vitals")?;
    let vitals = Vitals {
        heart_rate_bpm: ranged(object, "heart_rate_bpm", &ranges::HEART_RATE_BPM)?,
        systolic_bp_mmhg: ranged(object, "systolic_bp_mmhg", &ranges::SYSTOLIC_BP_MMHG)?,
        diastolic_bp_mmhg: ranged(object, "diastolic_bp_mmhg", &ranges::DIASTOLIC_BP_MMHG)?,
        respiratory_rate_per_min: ranged(
            object,
            "respiratory_rate_per_min",
            &ranges::RESPIRATORY_RATE_PER_MIN,
        )?,
        spo2_percent: ranged(object, "spo2_percent", &ranges::SPO2_PERCENT)?,
        temperature_celsius: ranged(object, "temperature_celsius", &ranges::TEMPERATURE_CELSIUS)?,
        supplemental_oxygen: boolean(object, "supplemental_oxygen")?,
        consciousness: enumerated(object, "consciousness", &CONSCIOUSNESS_NAMES)?,
    };
    if let (Some(systolic), Some(diastolic)) = (vitals.systolic_bp_mmhg, vitals.diastolic_bp_mmhg) {
        ranges::check_blood_pressure_order(
            ("systolic_bp_mmhg", systolic),
            ("diastolic_bp_mmhg", diastolic),
        )?;
    }
    Ok(vitals)
}

fn parse_profile(value: &Value) -> Result<Profile, InputError> {
    let object = as_object("profile", value)?;
    reject_unknown_keys(object, &PROFILE_KEYS, "profile")?;
    Ok(Profile {
        age_years: ranged(object, "age_years", &ranges::AGE_YEARS)?,
        sex: enumerated(object, "sex", &SEX_NAMES)?,
        height_cm: ranged(object, "height_cm", &ranges::HEIGHT_CM)?,
        weight_kg: ranged(object, "weight_kg", &ranges::WEIGHT_KG)?,
        cholesterol_category: category(object, "cholesterol_category")?,
        glucose_category: category(object, "glucose_category")?,
        smoker: boolean(object, "smoker")?,
        alcohol: boolean(object, "alcohol")?,
        physically_active: boolean(object, "physically_active")?,
        spo2_scale: enumerated(object, "spo2_scale", &SPO2_SCALE_NAMES)?,
        extra: get(object, "extra")
            .map(parse_extra)
            .transpose()?
            .unwrap_or_default(),
    })
}

/// Reads `extra` into (name, value) pairs sorted by name. Null values count as absent.
fn parse_extra(value: &Value) -> Result<Vec<(String, f64)>, InputError> {
    let object = as_object("extra", value)?;
    let mut extra = Vec::with_capacity(object.len());
    for (name, value) in object {
        if value.is_null() {
            continue;
        }
        check_extra_name(name)?;
        let field = format!("extra.{name}");
        let number = as_number(&field, value, "a number in the unit its name states")?;
        extra.push((name.clone(), number));
    }
    extra.sort_by(|left, right| left.0.cmp(&right.0));
    Ok(extra)
}

/// Accepts snake_case names: lowercase ASCII letters and digits in words joined by single
/// underscores, starting with a letter.
fn check_extra_name(name: &str) -> Result<(), InputError> {
    let starts_with_letter = name.starts_with(|c: char| c.is_ascii_lowercase());
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let valid_words = name.split('_').all(|word| !word.is_empty());
    if starts_with_letter && valid_chars && valid_words {
        return Ok(());
    }
    Err(InputError::InvalidField(format!(
        "invalid extra name {}: expected a snake_case name with the unit as suffix, such as \
         serum_cholesterol_mg_dl",
        render(&Value::String(name.to_string()))
    )))
}

fn as_object<'a>(field: &str, value: &'a Value) -> Result<&'a Map<String, Value>, InputError> {
    value
        .as_object()
        .ok_or_else(|| invalid_field(field, value, "a JSON object"))
}

fn ranged(
    object: &Map<String, Value>,
    key: &str,
    range: &Range,
) -> Result<Option<f64>, InputError> {
    let Some(value) = get(object, key) else {
        return Ok(None);
    };
    let number = as_number(key, value, &format!("a number in {}", range.unit))?;
    range.check(key, number).map(Some)
}

fn category(object: &Map<String, Value>, key: &str) -> Result<Option<u8>, InputError> {
    let Some(value) = get(object, key) else {
        return Ok(None);
    };
    let number = as_number(key, value, "a category code 1, 2 or 3")?;
    ranges::check_category(key, number).map(Some)
}

fn boolean(object: &Map<String, Value>, key: &str) -> Result<Option<bool>, InputError> {
    get(object, key)
        .map(|value| as_bool(key, value))
        .transpose()
}

fn enumerated<T: Copy>(
    object: &Map<String, Value>,
    key: &str,
    table: &[(&str, T)],
) -> Result<Option<T>, InputError> {
    get(object, key)
        .map(|value| as_enum(key, value, table))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_value(value: Value) -> Result<Reading, InputError> {
        parse(value.as_object().unwrap())
    }

    fn full_message() -> Value {
        json!({
            "schema": "cardiowatch.reading/1",
            "patient_id": "p-001",
            "time": "2026-12-04T10:15:00Z",
            "vitals": {
                "heart_rate_bpm": 88,
                "systolic_bp_mmhg": 132,
                "diastolic_bp_mmhg": 84,
                "respiratory_rate_per_min": 18,
                "spo2_percent": 96,
                "temperature_celsius": 37.2,
                "supplemental_oxygen": false,
                "consciousness": "new_confusion"
            },
            "profile": {
                "age_years": 63,
                "sex": "female",
                "height_cm": 164,
                "weight_kg": 71.5,
                "cholesterol_category": 2,
                "glucose_category": 1,
                "smoker": false,
                "alcohol": true,
                "physically_active": true,
                "spo2_scale": "scale2",
                "extra": { "serum_cholesterol_mg_dl": 233, "max_heart_rate_bpm": 150 }
            }
        })
    }

    #[test]
    fn happy_path_maps_every_field() {
        let reading = parse_value(full_message()).unwrap();
        assert_eq!(reading.patient_id.as_deref(), Some("p-001"));
        assert_eq!(reading.event_time_ms, Some(1_796_379_300_000));
        assert_eq!(reading.format, "canonical-json");
        let expected_vitals = Vitals {
            heart_rate_bpm: Some(88.0),
            systolic_bp_mmhg: Some(132.0),
            diastolic_bp_mmhg: Some(84.0),
            respiratory_rate_per_min: Some(18.0),
            spo2_percent: Some(96.0),
            temperature_celsius: Some(37.2),
            supplemental_oxygen: Some(false),
            consciousness: Some(Consciousness::NewConfusion),
        };
        assert_eq!(reading.vitals, expected_vitals);
    }

    #[test]
    fn happy_path_maps_profile() {
        let profile = parse_value(full_message()).unwrap().profile.unwrap();
        assert_eq!(profile.age_years, Some(63.0));
        assert_eq!(profile.sex, Some(Sex::Female));
        assert_eq!(profile.height_cm, Some(164.0));
        assert_eq!(profile.weight_kg, Some(71.5));
        assert_eq!(profile.cholesterol_category, Some(2));
        assert_eq!(profile.glucose_category, Some(1));
        assert_eq!(profile.smoker, Some(false));
        assert_eq!(profile.alcohol, Some(true));
        assert_eq!(profile.physically_active, Some(true));
        assert_eq!(profile.spo2_scale, Some(Spo2Scale::Scale2));
    }

    #[test]
    fn extra_is_sorted_by_name() {
        let profile = parse_value(full_message()).unwrap().profile.unwrap();
        let expected = vec![
            ("max_heart_rate_bpm".to_string(), 150.0),
            ("serum_cholesterol_mg_dl".to_string(), 233.0),
        ];
        assert_eq!(profile.extra, expected);
    }

    #[test]
    fn vitals_only_message_has_no_profile() {
        let reading = parse_value(json!({"vitals": {"heart_rate_bpm": 70}})).unwrap();
        assert_eq!(reading.vitals.heart_rate_bpm, Some(70.0));
        assert_eq!(reading.profile, None);
        assert_eq!(reading.patient_id, None);
        assert_eq!(reading.event_time_ms, None);
    }

    #[test]
    fn profile_only_message_is_valid() {
        let message = json!({"patient_id": "p-7", "profile": {"age_years": 40, "sex": "male"}});
        let reading = parse_value(message).unwrap();
        assert!(reading.vitals.is_empty());
        let profile = reading.profile.unwrap();
        assert_eq!(profile.age_years, Some(40.0));
        assert_eq!(profile.sex, Some(Sex::Male));
    }

    #[test]
    fn message_without_vitals_or_profile_is_rejected() {
        for message in [
            json!({}),
            json!({"patient_id": "p-1"}),
            json!({"vitals": {}}),
            json!({"vitals": null, "profile": null}),
            json!({"vitals": {"heart_rate_bpm": null}}),
        ] {
            let error = parse_value(message.clone()).unwrap_err();
            assert_eq!(
                error,
                InputError::MissingField("vitals".to_string()),
                "{message}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_rejected_at_every_level() {
        let cases = [
            (
                json!({"vitals": {"heart_rate": 80}}),
                "\"heart_rate\" in vitals",
            ),
            (json!({"profile": {"age": 50}}), "\"age\" in profile"),
            (
                json!({"vital": {"heart_rate_bpm": 80}}),
                "\"vital\" in the reading",
            ),
        ];
        for (message, location) in cases {
            let error = parse_value(message).unwrap_err();
            assert!(matches!(error, InputError::InvalidField(_)), "{error}");
            let text = error.to_string();
            assert!(
                text.starts_with(&format!("unknown field {location}")),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_key_message_lists_accepted_names() {
        let error = parse_value(json!({"vitals": {"heart_rate": 80}})).unwrap_err();
        let text = error.to_string();
        for name in VITALS_KEYS {
            assert!(text.contains(name), "{name} missing from {text}");
        }
    }

    #[test]
    fn range_bounds_are_inclusive() {
        let cases: [(&str, &str, Range, f64); 11] = [
            ("vitals", "heart_rate_bpm", ranges::HEART_RATE_BPM, 0.001),
            (
                "vitals",
                "systolic_bp_mmhg",
                ranges::SYSTOLIC_BP_MMHG,
                0.001,
            ),
            (
                "vitals",
                "diastolic_bp_mmhg",
                ranges::DIASTOLIC_BP_MMHG,
                0.001,
            ),
            (
                "vitals",
                "respiratory_rate_per_min",
                ranges::RESPIRATORY_RATE_PER_MIN,
                0.001,
            ),
            ("vitals", "spo2_percent", ranges::SPO2_PERCENT, 0.001),
            (
                "vitals",
                "temperature_celsius",
                ranges::TEMPERATURE_CELSIUS,
                0.001,
            ),
            ("profile", "age_years", ranges::AGE_YEARS, 0.001),
            ("profile", "height_cm", ranges::HEIGHT_CM, 0.001),
            ("profile", "weight_kg", ranges::WEIGHT_KG, 0.001),
            ("profile", "cholesterol_category", ranges::CATEGORY, 1.0),
            ("profile", "glucose_category", ranges::CATEGORY, 1.0),
        ];
        for (section, key, range, step) in cases {
            for inside in [range.min, range.max] {
                let message = json!({ section: { key: inside } });
                assert!(parse_value(message).is_ok(), "{key} {inside}");
            }
            for outside in [range.min - step, range.max + step] {
                let error = parse_value(json!({ section: { key: outside } })).unwrap_err();
                assert_eq!(error, range.check(key, outside).unwrap_err(), "{key}");
            }
        }
    }

    #[test]
    fn implausible_message_uses_canonical_name() {
        let error = parse_value(json!({"vitals": {"heart_rate_bpm": 412}})).unwrap_err();
        let expected = "implausible heart_rate_bpm 412: expected 20..=300 beats/min";
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn diastolic_at_or_above_systolic_is_rejected() {
        for diastolic in [120, 140] {
            let vitals = json!({"systolic_bp_mmhg": 120, "diastolic_bp_mmhg": diastolic});
            let error = parse_value(json!({ "vitals": vitals })).unwrap_err();
            assert!(matches!(error, InputError::InvalidField(_)), "{error}");
            let text = error.to_string();
            assert!(
                text.contains(&format!("diastolic_bp_mmhg {diastolic}")),
                "{text}"
            );
            assert!(text.contains("systolic_bp_mmhg 120"), "{text}");
        }
    }

    #[test]
    fn one_blood_pressure_alone_is_accepted() {
        let reading = parse_value(json!({"vitals": {"diastolic_bp_mmhg": 150}})).unwrap();
        assert_eq!(reading.vitals.diastolic_bp_mmhg, Some(150.0));
        assert_eq!(reading.vitals.systolic_bp_mmhg, None);
    }

    #[test]
    fn wrong_value_types_are_rejected() {
        let cases = [
            json!({"vitals": {"heart_rate_bpm": "80"}}),
            json!({"vitals": {"supplemental_oxygen": 1}}),
            json!({"vitals": {"consciousness": "awake"}}),
            json!({"vitals": {"consciousness": 0}}),
            json!({"vitals": [80]}),
            json!({"profile": {"sex": 1}}),
            json!({"profile": {"spo2_scale": "scale3"}}),
            json!({"profile": {"smoker": "no"}}),
            json!({"profile": {"cholesterol_category": 1.5}}),
            json!({"profile": {"extra": [1]}}),
            json!({"profile": {"extra": {"troponin_ng_l": "12"}}}),
            json!({"profile": "none"}),
        ];
        for message in cases {
            let error = parse_value(message.clone()).unwrap_err();
            assert!(
                matches!(error, InputError::InvalidField(_)),
                "{message}: {error}"
            );
        }
    }

    #[test]
    fn wrong_type_message_names_field_and_value() {
        let error = parse_value(json!({"vitals": {"heart_rate_bpm": "80"}})).unwrap_err();
        let expected = "invalid heart_rate_bpm \"80\": expected a number in beats/min";
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn every_consciousness_level_is_accepted() {
        for (name, level) in CONSCIOUSNESS_NAMES {
            let reading = parse_value(json!({"vitals": {"consciousness": name}})).unwrap();
            assert_eq!(reading.vitals.consciousness, Some(level), "{name}");
        }
    }

    #[test]
    fn extra_names_must_be_snake_case() {
        for name in [
            "Serum",
            "serum-chol",
            "_serum",
            "serum_",
            "serum__chol",
            "1serum",
            "",
        ] {
            let message = json!({"profile": {"extra": { name: 1 }}});
            let error = parse_value(message).unwrap_err();
            assert!(matches!(error, InputError::InvalidField(_)), "{name}");
            assert!(error.to_string().contains("snake_case"), "{error}");
        }
        for name in ["st_depression_mm", "vessels", "oldpeak2"] {
            assert!(
                parse_value(json!({"profile": {"extra": { name: 1 }}})).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn empty_profile_counts_as_profile() {
        let reading = parse_value(json!({"profile": {}})).unwrap();
        assert_eq!(reading.profile, Some(Profile::default()));
    }

    #[test]
    fn time_ms_is_read() {
        let message = json!({"time_ms": 1_796_379_300_000_i64, "vitals": {"spo2_percent": 97}});
        let reading = parse_value(message).unwrap();
        assert_eq!(reading.event_time_ms, Some(1_796_379_300_000));
    }

    #[test]
    fn time_with_offset_is_converted_to_utc() {
        let message = json!({"time": "2026-12-04T11:15:00+01:00", "vitals": {"spo2_percent": 97}});
        let reading = parse_value(message).unwrap();
        assert_eq!(reading.event_time_ms, Some(1_796_379_300_000));
    }

    #[test]
    fn time_and_time_ms_together_are_rejected() {
        let message = json!({
            "time": "2026-12-04T10:15:00Z",
            "time_ms": 1_796_379_300_000_i64,
            "vitals": {"spo2_percent": 97}
        });
        let error = parse_value(message).unwrap_err();
        assert!(matches!(error, InputError::InvalidField(_)), "{error}");
        assert!(error.to_string().contains("both present"), "{error}");
    }

    #[test]
    fn time_outside_1970_to_2200_is_implausible() {
        for time in ["1969-07-20T20:17:00Z", "2201-01-01T00:00:00Z"] {
            let message = json!({"time": time, "vitals": {"spo2_percent": 97}});
            let error = parse_value(message).unwrap_err();
            assert!(
                matches!(error, InputError::Implausible { .. }),
                "{time}: {error}"
            );
        }
    }

    #[test]
    fn unparseable_time_is_rejected() {
        let message = json!({"time": "04/12/2026 10:15", "vitals": {"spo2_percent": 97}});
        let error = parse_value(message).unwrap_err();
        assert!(matches!(error, InputError::InvalidField(_)), "{error}");
        assert!(
            error.to_string().contains("\"04/12/2026 10:15\""),
            "{error}"
        );
    }

    #[test]
    fn other_schema_version_is_unsupported() {
        let message = json!({"schema": "cardiowatch.reading/2", "vitals": {"spo2_percent": 97}});
        let error = parse_value(message).unwrap_err();
        assert!(matches!(error, InputError::UnsupportedFormat(_)), "{error}");
    }

    #[test]
    fn patient_id_must_be_non_empty_string() {
        for id in [json!(17), json!(""), json!("  "), json!(["p-1"])] {
            let message = json!({"patient_id": id, "vitals": {"spo2_percent": 97}});
            let error = parse_value(message).unwrap_err();
            assert!(
                matches!(error, InputError::InvalidField(_)),
                "{id}: {error}"
            );
        }
    }
}
