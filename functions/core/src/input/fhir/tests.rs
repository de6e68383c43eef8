//! Tests of FHIR input: the HL7 examples, a Bundle of five vitals and every rejected case.

use super::codes::{LOINC, UCUM};
use super::*;
use serde_json::json;

const HEART_RATE_EXAMPLE: &str =
    include_str!("../../../tests/fixtures/fhir/observation-example-heart-rate.json");
const BLOOD_PRESSURE_EXAMPLE: &str =
    include_str!("../../../tests/fixtures/fhir/observation-example-bloodpressure.json");
const RESPIRATORY_RATE_EXAMPLE: &str =
    include_str!("../../../tests/fixtures/fhir/observation-example-respiratory-rate.json");
const TEMPERATURE_EXAMPLE: &str =
    include_str!("../../../tests/fixtures/fhir/observation-example-body-temperature.json");
const OXYGEN_SATURATION_EXAMPLE: &str =
    include_str!("../../../tests/fixtures/fhir/observation-example-satO2.json");
const FIVE_VITALS_BUNDLE: &str =
    include_str!("../../../tests/fixtures/fhir/bundle-five-vitals.json");

/// 2026-12-04T10:15:00Z in milliseconds since the Unix epoch.
const EXAMPLE_MS: i64 = 1_796_379_300_000;

fn parse_value(value: &Value) -> Result<Reading, InputError> {
    parse(value.as_object().unwrap())
}

fn parse_text(text: &str) -> Result<Reading, InputError> {
    parse_value(&serde_json::from_str(text).unwrap())
}

/// Returns the text of an `InvalidField` error and panics on any other result.
fn invalid_text(value: &Value) -> String {
    match parse_value(value) {
        Err(InputError::InvalidField(text)) => text,
        other => panic!("expected InvalidField, found {other:?}"),
    }
}

/// Builds a final Observation of one vital sign of Patient/p-1 at 2026-12-04T10:15:00Z.
fn observation(code: &str, value: f64, unit: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p-1"},
        "effectiveDateTime": "2026-12-04T10:15:00Z",
        "valueQuantity": {"value": value, "system": UCUM, "code": unit}
    })
}

fn heart_rate(value: f64) -> Value {
    observation("8867-4", value, "/min")
}

fn without(mut resource: Value, key: &str) -> Value {
    resource.as_object_mut().unwrap().remove(key);
    resource
}

fn with_data_absent(resource: Value) -> Value {
    let mut resource = without(resource, "valueQuantity");
    resource["dataAbsentReason"] = json!({"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
        "code": "not-performed"
    }]});
    resource
}

/// Builds a blood pressure panel whose components are (LOINC code, mmHg) pairs.
fn panel(components: &[(&str, f64)]) -> Value {
    let components: Vec<Value> = components
        .iter()
        .map(|(code, value)| {
            json!({
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": value, "system": UCUM, "code": "mm[Hg]"}
            })
        })
        .collect();
    let mut panel = without(observation("85354-9", 0.0, "mm[Hg]"), "valueQuantity");
    panel["component"] = json!(components);
    panel
}

fn bundle(resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| json!({"resource": resource}))
        .collect();
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
}

#[test]
fn hl7_date_only_examples_are_rejected() {
    for (example, date) in [
        (HEART_RATE_EXAMPLE, "1999-07-02"),
        (BLOOD_PRESSURE_EXAMPLE, "2012-09-17"),
        (RESPIRATORY_RATE_EXAMPLE, "1999-07-02"),
        (TEMPERATURE_EXAMPLE, "1999-07-02"),
    ] {
        let error = parse_text(example).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, InputError::InvalidField(_)), "{text}");
        let field = format!("Observation.effectiveDateTime \"{date}\"");
        assert!(text.contains(&field), "{text}");
        assert!(text.contains("a date without a time of day"), "{text}");
    }
}

