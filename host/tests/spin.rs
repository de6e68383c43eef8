//! The Spin scoring component served by `serve-http`'s library function: `POST /score`
//! must return what `cardiowatch score` prints for the same message, reject bad input with
//! a 400 that names the value, and reject other paths and methods.
//!
//! Needs the built components (`./dev components`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cardiowatch::runtime::http::{HttpComponent, HttpComponentError, HttpLimits, serve};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A `serve-http` server on a free loopback port, stopped when dropped.
struct Server {
    address: std::net::SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start(limits: HttpLimits) -> Server {
        let path = components_dir().join("spin-score.wasm");
        let component = HttpComponent::load(&path, limits).expect("run ./dev components");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, Arc::new(component), async {
            let _ = stopped.await;
        }));
        Server {
            address,
            _stop: stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn components_dir() -> PathBuf {
    common::repo_root().join("target/components")
}

/// Writes a hospital with the cardio model, default thresholds and contributions on
/// every prediction: the settings the HTTP component applies.
fn write_default_hospital(dir: &Path) {
    let components = components_dir();
    let file = format!(
        "id = \"defaults\"\n\
         [components]\n\
         preprocess = {:?}\n\
         score = {:?}\n\
         alert_rules = {:?}\n\
         [scoring]\n\
         explain = \"all\"\n",
        components.join("preprocess.wasm"),
        components.join("score-cardio.wasm"),
        components.join("alert-rules.wasm"),
    );
    std::fs::write(dir.join("defaults.toml"), file).unwrap();
}

/// Runs `cardiowatch score` on `message` for the hospital in `dir` and returns its JSON.
fn score_with_cli(dir: &Path, topic: &str, message: &str) -> Value {
    let file = dir.join("message.json");
    std::fs::write(&file, message).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cardiowatch"))
        .args(["score", "--hospital", "defaults", "--topic", topic])
        .arg("--hospitals")
        .arg(dir)
        .arg(&file)
        .current_dir(common::repo_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cardiowatch score failed: {stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn post_score(server: &Server, message: &str) -> (u16, Value) {
    let response = client()
        .post(server.url("/score"))
        .header("content-type", "application/json")
        .body(message.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap();
    (status, body)
}

const LEGACY: &str = r#"{"id": 7, "age": 62, "gender": 1, "height": 170, "weight": 90,
    "ap_hi": 170, "ap_lo": 100, "cholesterol": 3, "gluc": 1, "smoke": 0, "alco": 0,
    "active": 0}"#;

fn canonical(respiratory_rate: u32, spo2: u32) -> String {
    json!({"patient_id": "p-1", "time_ms": 1_796_379_300_000i64,
        "vitals": {"heart_rate_bpm": 92, "systolic_bp_mmhg": 148, "diastolic_bp_mmhg": 92,
            "respiratory_rate_per_min": respiratory_rate, "spo2_percent": spo2,
            "temperature_celsius": 37.4, "supplemental_oxygen": false,
            "consciousness": "alert"},
        "profile": {"age_years": 58, "sex": "male", "height_cm": 175, "weight_kg": 88,
            "cholesterol_category": 2, "glucose_category": 1, "smoker": true,
            "alcohol": false, "physically_active": false}})
    .to_string()
}

fn fhir_bundle() -> String {
    let path =
        common::repo_root().join("functions/core/tests/fixtures/fhir/bundle-five-vitals.json");
    std::fs::read_to_string(path).unwrap()
}

/// Checks each field the HTTP response shares with `cardiowatch score`'s output.
fn assert_same_result(case: &str, http: &Value, cli: &Value) {
    let prediction = &cli["prediction"];
    assert_eq!(http["status"], prediction["status"], "{case}: status");
    assert_eq!(
        http["format"], prediction["source"]["format"],
        "{case}: format"
    );
    assert_eq!(http["vitals"], prediction["vitals"], "{case}: vitals");
    assert_eq!(http["news2"], prediction["news2"], "{case}: news2");

    let model = &prediction["model"];
    for field in ["probability", "margin", "bias", "contributions"] {
        assert_eq!(http["model"][field], model[field], "{case}: model {field}");
    }

    let http_alerts = http["alerts"].as_array().expect("alerts is an array");
    if case.contains("NEWS2 alert") {
        assert!(
            http_alerts.iter().any(|a| a["kind"] == "news2"),
            "{case}: {http}"
        );
    }
    let cli_alerts = cli["alerts"].as_array().expect("alerts is an array");
    assert_eq!(http_alerts.len(), cli_alerts.len(), "{case}: alert count");
    for (ours, theirs) in http_alerts.iter().zip(cli_alerts) {
        for field in [
            "kind",
            "severity",
            "reason",
            "escalation",
            "top_positive",
            "top_negative",
        ] {
            assert_eq!(ours[field], theirs[field], "{case}: alert {field}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn score_matches_cli_for_each_format() {
    let server = Server::start(HttpLimits::default()).await;
    let dir = tempfile::tempdir().unwrap();
    write_default_hospital(dir.path());
    // A FHIR Bundle carries no profile, so the model runs only for the other formats.
    let cases = [
        ("legacy", "heart_data", LEGACY.to_string(), "scored"),
        ("canonical", "vitals", canonical(16, 97), "scored"),
        (
            "canonical with NEWS2 alert",
            "vitals",
            canonical(26, 90),
            "scored",
        ),
        ("fhir bundle", "vitals", fhir_bundle(), "news2_only"),
    ];
    for (case, topic, message, expected_status) in cases {
        let (status, http) = post_score(&server, &message).await;
        assert_eq!(status, 200, "{case}: {http}");
        assert_eq!(http["status"], expected_status, "{case}: {http}");
        let cli = score_with_cli(dir.path(), topic, &message);
        assert_same_result(case, &http, &cli);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn score_runs_model_with_profile() {
    let server = Server::start(HttpLimits::default()).await;
    for message in [LEGACY.to_string(), canonical(16, 97)] {
        let (status, body) = post_score(&server, &message).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "scored", "{body}");
        let probability = body["model"]["probability"]
            .as_f64()
            .expect("a probability");
        assert!((0.0..=1.0).contains(&probability), "{probability}");
        assert_eq!(body["model"]["name"], "cardio-xgb", "{body}");
        assert!(body["model"]["version"].is_string(), "{body}");
        let contributions = body["model"]["contributions"].as_array().unwrap();
        assert_eq!(contributions.len(), 12, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn score_without_profile_is_news2_only() {
    let server = Server::start(HttpLimits::default()).await;
    let (status, body) = post_score(&server, &fhir_bundle()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "news2_only", "{body}");
    let reason = body["status_reason"].as_str().unwrap();
    assert!(reason.starts_with("missing profile"), "{reason}");
    assert!(body["model"]["probability"].is_null(), "{body}");
    assert!(body["news2"]["total"].is_u64(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_400_naming_value() {
    let server = Server::start(HttpLimits::default()).await;
    let cases = [
        ("not json", "invalid JSON payload"),
        (
            r#"{"patient_id": "p1", "vitals": {"spo2_percent": 140}}"#,
            "implausible spo2_percent 140: expected 50..=100 %",
        ),
        (
            r#"{"hr": 80}"#,
            "unrecognised JSON object with keys [\"hr\"]",
        ),
        (
            r#"{"resourceType": "Patient", "id": "1"}"#,
            "unsupported FHIR resource type \"Patient\"",
        ),
    ];
    for (message, expected) in cases {
        let (status, body) = post_score(&server, message).await;
        assert_eq!(status, 400, "{message}: {body}");
        assert_eq!(body["kind"], "invalid_input", "{message}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(expected), "{message}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_format_header_is_400() {
    let server = Server::start(HttpLimits::default()).await;
    let response = client()
        .post(server.url("/score"))
        .header("cardiowatch-format", "xml")
        .body(LEGACY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("unsupported cardiowatch-format header \"xml\""),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn format_header_selects_parser() {
    let server = Server::start(HttpLimits::default()).await;
    let response = client()
        .post(server.url("/score"))
        .header("cardiowatch-format", "canonical-json")
        .body(LEGACY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "invalid_input", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_or_path_is_rejected() {
    let server = Server::start(HttpLimits::default()).await;
    let http = client();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = http
            .request(method.clone(), server.url("/score"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(allow.as_deref(), Some("POST"), "{method}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["kind"], "method_not_allowed", "{method}: {body}");
    }
    for path in ["/", "/scores", "/score/extra", "/model"] {
        let response = http
            .post(server.url(path))
            .body(LEGACY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["kind"], "not_found", "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_body_is_413() {
    let limits = HttpLimits {
        max_body_bytes: 1024,
        ..HttpLimits::default()
    };
    let server = Server::start(limits).await;
    let padding = " ".repeat(2048);
    let (status, body) = post_score(&server, &format!("{LEGACY}{padding}")).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["kind"], "payload_too_large", "{body}");
    let (status, body) = post_score(&server, LEGACY).await;
    assert_eq!(status, 200, "{body}");
}

#[test]
fn non_http_component_is_rejected() {
    let path = components_dir().join("preprocess.wasm");
    let error = HttpComponent::load(&path, HttpLimits::default())
        .err()
        .expect("preprocess exports no wasi:http handler");
    assert!(
        matches!(error, HttpComponentError::Invalid { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("preprocess.wasm"), "{error}");
}
