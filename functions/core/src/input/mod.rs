//! Input parsing: one raw Kafka record in, one validated canonical [`Reading`] out.
//!
//! [`parse`] detects the format (legacy flat JSON, canonical JSON or FHIR R4
//! Observations), converts units to the canonical ones and checks every value against the
//! plausibility ranges in [`ranges`]. A rejected record yields an [`InputError`] whose
//! text names the field, the value and what was expected. Parsing reads no clock, file or
//! environment.

mod canonical;
mod fhir;
mod json;
pub mod legacy;
pub mod ranges;
mod time;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::types::Reading;

pub use canonical::SCHEMA;

/// Kafka header that names the input format explicitly. It takes precedence over the
/// topic and the payload's shape.
pub const FORMAT_HEADER: &str = "cardiowatch-format";

/// Topic on which the replaced Spark system received legacy records.
pub const LEGACY_TOPIC: &str = "heart_data";

/// One raw input record as it came from Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawMessage {
    /// Topic the record was read from.
    pub topic: String,
    /// Message key bytes, if any. [`parse`] ignores it, because the host applies the key
    /// as the patient id itself.
    pub key: Option<Vec<u8>>,
    /// Message payload bytes.
    pub payload: Vec<u8>,
    /// Headers in order, each a key and an optional value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Reason a record was rejected. The cases mirror the WIT `input-error` variant one to one,
/// and the `Display` text is the complete message for logs and dead letters.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum InputError {
    /// The payload is not valid JSON or not an object.
    #[error("{0}")]
    Malformed(String),
    /// The format was not recognised or is not supported yet.
    #[error("{0}")]
    UnsupportedFormat(String),
    /// A required field is missing. The payload is the field name.
    #[error("missing field {0}: {hint}", hint = missing_field_hint(.0))]
    MissingField(String),
    /// A field has the wrong type, an unknown code or an unknown name.
    #[error("{0}")]
    InvalidField(String),
    /// A value lies outside its plausibility range.
    #[error("implausible {field} {value}: expected {min}..={max} {unit}")]
    Implausible {
        /// Field name as written in the input.
        field: String,
        /// The rejected value.
        value: f64,
        /// Smallest accepted value, inclusive.
        min: f64,
        /// Largest accepted value, inclusive.
        max: f64,
        /// Unit of the value and the range.
        unit: String,
    },
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

/// Explains a missing field from its name alone, so that the message survives a trip
/// through the WIT `missing-field(string)` case unchanged.
fn missing_field_hint(field: &str) -> String {
    if legacy::FIELDS.contains(&field) {
        return format!(
            "legacy heart_data records must carry every one of {}",
            legacy::FIELDS.join(", ")
        );
    }
    match field {
        "vitals" => "expected at least one vital sign or a profile".to_string(),
        _ => "add the field to the message".to_string(),
    }
}

/// An input format that [`parse`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Flat JSON of the replaced Spark system, see [`legacy`].
    LegacyJson,
    /// Canonical JSON of cardiowatch, described in `canonical.rs`.
    CanonicalJson,
    /// HL7 FHIR R4 vital-sign Observations, alone or in a Bundle, described in `fhir/mod.rs`.
    FhirR4,
}

impl Format {
    /// Name used in the `cardiowatch-format` header and in [`Reading::format`].
    pub fn name(self) -> &'static str {
        match self {
            Format::LegacyJson => "legacy-json",
            Format::CanonicalJson => "canonical-json",
            Format::FhirR4 => "fhir-r4",
        }
    }

    fn from_name(name: &str) -> Option<Format> {
        [Format::LegacyJson, Format::CanonicalJson, Format::FhirR4]
            .into_iter()
            .find(|format| format.name() == name)
    }
}

/// Parses and validates one record.
///
/// The format comes from the `cardiowatch-format` header when present, else from the
/// topic (`heart_data` means legacy), else from the payload's keys (`resourceType` means
/// FHIR). The returned reading carries no patient id or event time unless the payload has
/// them, because the host falls back to the Kafka key and timestamp.
///
/// # Errors
///
/// Returns an [`InputError`] for an unknown header value, a payload that is not one JSON
/// object, an unrecognised shape, a missing or invalid field, or an implausible value.
pub fn parse(message: &RawMessage) -> Result<Reading, InputError> {
    let declared = format_from_header(&message.headers)?;
    let object = json::parse_object(&message.payload)?;
    let format = match declared {
        Some(format) => format,
        None if message.topic == LEGACY_TOPIC => Format::LegacyJson,
        None => detect_by_shape(&object)?,
    };
    match format {
        Format::LegacyJson => legacy::parse(&object),
        Format::CanonicalJson => canonical::parse(&object),
        Format::FhirR4 => fhir::parse(&object),
    }
}