#[test]
fn hl7_examples_read_with_full_time() {
    let cases = [
        (
            HEART_RATE_EXAMPLE,
            Vitals {
                heart_rate_bpm: Some(44.0),
                ..Vitals::default()
            },
        ),
        (
            BLOOD_PRESSURE_EXAMPLE,
            Vitals {
                systolic_bp_mmhg: Some(107.0),
                diastolic_bp_mmhg: Some(60.0),
                ..Vitals::default()
            },
        ),
        (
            RESPIRATORY_RATE_EXAMPLE,
            Vitals {
                respiratory_rate_per_min: Some(26.0),
                ..Vitals::default()
            },
        ),
        (
            TEMPERATURE_EXAMPLE,
            Vitals {
                temperature_celsius: Some(36.5),
                ..Vitals::default()
            },
        ),
        (
            OXYGEN_SATURATION_EXAMPLE,
            Vitals {
                spo2_percent: Some(95.0),
                ..Vitals::default()
            },
        ),
    ];
    for (example, expected) in cases {
        let mut resource: Value = serde_json::from_str(example).unwrap();
        resource["effectiveDateTime"] = json!("2026-12-04T10:15:00Z");
        let reading = parse_value(&resource).unwrap();
        let id = &resource["id"];
        assert_eq!(reading.vitals, expected, "{id}");
        assert_eq!(reading.patient_id.as_deref(), Some("example"), "{id}");
        assert_eq!(reading.event_time_ms, Some(EXAMPLE_MS), "{id}");
        assert_eq!(reading.format, "fhir-r4", "{id}");
        assert_eq!(reading.profile, None, "{id}");
    }
}

#[test]
fn hl7_oxygen_example_reads_unchanged() {
    let reading = parse_text(OXYGEN_SATURATION_EXAMPLE).unwrap();
    let expected = chrono::DateTime::parse_from_rfc3339("2014-12-05T08:30:10Z").unwrap();
    assert_eq!(reading.event_time_ms, Some(expected.timestamp_millis()));
    assert_eq!(reading.vitals.spo2_percent, Some(95.0));
}

#[test]
fn five_vitals_bundle_reads_all() {
    let reading = parse_text(FIVE_VITALS_BUNDLE).unwrap();
    let expected = Vitals {
        heart_rate_bpm: Some(96.0),
        systolic_bp_mmhg: Some(148.0),
        diastolic_bp_mmhg: Some(92.0),
        respiratory_rate_per_min: Some(21.0),
        spo2_percent: Some(94.0),
        temperature_celsius: Some(38.2),
        supplemental_oxygen: None,
        consciousness: None,
    };
    assert_eq!(reading.vitals, expected);
    assert_eq!(reading.patient_id.as_deref(), Some("p-00042"));
    assert_eq!(reading.format, "fhir-r4");
}

#[test]
fn bundle_time_is_latest_observation() {
    let reading = parse_text(FIVE_VITALS_BUNDLE).unwrap();
    assert_eq!(
        reading.event_time_ms,
        Some(EXAMPLE_MS),
        "the blood pressure at 11:15:00+01:00 is the latest"
    );
    let mut early = observation("9279-1", 18.0, "/min");
    early["effectiveDateTime"] = json!("2026-12-04T10:00:00Z");
    let untimed = without(observation("2708-6", 97.0, "%"), "effectiveDateTime");
    for resources in [
        vec![heart_rate(80.0), early.clone(), untimed.clone()],
        vec![untimed, early, heart_rate(80.0)],
    ] {
        let reading = parse_value(&bundle(resources)).unwrap();
        assert_eq!(reading.event_time_ms, Some(EXAMPLE_MS));
    }
}

