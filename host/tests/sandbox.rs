//! Containment of a hostile component: an endless loop, unbounded allocation, a trap and
//! an oversized output each end as a dead letter, and the other hospitals never notice.
//!
//! The hostile component (`functions/hostile`) exports the real alert rules world; the
//! last digit of a reading's event time picks its misbehaviour.

mod common;

use std::time::{Duration, Instant};

use cardiowatch::config::KafkaConfig;
use cardiowatch::pipeline::{
    DeadLetterKind, Hospital, InputRecord, Outcome, Pipeline, load_component_set,
};
use serde_json::json;

const BASE_MS: i64 = 1_796_379_300_000;

fn pipeline() -> Pipeline {
    let runtime = common::runtime();
    let mut hospitals = Vec::new();
    for config in common::hospital_configs()
        .into_iter()
        .filter(|c| c.id == "st-marys")
    {
        let mut hostile = config.clone();
        hostile.id = "hostile".into();
        hostile.components.alert_rules = common::component("hostile.wasm");
        for config in [config, hostile] {
            let set = load_component_set(&runtime, &config).unwrap();
            hospitals.push(Hospital::new(&runtime, config, set).unwrap());
        }
    }
    Pipeline::new(hospitals, KafkaConfig::default().topic_hospitals)
}

fn reading(hospital: &str, patient: &str, time_ms: i64) -> InputRecord {
    let payload = json!({"patient_id": patient, "time_ms": time_ms,
        "vitals": {"heart_rate_bpm": 80, "respiratory_rate_per_min": 16}});
    InputRecord {
        topic: "vitals".into(),
        payload: payload.to_string().into_bytes(),
        headers: vec![("hospital-id".into(), Some(hospital.as_bytes().to_vec()))],
        ..InputRecord::default()
    }
}

fn assert_contained(pipeline: &mut Pipeline, digit: i64, expected: &str) {
    let started = Instant::now();
    let outcome = pipeline.process(&reading("hostile", &format!("h{digit}"), BASE_MS + digit));
    let elapsed = started.elapsed();
    let Outcome::DeadLetter(dead) = outcome else {
        panic!("misbehaviour {digit} produced a prediction");
    };
    assert_eq!(
        dead.kind,
        DeadLetterKind::ComponentFailure,
        "{}",
        dead.reason
    );
    assert!(
        dead.reason.contains("alert-rules component"),
        "{}",
        dead.reason
    );
    assert!(
        dead.reason.contains(expected),
        "misbehaviour {digit}: {}",
        dead.reason
    );
    // Generous bound: the deadline is 250 ms of epoch ticks; this only catches a hang.
    assert!(
        elapsed < Duration::from_secs(10),
        "misbehaviour {digit} took {elapsed:?}"
    );

    let healthy = pipeline.process(&reading("st-marys", "s1", BASE_MS + 10 * digit));
    assert!(
        matches!(healthy, Outcome::Scored { .. }),
        "st-marys failed after misbehaviour {digit}"
    );
}

#[test]
fn endless_loop_is_interrupted() {
    assert_contained(&mut pipeline(), 1, "interrupt");
}

#[test]
fn unbounded_allocation_is_stopped() {
    let mut pipeline = pipeline();
    let started = Instant::now();
    let outcome = pipeline.process(&reading("hostile", "h2", BASE_MS + 2));
    let Outcome::DeadLetter(dead) = outcome else {
        panic!("allocation bomb produced a prediction")
    };
    assert_eq!(
        dead.kind,
        DeadLetterKind::ComponentFailure,
        "{}",
        dead.reason
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let healthy = pipeline.process(&reading("st-marys", "s1", BASE_MS));
    assert!(matches!(healthy, Outcome::Scored { .. }));
}

#[test]
fn guest_panic_is_a_dead_letter() {
    assert_contained(&mut pipeline(), 3, "unreachable");
}

#[test]
fn oversized_output_is_stopped() {
    let mut pipeline = pipeline();
    let outcome = pipeline.process(&reading("hostile", "h4", BASE_MS + 4));
    let Outcome::DeadLetter(dead) = outcome else {
        panic!("a 4 MiB output was accepted")
    };
    assert_eq!(
        dead.kind,
        DeadLetterKind::ComponentFailure,
        "{}",
        dead.reason
    );
    assert!(dead.reason.contains("over the limit"), "{}", dead.reason);
}

#[test]
fn hostile_hospital_recovers_after_trap() {
    let mut pipeline = pipeline();
    assert_contained(&mut pipeline, 1, "interrupt");
    let quiet = pipeline.process(&reading("hostile", "h5", BASE_MS + 5));
    assert!(
        matches!(quiet, Outcome::Scored { .. }),
        "a fresh instance must serve the next record after a trap"
    );
}
