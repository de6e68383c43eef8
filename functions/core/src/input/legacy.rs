//! The legacy flat JSON format of the Spark system that cardiowatch replaces.
//!
//! One object per message on topic `heart_data`, every field required, codes as numbers:
//! `{"id": 7, "age": 52, "gender": 1, "height": 172, "weight": 81.5, "ap_hi": 135,
//! "ap_lo": 85, "cholesterol": 2, "gluc": 1, "smoke": 0, "alco": 0, "active": 1}`.
//! Age is in years and gender is 0 for female and 1 for male. Unknown keys are ignored.

use serde_json::{Map, Value};

use super::json::{as_integer, as_number, get, invalid_field};
use super::ranges::{self, Range};
use super::{Format, InputError};
use crate::types::{Profile, Reading, Sex, Vitals};

/// Every field of a legacy record, in the order the old system wrote them. All are
/// required because that system always sent all of them.
pub const FIELDS: [&str; 12] = [
    "id",
    "age",
    "gender",
    "height",
    "weight",
    "ap_hi",
    "ap_lo",
    "cholesterol",
    "gluc",
    "smoke",
    "alco",
    "active",
];

/// Converts one legacy record to a reading with a full profile and blood pressure.
pub(super) fn parse(object: &Map<String, Value>) -> Result<Reading, InputError> {
    let record = Record::new(object)?;
    let patient_id = record.patient_id()?;
    let systolic = record.ranged("ap_hi", &ranges::SYSTOLIC_BP_MMHG)?;
    let diastolic = record.ranged("ap_lo", &ranges::DIASTOLIC_BP_MMHG)?;
    ranges::check_blood_pressure_order(("ap_hi", systolic), ("ap_lo", diastolic))?;
    let vitals = Vitals {
        systolic_bp_mmhg: Some(systolic),
        diastolic_bp_mmhg: Some(diastolic),
        ..Vitals::default()
    };
    Ok(Reading {
        patient_id: Some(patient_id),
        event_time_ms: None,
        vitals,
        profile: Some(record.profile()?),
        format: Format::LegacyJson.name().to_string(),
    })
}

/// A legacy JSON object whose fields are all known to be present.
struct Record<'a> {
    object: &'a Map<String, Value>,
}

impl<'a> Record<'a> {
    /// Wraps `object` after checking that every field in [`FIELDS`] is present and not
    /// null.
    fn new(object: &'a Map<String, Value>) -> Result<Record<'a>, InputError> {
        match FIELDS.iter().find(|field| get(object, field).is_none()) {
            Some(missing) => Err(InputError::MissingField(missing.to_string())),
            None => Ok(Record { object }),
        }
    }

    fn value(&self, field: &str) -> &'a Value {
        &self.object[field]
    }

    /// Renders `id` as a decimal string, so `12` and `12.0` both become `"12"`.
    fn patient_id(&self) -> Result<String, InputError> {
        let value = self.value("id");
        let id = as_integer("id", value, "a non-negative integer patient id")?;
        if id < 0 {
            return Err(invalid_field(
                "id",
                value,
                "a non-negative integer patient id",
            ));
        }
        Ok(id.to_string())
    }

    fn ranged(&self, field: &str, range: &Range) -> Result<f64, InputError> {
        let expected = format!("a number in {}", range.unit);
        let value = as_number(field, self.value(field), &expected)?;
        range.check(field, value)
    }

    fn category(&self, field: &str) -> Result<u8, InputError> {
        let value = as_number(field, self.value(field), "a category code 1, 2 or 3")?;
        ranges::check_category(field, value)
    }