#[test]
fn fahrenheit_is_converted_to_celsius() {
    for (fahrenheit, celsius) in [(98.6, 37.0), (100.4, 38.0), (77.0, 25.0), (113.0, 45.0)] {
        let resource = observation("8310-5", fahrenheit, "[degF]");
        let reading = parse_value(&resource).unwrap();
        let converted = reading.vitals.temperature_celsius.unwrap();
        assert!(
            (converted - celsius).abs() < 1e-9,
            "{fahrenheit} °F gave {converted} °C"
        );
    }
}

#[test]
fn fahrenheit_range_is_checked_in_fahrenheit() {
    let error = parse_value(&observation("8310-5", 120.0, "[degF]")).unwrap_err();
    let expected = InputError::Implausible {
        field: "Observation.valueQuantity (8310-5 body temperature)".to_string(),
        value: 120.0,
        min: 77.0,
        max: 113.0,
        unit: "°F".to_string(),
    };
    assert_eq!(error, expected);
}

#[test]
fn annotated_rate_units_are_accepted() {
    for (code, unit) in [
        ("8867-4", "/min"),
        ("8867-4", "{beats}/min"),
        ("9279-1", "/min"),
        ("9279-1", "{breaths}/min"),
    ] {
        let reading = parse_value(&observation(code, 30.0, unit)).unwrap();
        let vitals = reading.vitals;
        let value = vitals.heart_rate_bpm.or(vitals.respiratory_rate_per_min);
        assert_eq!(value, Some(30.0), "{code} {unit}");
    }
}

#[test]
fn wrong_unit_names_code_and_unit() {
    for (code, unit) in [
        ("8867-4", "mm[Hg]"),
        ("8867-4", "{breaths}/min"),
        ("9279-1", "{beats}/min"),
        ("8480-6", "kPa"),
        ("8462-4", "mmHg"),
        ("2708-6", "1"),
        ("59408-5", "/min"),
        ("8310-5", "K"),
        ("8310-5", "degF"),
    ] {
        let text = invalid_text(&observation(code, 50.0, unit));
        assert!(text.contains(code), "{text}");
        assert!(text.contains(&format!("unit \"{unit}\"")), "{text}");
    }
}

#[test]
fn missing_unit_code_names_display_unit() {
    let mut resource = heart_rate(80.0);
    resource["valueQuantity"] = json!({"value": 80, "unit": "bpm"});
    let text = invalid_text(&resource);
    let expected = "missing unit code in Observation.valueQuantity (8867-4 heart rate) with \
                    unit \"bpm\": expected UCUM code /min or {beats}/min";
    assert_eq!(text, expected);
}

#[test]
fn unit_system_must_be_ucum() {
    for system in [json!("http://example.org/units"), Value::Null] {
        let mut resource = heart_rate(80.0);
        resource["valueQuantity"]["system"] = system.clone();
        let text = invalid_text(&resource);
        assert!(text.contains("8867-4"), "{text}");
        assert!(text.contains("unit \"/min\""), "{text}");
        assert!(text.contains(UCUM), "{text}");
    }
}

#[test]
fn implausible_value_names_fhir_path() {
    let error = parse_value(&heart_rate(412.0)).unwrap_err();
    let expected = "implausible Observation.valueQuantity (8867-4 heart rate) 412: expected 20..=300 \
         beats/min";
    assert_eq!(error.to_string(), expected);
    let error = parse_value(&bundle(vec![
        heart_rate(80.0),
        observation("2708-6", 40.0, "%"),
    ]))
    .unwrap_err();
    let InputError::Implausible { field, .. } = error else {
        panic!("expected Implausible, found {error:?}");
    };
    assert_eq!(
        field,
        "Bundle.entry[1].resource.valueQuantity (2708-6 oxygen saturation)"
    );
}

