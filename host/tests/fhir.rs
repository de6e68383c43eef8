//! FHIR R4 input through the real components and pipeline: a Bundle of five vitals scores
//! as its canonical equivalent, and an Observation entered in error becomes a dead letter.

mod common;

use cardiowatch::config::ExplainMode;
use cardiowatch::pipeline::output::{PredictionRecord, Status};
use cardiowatch::pipeline::{
    DeadLetter, DeadLetterKind, InputRecord, Outcome, Pipeline, ProfileOutcome,
};
use serde_json::{Value, json};

/// Five vitals of Patient/p-00042, the latest taken at 2026-12-04T10:15:00Z.
const FIVE_VITALS_BUNDLE: &str =
    include_str!("../../functions/core/tests/fixtures/fhir/bundle-five-vitals.json");

const HOSPITAL: &str = "st-marys";
const PATIENT: &str = "p-00042";

/// 2026-12-04T10:15:00Z in milliseconds since the Unix epoch.
const BUNDLE_TIME_MS: i64 = 1_796_379_300_000;

/// Kafka timestamp of every record, five minutes before the Bundle's latest Observation,
/// so that a prediction at [`BUNDLE_TIME_MS`] shows the body's time was used.
const KAFKA_TIMESTAMP_MS: i64 = BUNDLE_TIME_MS - 300_000;

fn record(topic: &str, key: Option<&str>, payload: &[u8]) -> InputRecord {
    InputRecord {
        topic: topic.into(),
        key: key.map(|key| key.as_bytes().to_vec()),
        payload: payload.to_vec(),
        headers: vec![(
            "hospital-id".to_string(),
            Some(HOSPITAL.as_bytes().to_vec()),
        )],
        timestamp_ms: Some(KAFKA_TIMESTAMP_MS),
        ..InputRecord::default()
    }
}

/// Builds a pipeline that explains every prediction and has stored the profile of
/// [`PATIENT`], sent as a canonical record on the patients topic.
fn pipeline_with_profile() -> Pipeline {
    let mut pipeline = common::pipeline_with(|config| config.scoring.explain = ExplainMode::All);
    let profile = json!({"profile": {"age_years": 63, "sex": "female", "height_cm": 164,
        "weight_kg": 71.5, "cholesterol_category": 2, "glucose_category": 1, "smoker": false,
        "alcohol": false, "physically_active": true}});
    let payload = profile.to_string();
    let outcome = pipeline.apply_profile(&record("patients", Some(PATIENT), payload.as_bytes()));
    assert_eq!(outcome, ProfileOutcome::Stored);
    pipeline
}

/// Builds the canonical message with the vitals and time of the Bundle.
fn canonical_equivalent() -> Value {
    json!({
        "patient_id": PATIENT,
        "time": "2026-12-04T10:15:00Z",
        "vitals": {
            "heart_rate_bpm": 96, "systolic_bp_mmhg": 148, "diastolic_bp_mmhg": 92,
            "respiratory_rate_per_min": 21, "spo2_percent": 94, "temperature_celsius": 38.2
        }
    })
}

fn scored(outcome: Outcome) -> (PredictionRecord, usize) {
    match outcome {
        Outcome::Scored {
            prediction, alerts, ..
        } => (*prediction, alerts.len()),
        Outcome::DeadLetter(dead) => panic!("unexpected dead letter: {}", dead.reason),
    }
}

fn dead(outcome: Outcome) -> DeadLetter {
    match outcome {
        Outcome::DeadLetter(dead) => dead,
        Outcome::Scored { .. } => panic!("expected a dead letter"),
    }
}

#[test]
fn bundle_scores_as_canonical_message() {
    let bundle = record("vitals", None, FIVE_VITALS_BUNDLE.as_bytes());
    let (from_fhir, fhir_alerts) = scored(pipeline_with_profile().process(&bundle));
    let canonical = canonical_equivalent().to_string();
    let canonical = record("vitals", None, canonical.as_bytes());
    let (from_canonical, canonical_alerts) = scored(pipeline_with_profile().process(&canonical));

    assert_eq!(from_fhir.source.format.as_deref(), Some("fhir-r4"));
    assert_eq!(
        from_canonical.source.format.as_deref(),
        Some("canonical-json")
    );
    assert_eq!(from_fhir.patient_id, PATIENT, "from subject.reference");
    assert_eq!(
        from_fhir.event_time_ms, BUNDLE_TIME_MS,
        "latest Observation"
    );
    assert_eq!(from_fhir.status, Status::Scored, "the profile is joined");
    assert_eq!(from_fhir.vitals, from_canonical.vitals);

    let fhir_model = from_fhir.model.unwrap();
    let canonical_model = from_canonical.model.unwrap();
    assert_eq!(fhir_model.probability, canonical_model.probability);
    assert_eq!(fhir_model.contributions, canonical_model.contributions);

    assert_eq!(from_fhir.news2, from_canonical.news2);
    assert_eq!(
        from_fhir.news2.total, 5,
        "pulse 1, respiration 2, SpO2 1, temperature 1"
    );
    assert_eq!(from_fhir.news2.risk, "medium");
    assert_eq!(fhir_alerts, canonical_alerts);
}

#[test]
fn entered_in_error_becomes_dead_letter() {
    let mut pipeline = pipeline_with_profile();
    let bundle: Value = serde_json::from_str(FIVE_VITALS_BUNDLE).unwrap();
    let mut observation = bundle["entry"][0]["resource"].clone();
    observation["status"] = json!("entered-in-error");
    let payload = observation.to_string();

    let dead = dead(pipeline.process(&record("vitals", None, payload.as_bytes())));
    assert_eq!(dead.kind, DeadLetterKind::InvalidInput);
    assert_eq!(dead.hospital.as_deref(), Some(HOSPITAL));
    let expected = "invalid Observation.status \"entered-in-error\": expected final, amended, \
                    corrected or preliminary";
    assert!(dead.reason.starts_with(expected), "{}", dead.reason);
}

#[test]
fn entered_in_error_bundle_is_rejected() {
    let mut pipeline = pipeline_with_profile();
    let mut bundle: Value = serde_json::from_str(FIVE_VITALS_BUNDLE).unwrap();
    bundle["entry"][3]["resource"]["status"] = json!("entered-in-error");
    let payload = bundle.to_string();

    let dead = dead(pipeline.process(&record("vitals", None, payload.as_bytes())));
    assert_eq!(dead.kind, DeadLetterKind::InvalidInput);
    let field = "invalid Bundle.entry[3].resource.status \"entered-in-error\"";
    assert!(dead.reason.starts_with(field), "{}", dead.reason);
}