/// Reads the format named by the last `cardiowatch-format` header, if any.
fn format_from_header(headers: &[(String, Option<Vec<u8>>)]) -> Result<Option<Format>, InputError> {
    let Some((_, value)) = headers.iter().rev().find(|(key, _)| key == FORMAT_HEADER) else {
        return Ok(None);
    };
    let name = value.as_deref().map(String::from_utf8_lossy);
    if let Some(format) = name.as_deref().and_then(Format::from_name) {
        return Ok(Some(format));
    }
    let shown = match &name {
        Some(name) => json::render(&Value::String(name.to_string())),
        None => "null".to_string(),
    };
    Err(InputError::UnsupportedFormat(format!(
        "unsupported {FORMAT_HEADER} header {shown}: expected legacy-json, canonical-json or \
         fhir-r4"
    )))
}

/// Recognises the format from the keys of a payload that came without a header on a
/// topic other than the legacy one. Any FHIR resource is FHIR, and the FHIR parser
/// rejects resource types other than Observation and Bundle.
fn detect_by_shape(object: &Map<String, Value>) -> Result<Format, InputError> {
    let has = |key: &str| object.contains_key(key);
    if has("resourceType") {
        return Ok(Format::FhirR4);
    }
    if has("vitals") || has("profile") || has("schema") {
        return Ok(Format::CanonicalJson);
    }
    if has("ap_hi") && has("id") {
        return Ok(Format::LegacyJson);
    }
    Err(InputError::UnsupportedFormat(format!(
        "unrecognised JSON object with keys [{}]: expected a canonical reading (with vitals, \
         profile or schema), a legacy heart_data record (with id and ap_hi) or a FHIR R4 \
         Observation or Bundle (with resourceType)",
        list_keys(object)
    )))
}