#[test]
fn range_bounds_match_canonical() {
    let cases = [
        ("8867-4", "/min", ranges::HEART_RATE_BPM),
        ("8480-6", "mm[Hg]", ranges::SYSTOLIC_BP_MMHG),
        ("8462-4", "mm[Hg]", ranges::DIASTOLIC_BP_MMHG),
        ("9279-1", "/min", ranges::RESPIRATORY_RATE_PER_MIN),
        ("2708-6", "%", ranges::SPO2_PERCENT),
        ("59408-5", "%", ranges::SPO2_PERCENT),
        ("8310-5", "Cel", ranges::TEMPERATURE_CELSIUS),
    ];
    for (code, unit, range) in cases {
        for inside in [range.min, range.max] {
            let result = parse_value(&observation(code, inside, unit));
            assert!(result.is_ok(), "{code} {inside}: {result:?}");
        }
        for outside in [range.min - 0.001, range.max + 0.001] {
            let error = parse_value(&observation(code, outside, unit)).unwrap_err();
            assert!(
                matches!(error, InputError::Implausible { .. }),
                "{code} {outside}: {error}"
            );
        }
    }
}

#[test]
fn mixed_patients_are_rejected() {
    let mut other = observation("9279-1", 18.0, "/min");
    other["subject"]["reference"] = json!("Patient/p-2");
    let text = invalid_text(&bundle(vec![heart_rate(80.0), other]));
    let expected = "invalid subject in Bundle.entry[1].resource: it names patient \"p-2\" but \
                    Bundle.entry[0].resource names patient \"p-1\", and every Observation of a \
                    Bundle must name the same patient";
    assert_eq!(text, expected);
}

#[test]
fn patient_named_once_only_is_rejected() {
    let unnamed = without(observation("9279-1", 18.0, "/min"), "subject");
    for resources in [
        vec![heart_rate(80.0), unnamed.clone()],
        vec![unnamed, heart_rate(80.0)],
    ] {
        let text = invalid_text(&bundle(resources));
        assert!(text.contains("no patient"), "{text}");
        assert!(text.contains("patient \"p-1\""), "{text}");
    }
}

#[test]
fn unknown_code_patient_is_checked() {
    let mut weight = observation("29463-7", 80.0, "kg");
    weight["subject"]["reference"] = json!("Patient/p-2");
    let text = invalid_text(&bundle(vec![heart_rate(80.0), weight]));
    assert!(text.contains("patient \"p-2\""), "{text}");
}

#[test]
fn record_without_subject_has_no_patient() {
    let reading = parse_value(&without(heart_rate(80.0), "subject")).unwrap();
    assert_eq!(reading.patient_id, None);
    let two = bundle(vec![
        without(heart_rate(80.0), "subject"),
        without(observation("9279-1", 18.0, "/min"), "subject"),
    ]);
    assert_eq!(parse_value(&two).unwrap().patient_id, None);
}

#[test]
fn patient_references_give_the_id() {
    for (reference, id) in [
        ("Patient/123", "123"),
        ("Patient/p-00042", "p-00042"),
        ("Patient/123/_history/4", "123"),
        ("https://fhir.hospital.example/r4/Patient/123", "123"),
        (
            "https://fhir.hospital.example/r4/Patient/123/_history/4",
            "123",
        ),
    ] {
        let mut resource = heart_rate(80.0);
        resource["subject"]["reference"] = json!(reference);
        let reading = parse_value(&resource).unwrap();
        assert_eq!(reading.patient_id.as_deref(), Some(id), "{reference}");
    }
}

#[test]
fn non_patient_references_are_rejected() {
    for reference in [
        json!("Group/7"),
        json!("Device/monitor-3"),
        json!("urn:uuid:6f1c2a40-0d5e"),
        json!("#patient"),
        json!("123"),
        json!("Patient/"),
        json!("Patient/has space"),
        json!(123),
    ] {
        let mut resource = heart_rate(80.0);
        resource["subject"]["reference"] = reference.clone();
        let text = invalid_text(&resource);
        let field = format!("invalid Observation.subject.reference {reference}");
        assert!(text.starts_with(&field), "{text}");
        assert!(text.contains("Patient/123"), "{text}");
    }
}

