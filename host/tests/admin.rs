//! The admin server over real HTTP: health, readiness, metrics, and token scoping of the
//! dashboard API.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use cardiowatch::admin::{TokenStore, serve};
use cardiowatch::pipeline::InputRecord;
use cardiowatch::telemetry::Telemetry;
use serde_json::{Value, json};

/// A minimal HTTP/1.1 GET; returns the status code and the body.
fn get(address: SocketAddr, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Chunked bodies carry hex sizes between chunks; the JSON is the longest line.
fn json_body(body: &str) -> Value {
    let text = body
        .lines()
        .max_by_key(|line| line.len())
        .unwrap_or_default();
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn reading(hospital: &str, patient: &str, heart_rate: u32) -> InputRecord {
    let payload = json!({"patient_id": patient, "vitals": {"heart_rate_bpm": heart_rate,
        "respiratory_rate_per_min": 26, "spo2_percent": 91}});
    InputRecord {
        topic: "vitals".into(),
        payload: payload.to_string().into_bytes(),
        headers: vec![("hospital-id".into(), Some(hospital.as_bytes().to_vec()))],
        timestamp_ms: Some(1_796_379_300_000),
        ..InputRecord::default()
    }
}

async fn server() -> (SocketAddr, String, String) {
    let telemetry = Arc::new(Telemetry::default());
    let mut pipeline = common::pipeline();
    telemetry.register_pipeline(&pipeline);
    for (hospital, patient) in [("st-marys", "a1"), ("st-marys", "a2"), ("northgate", "b1")] {
        let outcome = pipeline.process(&reading(hospital, patient, 135));
        telemetry.record_outcome(&outcome);
    }
    let mut tokens = TokenStore::default();
    let operator = tokens.issue_operator_token();
    let hospital_token = "st-marys-secret".to_string();
    tokens.add_hospital_digest(
        cardiowatch::admin::digest(&hospital_token),
        "st-marys".into(),
    );
    let (address, _task) = serve(
        "127.0.0.1:0".parse().unwrap(),
        telemetry,
        Arc::new(tokens),
        None,
    )
    .await
    .unwrap();
    (address, operator, hospital_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hospital_token_sees_only_its_hospital() {
    let (address, _, hospital_token) = server().await;
    let (status, body) = tokio::task::spawn_blocking(move || {
        get(address, &format!("/api/state?token={hospital_token}"), None)
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let state = json_body(&body);
    let hospitals: Vec<&str> = state["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["hospital"].as_str().unwrap())
        .collect();
    assert_eq!(hospitals, ["st-marys", "st-marys"]);
    assert_eq!(state["hospitals"].as_array().unwrap().len(), 1);
    assert!(
        state["counters"].is_null(),
        "instance-wide counters are for operators only"
    );
    assert!(
        state["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["hospital"] == "st-marys")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_token_sees_every_hospital() {
    let (address, operator, _) = server().await;
    let (status, body) =
        tokio::task::spawn_blocking(move || get(address, "/api/state", Some(&operator)))
            .await
            .unwrap();
    assert_eq!(status, 200);
    let state = json_body(&body);
    assert_eq!(state["patients"].as_array().unwrap().len(), 3);
    assert_eq!(state["hospitals"].as_array().unwrap().len(), 3);
    let first = &state["patients"][0];
    assert_eq!(
        first["risk"], "high",
        "patients are ranked by risk: {first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_token_is_rejected() {
    let (address, _, _) = server().await;
    let results = tokio::task::spawn_blocking(move || {
        [
            get(address, "/api/state", None).0,
            get(address, "/api/state?token=guess", None).0,
            get(address, "/api/events", Some("guess")).0,
        ]
    })
    .await
    .unwrap();
    assert_eq!(results, [401, 401, 401]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let (address, _, _) = server().await;
    let (health, ready, metrics) = tokio::task::spawn_blocking(move || {
        (
            get(address, "/healthz", None),
            get(address, "/readyz", None),
            get(address, "/metrics", None),
        )
    })
    .await
    .unwrap();
    assert_eq!(health.0, 200);
    assert_eq!(ready.0, 503, "not consuming yet: {}", ready.1);
    assert!(
        ready.1.contains("\"components_loaded\":true"),
        "{}",
        ready.1
    );
    assert_eq!(metrics.0, 200);
    assert!(
        metrics
            .1
            .contains("cardiowatch_messages_total{hospital=\"st-marys\"} 2"),
        "{}",
        metrics.1
    );
    assert!(
        metrics.1.contains("cardiowatch_component_call_seconds")
            || metrics.1.contains("cardiowatch_alerts_total")
    );
    assert!(!metrics.1.contains("a1"), "no patient id in metrics");
}