    /// Reads a 0/1 flag. The old system sent 0 or 1, so JSON booleans are rejected.
    fn flag(&self, field: &str) -> Result<bool, InputError> {
        let value = self.value(field);
        match as_integer(field, value, "0 or 1")? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid_field(field, value, "0 or 1")),
        }
    }

    /// Reads `gender`: 0 is female and 1 is male. The training data's coding of 1 and 2
    /// is not accepted, so a 2 is rejected rather than read as male.
    fn sex(&self) -> Result<Sex, InputError> {
        let value = self.value("gender");
        let expected = "0 (female) or 1 (male)";
        match as_integer("gender", value, expected)? {
            0 => Ok(Sex::Female),
            1 => Ok(Sex::Male),
            _ => Err(invalid_field("gender", value, expected)),
        }
    }

    fn profile(&self) -> Result<Profile, InputError> {
        Ok(Profile {
            age_years: Some(self.ranged("age", &ranges::AGE_YEARS)?),
            sex: Some(self.sex()?),
            height_cm: Some(self.ranged("height", &ranges::HEIGHT_CM)?),
            weight_kg: Some(self.ranged("weight", &ranges::WEIGHT_KG)?),
            cholesterol_category: Some(self.category("cholesterol")?),
            glucose_category: Some(self.category("gluc")?),
            smoker: Some(self.flag("smoke")?),
            alcohol: Some(self.flag("alco")?),
            physically_active: Some(self.flag("active")?),
            spo2_scale: None,
            extra: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "id": 7, "age": 52, "gender": 1, "height": 172, "weight": 81.5,
            "ap_hi": 135, "ap_lo": 85, "cholesterol": 2, "gluc": 3,
            "smoke": 0, "alco": 1, "active": 1
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut record = record();
        record[field] = value;
        record
    }

    fn parse_value(value: &Value) -> Result<Reading, InputError> {
        parse(value.as_object().unwrap())
    }

    #[test]
    fn happy_path_maps_every_field() {
        let reading = parse_value(&record()).unwrap();
        assert_eq!(reading.patient_id.as_deref(), Some("7"));
        assert_eq!(reading.event_time_ms, None);
        assert_eq!(reading.format, "legacy-json");
        assert_eq!(reading.vitals.systolic_bp_mmhg, Some(135.0));
        assert_eq!(reading.vitals.diastolic_bp_mmhg, Some(85.0));
        assert_eq!(reading.vitals.heart_rate_bpm, None);
        let profile = reading.profile.unwrap();
        assert_eq!(profile.age_years, Some(52.0));
        assert_eq!(profile.sex, Some(Sex::Male));
        assert_eq!(profile.height_cm, Some(172.0));
        assert_eq!(profile.weight_kg, Some(81.5));
        assert_eq!(profile.cholesterol_category, Some(2));
        assert_eq!(profile.glucose_category, Some(3));
        assert_eq!(profile.smoker, Some(false));
        assert_eq!(profile.alcohol, Some(true));
        assert_eq!(profile.physically_active, Some(true));
        assert_eq!(profile.spo2_scale, None);
        assert!(profile.extra.is_empty());
    }

    #[test]
    fn vitals_other_than_blood_pressure_stay_missing() {
        let vitals = parse_value(&record()).unwrap().vitals;
        let expected = Vitals {
            systolic_bp_mmhg: Some(135.0),
            diastolic_bp_mmhg: Some(85.0),
            ..Vitals::default()
        };
        assert_eq!(vitals, expected);
    }

    #[test]
    fn gender_zero_is_female() {
        let profile = parse_value(&with("gender", json!(0))).unwrap().profile;
        assert_eq!(profile.unwrap().sex, Some(Sex::Female));
    }

    #[test]
    fn each_missing_field_is_reported() {
        for field in FIELDS {
            let mut record = record();
            record.as_object_mut().unwrap().remove(field);
            let error = parse_value(&record).unwrap_err();
            assert_eq!(error, InputError::MissingField(field.to_string()));
        }
    }

    #[test]
    fn null_field_counts_as_missing() {
        let error = parse_value(&with("ap_lo", Value::Null)).unwrap_err();
        assert_eq!(error, InputError::MissingField("ap_lo".to_string()));
    }

    #[test]
    fn integral_floats_are_accepted() {
        let mut record = record();
        for field in FIELDS {
            let number = record[field].as_f64().unwrap();
            record[field] = json!(number);
        }
        record["age"] = json!(63.0);
        let reading = parse_value(&record).unwrap();
        assert_eq!(reading.patient_id.as_deref(), Some("7"));
        assert_eq!(reading.profile.unwrap().age_years, Some(63.0));
    }

    #[test]
    fn fractional_codes_are_rejected() {
        for field in [
            "id",
            "gender",
            "cholesterol",
            "gluc",
            "smoke",
            "alco",
            "active",
        ] {
            let error = parse_value(&with(field, json!(0.5))).unwrap_err();
            assert!(
                matches!(error, InputError::InvalidField(_)),
                "{field}: {error}"
            );
            assert!(
                error.to_string().contains(&format!("{field} 0.5")),
                "{error}"
            );
        }
    }

    #[test]
    fn gender_half_is_rejected_with_hint() {
        let error = parse_value(&with("gender", json!(0.5))).unwrap_err();
        let expected = "invalid gender 0.5: expected 0 (female) or 1 (male)";
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn training_data_gender_two_is_rejected() {
        let error = parse_value(&with("gender", json!(2))).unwrap_err();
        assert!(matches!(error, InputError::InvalidField(_)), "{error}");
    }

    #[test]
    fn strings_and_booleans_are_rejected() {
        for field in FIELDS {
            for value in [json!("1"), json!(true)] {
                let error = parse_value(&with(field, value.clone())).unwrap_err();
                assert!(
                    matches!(error, InputError::InvalidField(_)),
                    "{field}: {error}"
                );
                let text = error.to_string();
                assert!(text.contains(&format!("{field} {value}")), "{text}");
            }
        }
    }

    #[test]
    fn flags_other_than_zero_and_one_are_rejected() {
        for field in ["smoke", "alco", "active"] {
            let error = parse_value(&with(field, json!(2))).unwrap_err();
            let expected = format!("invalid {field} 2: expected 0 or 1");
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn negative_id_is_rejected() {
        let error = parse_value(&with("id", json!(-3))).unwrap_err();
        assert!(matches!(error, InputError::InvalidField(_)), "{error}");
    }

    #[test]
    fn range_bounds_are_inclusive() {
        let cases: [(&str, Range, f64); 7] = [
            ("age", ranges::AGE_YEARS, 0.001),
            ("height", ranges::HEIGHT_CM, 0.001),
            ("weight", ranges::WEIGHT_KG, 0.001),
            ("ap_hi", ranges::SYSTOLIC_BP_MMHG, 0.001),
            ("ap_lo", ranges::DIASTOLIC_BP_MMHG, 0.001),
            ("cholesterol", ranges::CATEGORY, 1.0),
            ("gluc", ranges::CATEGORY, 1.0),
        ];
        for (field, range, step) in cases {
            for inside in [range.min, range.max] {
                let record = with_blood_pressure_room(field, inside);
                assert!(parse_value(&record).is_ok(), "{field} {inside}");
            }
            for outside in [range.min - step, range.max + step] {
                let error = parse_value(&with_blood_pressure_room(field, outside)).unwrap_err();
                let expected = range.check(field, outside).unwrap_err();
                assert_eq!(error, expected, "{field} {outside}");
            }
        }
    }

    /// Sets `field` and moves the other blood pressure out of the way, so a boundary
    /// value of one pressure does not fail the diastolic-below-systolic check.
    fn with_blood_pressure_room(field: &str, value: f64) -> Value {
        let mut record = with(field, json!(value));
        match field {
            "ap_hi" => record["ap_lo"] = json!(20),
            "ap_lo" => record["ap_hi"] = json!(300),
            _ => {}
        }
        record
    }

    #[test]
    fn implausible_message_uses_legacy_name() {
        let error = parse_value(&with("ap_hi", json!(16020))).unwrap_err();
        let expected = "implausible ap_hi 16020: expected 40..=300 mmHg";
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn diastolic_at_or_above_systolic_is_rejected() {
        for diastolic in [135, 150] {
            let error = parse_value(&with("ap_lo", json!(diastolic))).unwrap_err();
            assert!(matches!(error, InputError::InvalidField(_)), "{error}");
            let text = error.to_string();
            assert!(text.contains(&format!("ap_lo {diastolic}")), "{text}");
            assert!(text.contains("ap_hi 135"), "{text}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let mut record = record();
        record["cardio"] = json!(1);
        record["source"] = json!("ward 4");
        assert_eq!(parse_value(&record), parse_value(&self::record()));
    }
}