#[test]
fn subject_without_reference_is_rejected() {
    let mut resource = heart_rate(80.0);
    resource["subject"] = json!({"identifier": {"system": "urn:oid:1.2.3", "value": "4711"}});
    let text = invalid_text(&resource);
    assert!(
        text.starts_with("missing Observation.subject.reference"),
        "{text}"
    );
}

#[test]
fn scored_statuses_are_accepted() {
    for status in ["final", "amended", "corrected", "preliminary"] {
        let mut resource = heart_rate(80.0);
        resource["status"] = json!(status);
        let reading = parse_value(&resource).unwrap();
        assert_eq!(reading.vitals.heart_rate_bpm, Some(80.0), "{status}");
    }
}

#[test]
fn unusable_statuses_are_rejected() {
    for status in [
        "entered-in-error",
        "cancelled",
        "registered",
        "unknown",
        "Final",
    ] {
        let mut resource = heart_rate(80.0);
        resource["status"] = json!(status);
        let text = invalid_text(&resource);
        let field = format!("invalid Observation.status \"{status}\": expected final,");
        assert!(text.starts_with(&field), "{text}");
    }
}

#[test]
fn status_is_checked_before_value() {
    let mut resource = heart_rate(412.0);
    resource["status"] = json!("entered-in-error");
    let text = invalid_text(&resource);
    assert!(text.contains("\"entered-in-error\""), "{text}");
}

#[test]
fn missing_status_is_rejected() {
    let error = parse_value(&without(heart_rate(80.0), "status")).unwrap_err();
    assert_eq!(
        error,
        InputError::MissingField("Observation.status".to_string())
    );
}

#[test]
fn data_absent_reason_leaves_vital_missing() {
    let reading = parse_value(&with_data_absent(heart_rate(80.0))).unwrap();
    assert!(reading.vitals.is_empty());
    assert_eq!(reading.event_time_ms, Some(EXAMPLE_MS));
    let mixed = bundle(vec![
        with_data_absent(heart_rate(80.0)),
        observation("9279-1", 18.0, "/min"),
    ]);
    let vitals = parse_value(&mixed).unwrap().vitals;
    assert_eq!(vitals.heart_rate_bpm, None);
    assert_eq!(vitals.respiratory_rate_per_min, Some(18.0));
}

#[test]
fn component_data_absent_reason() {
    let mut resource = panel(&[("8480-6", 120.0), ("8462-4", 80.0)]);
    resource["component"][1] = with_data_absent(resource["component"][1].clone());
    let vitals = parse_value(&resource).unwrap().vitals;
    assert_eq!(vitals.systolic_bp_mmhg, Some(120.0));
    assert_eq!(vitals.diastolic_bp_mmhg, None);
}

#[test]
fn absent_panel_leaves_pressures_missing() {
    let resource = with_data_absent(panel(&[]));
    let reading = parse_value(&resource).unwrap();
    assert!(reading.vitals.is_empty());
}

#[test]
fn panel_without_pressures_is_rejected() {
    for resource in [panel(&[]), panel(&[("8478-0", 93.0)])] {
        let text = invalid_text(&resource);
        let expected = "invalid Observation (85354-9 blood pressure panel): expected a \
                        component with code 8480-6 or 8462-4, or a dataAbsentReason";
        assert_eq!(text, expected);
    }
}

#[test]
fn value_with_absent_reason_is_rejected() {
    let mut resource = with_data_absent(heart_rate(80.0));
    resource["valueQuantity"] = heart_rate(80.0)["valueQuantity"].clone();
    let text = invalid_text(&resource);
    assert!(
        text.contains("both valueQuantity and dataAbsentReason"),
        "{text}"
    );
}