/// Lists up to eight keys of `object` for an error message.
fn list_keys(object: &Map<String, Value>) -> String {
    const MAX_KEYS: usize = 8;
    let mut keys: Vec<String> = object
        .keys()
        .take(MAX_KEYS)
        .map(|key| json::render(&Value::String(key.clone())))
        .collect();
    if object.len() > MAX_KEYS {
        keys.push("…".to_string());
    }
    keys.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LEGACY_BODY: &str = r#"{"id": 7, "age": 52, "gender": 1, "height": 172,
        "weight": 81.5, "ap_hi": 135, "ap_lo": 85, "cholesterol": 2, "gluc": 1,
        "smoke": 0, "alco": 0, "active": 1}"#;

    const CANONICAL_BODY: &str = r#"{"patient_id": "p-001", "vitals": {"heart_rate_bpm": 88}}"#;

    const FHIR_OBSERVATION: &str = r#"{"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 72, "system": "http://unitsofmeasure.org", "code": "/min"}}"#;

    const FHIR_BUNDLE: &str = r#"{"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 72, "system": "http://unitsofmeasure.org", "code": "/min"}}}
        ]}"#;

    fn message(topic: &str, payload: &str) -> RawMessage {
        RawMessage {
            topic: topic.to_string(),
            payload: payload.as_bytes().to_vec(),
            ..RawMessage::default()
        }
    }

    fn with_header(mut message: RawMessage, value: Option<&str>) -> RawMessage {
        let value = value.map(|text| text.as_bytes().to_vec());
        message.headers.push((FORMAT_HEADER.to_string(), value));
        message
    }

    #[test]
    fn legacy_topic_selects_legacy() {
        let reading = parse(&message("heart_data", LEGACY_BODY)).unwrap();
        assert_eq!(reading.format, "legacy-json");
        assert_eq!(reading.patient_id.as_deref(), Some("7"));
    }

    #[test]
    fn legacy_topic_wins_over_shape() {
        let error = parse(&message("heart_data", CANONICAL_BODY)).unwrap_err();
        assert_eq!(error, InputError::MissingField("id".to_string()));
    }

    #[test]
    fn header_wins_over_topic() {
        let request = with_header(
            message("heart_data", CANONICAL_BODY),
            Some("canonical-json"),
        );
        assert_eq!(parse(&request).unwrap().format, "canonical-json");
    }

    #[test]
    fn header_selects_legacy_on_other_topic() {
        let request = with_header(message("vitals", LEGACY_BODY), Some("legacy-json"));
        assert_eq!(parse(&request).unwrap().format, "legacy-json");
    }

    #[test]
    fn last_format_header_wins() {
        let request = with_header(message("vitals", LEGACY_BODY), Some("canonical-json"));
        let request = with_header(request, Some("legacy-json"));
        assert_eq!(parse(&request).unwrap().format, "legacy-json");
    }

    #[test]
    fn other_headers_are_ignored() {
        let mut request = message("vitals", CANONICAL_BODY);
        request
            .headers
            .push(("trace-id".to_string(), Some(b"abc".to_vec())));
        request.headers.push(("empty".to_string(), None));
        assert_eq!(parse(&request).unwrap().format, "canonical-json");
    }

    #[test]
    fn unknown_header_value_is_unsupported() {
        for value in [Some("xml"), Some("Canonical-JSON"), None] {
            let request = with_header(message("vitals", CANONICAL_BODY), value);
            let error = parse(&request).unwrap_err();
            assert!(
                matches!(error, InputError::UnsupportedFormat(_)),
                "{value:?}"
            );
            let text = error.to_string();
            assert!(
                text.contains("expected legacy-json, canonical-json or fhir-r4"),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_header_is_reported_before_malformed_payload() {
        let request = with_header(message("vitals", "not json"), Some("xml"));
        let error = parse(&request).unwrap_err();
        assert!(matches!(error, InputError::UnsupportedFormat(_)), "{error}");
    }

    #[test]
    fn shape_selects_canonical() {
        for body in [
            CANONICAL_BODY,
            r#"{"profile": {"age_years": 50}}"#,
            r#"{"schema": "cardiowatch.reading/1", "vitals": {"spo2_percent": 95}}"#,
        ] {
            let reading = parse(&message("vitals", body)).unwrap();
            assert_eq!(reading.format, "canonical-json", "{body}");
        }
    }

    #[test]
    fn shape_selects_legacy() {
        let reading = parse(&message("imports", LEGACY_BODY)).unwrap();
        assert_eq!(reading.format, "legacy-json");
    }

    #[test]
    fn shape_selects_fhir() {
        for body in [FHIR_OBSERVATION, FHIR_BUNDLE] {
            let reading = parse(&message("vitals", body)).unwrap();
            assert_eq!(reading.format, "fhir-r4", "{body}");
            assert_eq!(reading.vitals.heart_rate_bpm, Some(72.0), "{body}");
        }
    }

    #[test]
    fn header_selects_fhir() {
        let request = with_header(message("imports", FHIR_OBSERVATION), Some("fhir-r4"));
        assert_eq!(parse(&request).unwrap().format, "fhir-r4");
    }

    #[test]
    fn fhir_header_requires_resource_type() {
        let request = with_header(message("vitals", CANONICAL_BODY), Some("fhir-r4"));
        let error = parse(&request).unwrap_err();
        assert_eq!(error, InputError::MissingField("resourceType".to_string()));
    }

    #[test]
    fn other_fhir_resource_is_unsupported() {
        for resource_type in ["Patient", "DiagnosticReport"] {
            let body = json!({"resourceType": resource_type, "id": "1"}).to_string();
            let error = parse(&message("vitals", &body)).unwrap_err();
            assert!(matches!(error, InputError::UnsupportedFormat(_)), "{error}");
            let text = error.to_string();
            assert!(
                text.contains(&format!("resource type \"{resource_type}\"")),
                "{text}"
            );
        }
    }

    #[test]
    fn unrecognised_shape_names_expected_keys() {
        let error = parse(&message("vitals", r#"{"hr": 80, "id": 3}"#)).unwrap_err();
        assert!(matches!(error, InputError::UnsupportedFormat(_)), "{error}");
        let text = error.to_string();
        assert!(text.contains("\"hr\", \"id\""), "{text}");
        assert!(text.contains("vitals, profile or schema"), "{text}");
        assert!(text.contains("id and ap_hi"), "{text}");
    }

    #[test]
    fn malformed_payloads_are_rejected() {
        for (topic, body) in [
            ("vitals", "not json"),
            ("vitals", "[1, 2, 3]"),
            ("vitals", ""),
            ("heart_data", "{\"id\": 1,"),
            ("heart_data", "[]"),
        ] {
            let error = parse(&message(topic, body)).unwrap_err();
            assert!(
                matches!(error, InputError::Malformed(_)),
                "{body:?}: {error}"
            );
        }
    }

    #[test]
    fn key_does_not_set_patient_id() {
        let mut request = message("vitals", r#"{"vitals": {"heart_rate_bpm": 88}}"#);
        request.key = Some(b"p-999".to_vec());
        assert_eq!(parse(&request).unwrap().patient_id, None);
    }

    #[test]
    fn missing_field_message_gives_hint() {
        let legacy = InputError::MissingField("ap_hi".to_string()).to_string();
        assert!(
            legacy.starts_with("missing field ap_hi: legacy heart_data"),
            "{legacy}"
        );
        let canonical = InputError::MissingField("vitals".to_string()).to_string();
        let expected = "missing field vitals: expected at least one vital sign or a profile";
        assert_eq!(canonical, expected);
    }

    #[test]
    fn format_names_round_trip() {
        for format in [Format::LegacyJson, Format::CanonicalJson, Format::FhirR4] {
            assert_eq!(Format::from_name(format.name()), Some(format));
        }
    }

    #[test]
    fn implausible_displays_value_range_and_unit() {
        let error = InputError::Implausible {
            field: "spo2_percent".to_string(),
            value: 101.5,
            min: 50.0,
            max: 100.0,
            unit: "%".to_string(),
        };
        assert_eq!(
            error.to_string(),
            "implausible spo2_percent 101.5: expected 50..=100 %"
        );
    }

    #[test]
    fn canonical_temperature_is_read() {
        let body = json!({"vitals": {"temperature_celsius": 38.4}}).to_string();
        let reading = parse(&message("vitals", &body)).unwrap();
        assert_eq!(reading.vitals.temperature_celsius, Some(38.4));
    }
}
