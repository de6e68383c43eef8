//! The pipeline through the real components: formats, units, routing, dead letters,
//! NEWS2-only predictions, late readings and explanation on alert.

mod common;

use cardiowatch::config::ExplainMode;
use cardiowatch::pipeline::output::{PredictionRecord, Status};
use cardiowatch::pipeline::{DeadLetterKind, InputRecord, Outcome, Pipeline, ProfileOutcome};
use serde_json::{Value, json};

const LEGACY: &str = r#"{"id": 7, "age": 55, "gender": 1, "height": 170, "weight": 80,
    "ap_hi": 140, "ap_lo": 90, "cholesterol": 2, "gluc": 1, "smoke": 0, "alco": 0, "active": 1}"#;

fn record(topic: &str, hospital: Option<&str>, key: Option<&str>, payload: Value) -> InputRecord {
    InputRecord {
        topic: topic.into(),
        key: key.map(|k| k.as_bytes().to_vec()),
        payload: payload.to_string().into_bytes(),
        headers: hospital
            .map(|h| vec![("hospital-id".to_string(), Some(h.as_bytes().to_vec()))])
            .unwrap_or_default(),
        timestamp_ms: Some(1_796_379_300_000),
        ..InputRecord::default()
    }
}

fn canonical_equivalent() -> Value {
    json!({
        "patient_id": "7",
        "vitals": {"systolic_bp_mmhg": 140, "diastolic_bp_mmhg": 90},
        "profile": {"age_years": 55, "sex": "male", "height_cm": 170, "weight_kg": 80,
            "cholesterol_category": 2, "glucose_category": 1, "smoker": false,
            "alcohol": false, "physically_active": true}
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

fn dead(outcome: Outcome) -> cardiowatch::pipeline::DeadLetter {
    match outcome {
        Outcome::DeadLetter(dead) => dead,
        Outcome::Scored { .. } => panic!("expected a dead letter"),
    }
}

fn explain_all() -> Pipeline {
    common::pipeline_with(|config| config.scoring.explain = ExplainMode::All)
}

#[test]
fn legacy_and_canonical_score_the_same() {
    let mut pipeline = explain_all();
    let legacy: Value = serde_json::from_str(LEGACY).unwrap();
    let (from_legacy, _) = scored(pipeline.process(&record("heart_data", None, None, legacy)));
    let mut other = explain_all();
    let canonical = record("vitals", Some("legacy"), None, canonical_equivalent());
    let (from_canonical, _) = scored(other.process(&canonical));

    assert_eq!(from_legacy.hospital, "legacy");
    assert_eq!(from_legacy.source.format.as_deref(), Some("legacy-json"));
    assert_eq!(
        from_canonical.source.format.as_deref(),
        Some("canonical-json")
    );
    let legacy_model = from_legacy.model.unwrap();
    let canonical_model = from_canonical.model.unwrap();
    assert_eq!(legacy_model.probability, canonical_model.probability);

    let value_of = |name: &str| {
        legacy_model
            .contributions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.feature == name)
            .unwrap()
            .value
    };
    assert_eq!(value_of("age_years"), Some(55.0), "age must stay in years");
    assert_eq!(value_of("sex_male"), Some(1.0), "legacy gender 1 is male");
    let bmi = value_of("bmi").unwrap();
    assert!((bmi - 80.0 / 1.7f64.powi(2)).abs() < 1e-9, "bmi {bmi}");
}

#[test]
fn legacy_female_maps_to_sex_male_zero() {
    let mut pipeline = explain_all();
    let mut legacy: Value = serde_json::from_str(LEGACY).unwrap();
    legacy["gender"] = json!(0);
    let (prediction, _) = scored(pipeline.process(&record("heart_data", None, None, legacy)));
    let contributions = prediction.model.unwrap().contributions.unwrap();
    let sex = contributions
        .iter()
        .find(|c| c.feature == "sex_male")
        .unwrap();
    assert_eq!(sex.value, Some(0.0));
}

#[test]
fn implausible_value_becomes_dead_letter_naming_field() {
    let mut pipeline = common::pipeline();
    let payload = json!({"patient_id": "p1", "vitals": {"heart_rate_bpm": 412}});
    let dead = dead(pipeline.process(&record("vitals", Some("st-marys"), None, payload)));
    assert_eq!(dead.kind, DeadLetterKind::InvalidInput);
    assert!(dead.reason.contains("heart_rate_bpm"), "{}", dead.reason);
    assert!(dead.reason.contains("412"), "{}", dead.reason);
    assert_eq!(dead.hospital.as_deref(), Some("st-marys"));
}

#[test]
fn malformed_json_becomes_dead_letter() {
    let mut pipeline = common::pipeline();
    let mut input = record("vitals", Some("st-marys"), Some("p1"), json!(null));
    input.payload = b"{not json".to_vec();
    let dead = dead(pipeline.process(&input));
    assert_eq!(dead.kind, DeadLetterKind::InvalidInput);
}

#[test]
fn unknown_hospital_lists_known_ones() {
    let mut pipeline = common::pipeline();
    let payload = json!({"patient_id": "p1", "vitals": {"heart_rate_bpm": 80}});
    let dead = dead(pipeline.process(&record("vitals", Some("nowhere"), None, payload)));
    assert_eq!(dead.kind, DeadLetterKind::UnknownHospital);
    assert!(dead.reason.contains("\"nowhere\""), "{}", dead.reason);
    assert!(dead.reason.contains("st-marys"), "{}", dead.reason);
}

#[test]
fn missing_hospital_header_on_vitals_topic_is_rejected() {
    let mut pipeline = common::pipeline();
    let payload = json!({"patient_id": "p1", "vitals": {"heart_rate_bpm": 80}});
    let dead = dead(pipeline.process(&record("vitals", None, None, payload)));
    assert_eq!(dead.kind, DeadLetterKind::UnknownHospital);
    assert!(dead.reason.contains("hospital-id"), "{}", dead.reason);
}

#[test]
fn missing_patient_id_is_rejected() {
    let mut pipeline = common::pipeline();
    let payload = json!({"vitals": {"heart_rate_bpm": 80}});
    let dead = dead(pipeline.process(&record("vitals", Some("st-marys"), None, payload)));
    assert!(
        dead.reason.contains("missing patient id"),
        "{}",
        dead.reason
    );
}

#[test]
fn reading_without_profile_gets_news2_only() {
    let mut pipeline = common::pipeline();
    let payload = json!({"vitals": {"heart_rate_bpm": 135, "respiratory_rate_per_min": 26,
        "spo2_percent": 90, "systolic_bp_mmhg": 88, "temperature_celsius": 39.5}});
    let (prediction, alerts) =
        scored(pipeline.process(&record("vitals", Some("st-marys"), Some("p9"), payload)));
    assert_eq!(prediction.status, Status::News2Only);
    assert!(prediction.model.is_none());
    assert!(prediction.status_reason.unwrap().contains("no profile"));
    assert!(
        prediction.news2.total >= 7,
        "news2 {}",
        prediction.news2.total
    );
    assert_eq!(prediction.news2.risk, "high");
    assert_eq!(alerts, 1, "one emergency NEWS2 alert");
}

#[test]
fn profile_from_patients_topic_is_joined() {
    let mut pipeline = common::pipeline();
    let mut profile = canonical_equivalent();
    profile.as_object_mut().unwrap().remove("vitals");
    let stored = pipeline.apply_profile(&record("patients", Some("st-marys"), Some("7"), profile));
    assert_eq!(stored, ProfileOutcome::Stored);
    let reading = json!({"vitals": {"systolic_bp_mmhg": 150, "diastolic_bp_mmhg": 95}});
    let (prediction, _) =
        scored(pipeline.process(&record("vitals", Some("st-marys"), Some("7"), reading)));
    assert_eq!(prediction.status, Status::Scored);
    assert!(prediction.model.is_some());
}

#[test]
fn profile_record_without_profile_is_rejected() {
    let mut pipeline = common::pipeline();
    let reading = json!({"vitals": {"heart_rate_bpm": 80}});
    let outcome = pipeline.apply_profile(&record("patients", Some("st-marys"), Some("7"), reading));
    assert!(matches!(outcome, ProfileOutcome::DeadLetter(_)));
}

#[test]
fn late_reading_changes_nothing() {
    let mut pipeline = common::pipeline();
    let newer = json!({"time_ms": 1_796_379_400_000i64, "vitals": {"heart_rate_bpm": 80}});
    scored(pipeline.process(&record("vitals", Some("st-marys"), Some("p2"), newer)));
    let older = json!({"time_ms": 1_796_379_300_000i64, "vitals": {"heart_rate_bpm": 140,
        "respiratory_rate_per_min": 30}});
    let (prediction, alerts) =
        scored(pipeline.process(&record("vitals", Some("st-marys"), Some("p2"), older)));
    assert_eq!(prediction.status, Status::Late);
    assert_eq!(alerts, 0);
    let latest = json!({"time_ms": 1_796_379_500_000i64, "vitals": {"spo2_percent": 97}});
    let (after, _) =
        scored(pipeline.process(&record("vitals", Some("st-marys"), Some("p2"), latest)));
    let vitals = serde_json::to_value(&after.vitals).unwrap();
    assert_eq!(
        vitals["heart_rate_bpm"],
        json!(80.0),
        "the late value must not replace the newer one"
    );
}

#[test]
fn window_combines_separate_vitals() {
    let mut pipeline = common::pipeline();
    let first = json!({"time_ms": 1_796_379_300_000i64, "vitals": {"heart_rate_bpm": 120}});
    let second =
        json!({"time_ms": 1_796_379_360_000i64, "vitals": {"respiratory_rate_per_min": 22}});
    scored(pipeline.process(&record("vitals", Some("st-marys"), Some("p3"), first)));
    let (prediction, _) =
        scored(pipeline.process(&record("vitals", Some("st-marys"), Some("p3"), second)));
    assert_eq!(prediction.news2.parameters.get("pulse"), Some(&2));
    assert_eq!(
        prediction.news2.parameters.get("respiration_rate"),
        Some(&2)
    );
}

#[test]
fn alert_carries_contributions_when_explaining_alerts_only() {
    let mut pipeline = common::pipeline();
    let mut high_risk = canonical_equivalent();
    high_risk["vitals"] = json!({"systolic_bp_mmhg": 185, "diastolic_bp_mmhg": 110});
    high_risk["profile"]["cholesterol_category"] = json!(3);
    high_risk["profile"]["age_years"] = json!(63);
    let outcome = pipeline.process(&record("vitals", Some("st-marys"), None, high_risk));
    let Outcome::Scored {
        prediction, alerts, ..
    } = outcome
    else {
        panic!("dead letter")
    };
    let model = prediction.model.as_ref().unwrap();
    assert!(
        model.probability >= 0.75,
        "probability {}",
        model.probability
    );
    let model_alert = alerts
        .iter()
        .find(|a| a.kind == "model")
        .expect("a model alert");
    assert_eq!(model_alert.top_positive.len(), 3);
    assert!(
        model_alert
            .top_positive
            .iter()
            .any(|c| c.feature == "systolic_bp_mmhg")
    );
    assert!(
        model.contributions.is_some(),
        "the alerting prediction carries contributions"
    );
}

#[test]
fn quiet_prediction_skips_contributions_by_default() {
    let mut pipeline = common::pipeline();
    let mut calm = canonical_equivalent();
    calm["vitals"] =
        json!({"systolic_bp_mmhg": 115, "diastolic_bp_mmhg": 75, "heart_rate_bpm": 70});
    let (prediction, alerts) =
        scored(pipeline.process(&record("vitals", Some("st-marys"), None, calm)));
    assert_eq!(alerts, 0);
    assert!(prediction.model.unwrap().contributions.is_none());
}

#[test]
fn outputs_are_stamped_with_component_hashes() {
    let mut pipeline = common::pipeline();
    let legacy: Value = serde_json::from_str(LEGACY).unwrap();
    let (prediction, _) = scored(pipeline.process(&record("heart_data", None, None, legacy)));
    let score = std::fs::read(common::component("score-cardio.wasm")).unwrap();
    assert_eq!(
        prediction.components.score.sha256,
        cardiowatch_core::package::hex_sha256(&score)
    );
    assert_eq!(prediction.components.model, "cardio-xgb@1.0.0");
    assert_eq!(prediction.components.preprocess.sha256.len(), 64);
}

#[test]
fn future_event_time_is_rejected() {
    let mut pipeline = common::pipeline();
    let kafka_ms = 1_796_379_300_000i64;
    let far_future = json!({"time_ms": 4_102_444_800_000i64, "vitals": {"heart_rate_bpm": 80}});
    let dead = dead(pipeline.process(&record("vitals", Some("st-marys"), Some("p7"), far_future)));
    assert_eq!(dead.kind, DeadLetterKind::InvalidInput);
    assert!(
        dead.reason.contains("ahead of the Kafka timestamp"),
        "{}",
        dead.reason
    );

    let critical = json!({"time_ms": kafka_ms, "vitals": {"heart_rate_bpm": 140,
        "respiratory_rate_per_min": 30, "spo2_percent": 85, "systolic_bp_mmhg": 85}});
    let (prediction, alerts) =
        scored(pipeline.process(&record("vitals", Some("st-marys"), Some("p7"), critical)));
    assert_eq!(
        prediction.status,
        Status::News2Only,
        "the rejected reading must not make this late"
    );
    assert_eq!(alerts, 1);
}

#[test]
fn small_clock_skew_is_accepted() {
    let mut pipeline = common::pipeline();
    let ahead =
        json!({"time_ms": 1_796_379_300_000i64 + 240_000, "vitals": {"heart_rate_bpm": 80}});
    scored(pipeline.process(&record("vitals", Some("st-marys"), Some("p8"), ahead)));
}

#[test]
fn oversized_patient_id_is_rejected() {
    let mut pipeline = common::pipeline();
    let key = "p".repeat(10_000);
    let payload = json!({"vitals": {"heart_rate_bpm": 80}});
    let dead = dead(pipeline.process(&record("vitals", Some("st-marys"), Some(&key), payload)));
    assert!(
        dead.reason.contains("invalid patient id"),
        "{}",
        dead.reason
    );
    assert!(
        dead.reason.len() < 300,
        "the reason must not echo the whole id"
    );
}

#[test]
fn sparse_features_give_news2_only() {
    let mut pipeline = common::pipeline();
    let sparse = json!({"patient_id": "p10", "vitals": {"heart_rate_bpm": 80},
        "profile": {"age_years": 50}});
    let (prediction, alerts) =
        scored(pipeline.process(&record("vitals", Some("st-marys"), None, sparse)));
    assert_eq!(prediction.status, Status::News2Only);
    let reason = prediction.status_reason.unwrap();
    assert!(
        reason.contains("only 1 of 12 model features present"),
        "{reason}"
    );
    assert_eq!(alerts, 0);
}