#[test]
fn observation_without_value_is_rejected() {
    let text = invalid_text(&without(heart_rate(80.0), "valueQuantity"));
    let expected = "invalid Observation (8867-4 heart rate): it has no value, expected \
                    valueQuantity or dataAbsentReason";
    assert_eq!(text, expected);
    let mut resource = without(heart_rate(80.0), "valueQuantity");
    resource["valueString"] = json!("80 bpm");
    let text = invalid_text(&resource);
    assert!(
        text.contains("it has valueString, expected valueQuantity"),
        "{text}"
    );
}

#[test]
fn partial_dates_are_rejected() {
    let cases = [
        ("2012", "a date without a time of day"),
        ("2012-09", "a date without a time of day"),
        ("2012-09-17", "a date without a time of day"),
        ("2012-09-17T10:15:00", "a time without a UTC offset"),
        ("2012-09-17T10:15:00.250", "a time without a UTC offset"),
    ];
    for (date, reason) in cases {
        let mut resource = heart_rate(80.0);
        resource["effectiveDateTime"] = json!(date);
        let text = invalid_text(&resource);
        let field = format!("invalid Observation.effectiveDateTime \"{date}\": {reason}");
        assert!(text.starts_with(&field), "{text}");
    }
}

#[test]
fn time_without_seconds_is_rejected() {
    let mut resource = heart_rate(80.0);
    resource["effectiveDateTime"] = json!("2026-12-04T10:15Z");
    let text = invalid_text(&resource);
    let field = "invalid Observation.effectiveDateTime \"2026-12-04T10:15Z\"";
    assert!(text.starts_with(field), "{text}");
}

#[test]
fn partial_period_start_is_rejected() {
    let mut resource = without(heart_rate(80.0), "effectiveDateTime");
    resource["effectivePeriod"] = json!({"start": "2026-12-04"});
    let text = invalid_text(&resource);
    let field = "invalid Observation.effectivePeriod.start \"2026-12-04\"";
    assert!(text.starts_with(field), "{text}");
}

#[test]
fn instant_and_period_start_are_read() {
    let timed = without(heart_rate(80.0), "effectiveDateTime");
    let mut instant = timed.clone();
    instant["effectiveInstant"] = json!("2026-12-04T11:15:00+01:00");
    let mut period = timed;
    period["effectivePeriod"] =
        json!({"start": "2026-12-04T10:15:00Z", "end": "2026-12-04T10:20:00Z"});
    for resource in [instant, period] {
        let reading = parse_value(&resource).unwrap();
        assert_eq!(reading.event_time_ms, Some(EXAMPLE_MS), "{resource}");
    }
}

#[test]
fn unreadable_effective_times_are_rejected() {
    let base = without(heart_rate(80.0), "effectiveDateTime");
    let mut two = base.clone();
    two["effectiveDateTime"] = json!("2026-12-04T10:15:00Z");
    two["effectiveInstant"] = json!("2026-12-04T10:15:00Z");
    let text = invalid_text(&two);
    assert!(
        text.contains("effectiveDateTime and effectiveInstant"),
        "{text}"
    );

    let mut timing = base.clone();
    timing["effectiveTiming"] = json!({"event": ["2026-12-04T10:15:00Z"]});
    let text = invalid_text(&timing);
    assert!(
        text.starts_with("unsupported Observation.effectiveTiming"),
        "{text}"
    );

    let mut open = base;
    open["effectivePeriod"] = json!({"end": "2026-12-04T10:15:00Z"});
    let error = parse_value(&open).unwrap_err();
    let expected = InputError::MissingField("Observation.effectivePeriod.start".to_string());
    assert_eq!(error, expected);
}

#[test]
fn missing_effective_time_gives_none() {
    let reading = parse_value(&without(heart_rate(80.0), "effectiveDateTime")).unwrap();
    assert_eq!(reading.event_time_ms, None);
}

#[test]
fn time_before_1970_is_implausible() {
    let mut resource = heart_rate(80.0);
    resource["effectiveDateTime"] = json!("1969-07-20T20:17:40Z");
    let error = parse_value(&resource).unwrap_err();
    let InputError::Implausible { field, .. } = error else {
        panic!("expected Implausible, found {error:?}");
    };
    assert_eq!(field, "Observation.effectiveDateTime");
}

#[test]
fn unknown_codes_are_ignored() {
    let weight = observation("29463-7", 80.0, "kg");
    let mut snomed_only = heart_rate(70.0);
    snomed_only["code"] = json!({"coding": [{"system": "http://snomed.info/sct",
        "code": "364075005"}]});
    let mut withdrawn = observation("8302-2", 170.0, "cm");
    withdrawn["status"] = json!("entered-in-error");
    let mut other_system = heart_rate(70.0);
    other_system["code"]["coding"][0]["system"] = json!("http://example.org/codes");
    let resources = vec![
        weight,
        snomed_only,
        heart_rate(80.0),
        withdrawn,
        other_system,
    ];
    let reading = parse_value(&bundle(resources)).unwrap();
    let expected = Vitals {
        heart_rate_bpm: Some(80.0),
        ..Vitals::default()
    };
    assert_eq!(reading.vitals, expected);
}

#[test]
fn unknown_component_codes_are_ignored() {
    let resource = panel(&[("8480-6", 120.0), ("8478-0", 93.0), ("8462-4", 80.0)]);
    let vitals = parse_value(&resource).unwrap().vitals;
    assert_eq!(vitals.systolic_bp_mmhg, Some(120.0));
    assert_eq!(vitals.diastolic_bp_mmhg, Some(80.0));
}

#[test]
fn record_without_known_code_is_rejected() {
    let weight = observation("29463-7", 80.0, "kg");
    let patient = json!({"resourceType": "Patient", "id": "p-1"});
    let cases = [
        (weight.clone(), "its Observation has no LOINC code"),
        (
            bundle(vec![weight.clone(), weight]),
            "none of its 2 Observations",
        ),
        (bundle(vec![patient]), "the Bundle has no Observation"),
    ];
    for (record, found) in cases {
        let text = invalid_text(&record);
        let start = format!("no vital sign in the FHIR record: {found}");
        assert!(text.starts_with(&start), "{text}");
        assert!(text.contains("8867-4 (heart rate)"), "{text}");
        assert!(text.contains("85354-9 (blood pressure panel)"), "{text}");
    }
}

#[test]
fn other_bundle_resources_are_ignored() {
    let patient = json!({"resourceType": "Patient", "id": "p-1", "gender": "female"});
    let device = json!({"resourceType": "Device", "id": "monitor-3"});
    let reading = parse_value(&bundle(vec![patient, heart_rate(80.0), device])).unwrap();
    assert_eq!(reading.vitals.heart_rate_bpm, Some(80.0));
}

#[test]
fn duplicate_vital_is_rejected() {
    let text = invalid_text(&bundle(vec![heart_rate(80.0), heart_rate(82.0)]));
    let expected = "duplicate heart rate in Bundle.entry[1].resource.valueQuantity (8867-4 \
                    heart rate): Bundle.entry[0].resource.valueQuantity (8867-4 heart rate) \
                    already gives it, and a record carries one value per vital sign";
    assert_eq!(text, expected);
    let systolic = observation("8480-6", 125.0, "mm[Hg]");
    let both = bundle(vec![
        panel(&[("8480-6", 120.0), ("8462-4", 80.0)]),
        systolic,
    ]);
    let text = invalid_text(&both);
    assert!(
        text.starts_with("duplicate systolic blood pressure"),
        "{text}"
    );
}

#[test]
fn standalone_pressures_are_read() {
    let resources = vec![
        observation("8480-6", 120.0, "mm[Hg]"),
        observation("8462-4", 80.0, "mm[Hg]"),
    ];
    let vitals = parse_value(&bundle(resources)).unwrap().vitals;
    assert_eq!(vitals.systolic_bp_mmhg, Some(120.0));
    assert_eq!(vitals.diastolic_bp_mmhg, Some(80.0));
}

#[test]
fn diastolic_above_systolic_is_rejected() {
    let text = invalid_text(&panel(&[("8480-6", 80.0), ("8462-4", 120.0)]));
    let diastolic = "diastolic Observation.component[1].valueQuantity (8462-4 diastolic \
                     blood pressure) 120";
    assert!(text.contains(diastolic), "{text}");
    let systolic = "systolic Observation.component[0].valueQuantity (8480-6 systolic blood \
                    pressure) 80";
    assert!(text.contains(systolic), "{text}");
}

#[test]
fn codes_of_two_vitals_are_rejected() {
    let mut resource = heart_rate(80.0);
    resource["code"]["coding"] = json!([
        {"system": LOINC, "code": "8867-4"},
        {"system": LOINC, "code": "9279-1"}
    ]);
    let text = invalid_text(&resource);
    assert!(
        text.contains("8867-4 (heart rate) and 9279-1 (respiratory rate)"),
        "{text}"
    );
}

#[test]
fn comparator_is_rejected() {
    let mut resource = heart_rate(300.0);
    resource["valueQuantity"]["comparator"] = json!(">");
    let text = invalid_text(&resource);
    assert!(text.starts_with("invalid comparator \">\""), "{text}");
}

#[test]
fn non_numeric_value_is_rejected() {
    let mut resource = heart_rate(80.0);
    resource["valueQuantity"]["value"] = json!("80");
    let text = invalid_text(&resource);
    let expected = "invalid value in Observation.valueQuantity (8867-4 heart rate) \"80\": \
                    expected a number in /min";
    assert_eq!(text, expected);
    resource["valueQuantity"]
        .as_object_mut()
        .unwrap()
        .remove("value");
    let text = invalid_text(&resource);
    assert!(
        text.starts_with("missing value in Observation.valueQuantity"),
        "{text}"
    );
}

#[test]
fn modifier_extension_is_rejected() {
    let extension = json!([{"url": "http://example.org/not-measured-on-patient",
        "valueBoolean": true}]);
    let mut resource = heart_rate(80.0);
    resource["modifierExtension"] = extension.clone();
    let text = invalid_text(&resource);
    assert!(
        text.starts_with("unsupported Observation.modifierExtension"),
        "{text}"
    );
    let mut resource = panel(&[("8480-6", 120.0), ("8462-4", 80.0)]);
    resource["component"][0]["modifierExtension"] = extension;
    let text = invalid_text(&resource);
    let field = "unsupported Observation.component[0].modifierExtension";
    assert!(text.starts_with(field), "{text}");
}

#[test]
fn missing_code_is_rejected() {
    let error = parse_value(&without(heart_rate(80.0), "code")).unwrap_err();
    assert_eq!(
        error,
        InputError::MissingField("Observation.code".to_string())
    );
}

#[test]
fn bundle_structure_is_checked() {
    let missing = |field: &str| InputError::MissingField(field.to_string());
    let cases = [
        (json!({"resourceType": "Bundle"}), missing("Bundle.entry")),
        (
            json!({"resourceType": "Bundle", "entry": []}),
            missing("Bundle.entry"),
        ),
        (
            json!({"resourceType": "Bundle", "entry": [{"fullUrl": "urn:uuid:1"}]}),
            missing("Bundle.entry[0].resource"),
        ),
        (
            json!({"resourceType": "Bundle", "entry": [{"resource": {"id": "1"}}]}),
            missing("Bundle.entry[0].resource.resourceType"),
        ),
    ];
    for (record, expected) in cases {
        assert_eq!(parse_value(&record).unwrap_err(), expected, "{record}");
    }
    let text = invalid_text(&json!({"resourceType": "Bundle", "entry": {"resource": {}}}));
    assert!(text.starts_with("invalid Bundle.entry {"), "{text}");
}
