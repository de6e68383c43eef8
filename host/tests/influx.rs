//! The InfluxDB sink against real servers, with records from the real components.
//!
//! `scripts/test-services.sh start` starts InfluxDB 1.6 (written over v1 `/write`, read
//! back with InfluxQL) and VictoriaMetrics (written over v2 `/api/v2/write`, read back
//! with `/api/v1/export`). The outage test starts a second influxd through the same
//! script, then pauses (SIGSTOP), stops and restarts it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cardiowatch::config::ExplainMode;
use cardiowatch::pipeline::output::{AlertRecord, PredictionRecord};
use cardiowatch::pipeline::{InputRecord, Outcome, Pipeline};
use cardiowatch::sink::influx::{InfluxConfig, InfluxSink, Secret};
use serde_json::{Map, Value, json};

/// URL of the shared InfluxDB 1.x server.
const INFLUX_V1_URL_VARIABLE: &str = "CARDIOWATCH_TEST_INFLUXDB_V1_URL";
/// URL of the shared VictoriaMetrics server.
const VICTORIA_URL_VARIABLE: &str = "CARDIOWATCH_TEST_VICTORIA_URL";
const PATIENT_KEY: &str = "influx-test-key-0123456789abcdef";
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Returns the URL in `variable`, and panics naming the script to run when it is unset.
fn service_url(variable: &str) -> String {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{variable} is not set: run `scripts/test-services.sh start` and \
             `source target/test-services.env` before `cargo test`, or run `./dev test`"
        ),
    }
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

/// `name` made unique to this test run, so that running the tests again against the
/// same servers starts from empty databases and series.
fn unique(name: &str) -> String {
    static RUN: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    format!("{name}_{}", RUN.get_or_init(now_ms))
}

/// A prediction and the alerts it raised.
struct Scored {
    prediction: PredictionRecord,
    alerts: Vec<AlertRecord>,
}

/// Builds a pipeline over the demonstration hospitals that computes contributions on
/// every prediction.
fn explaining_pipeline() -> Pipeline {
    common::pipeline_with(|config| config.scoring.explain = ExplainMode::All)
}

/// Scores one canonical reading at st-marys: deranged vitals, so NEWS2 alerts, and with
/// `with_profile` a high-risk profile, so the model runs and alerts too.
fn score(pipeline: &mut Pipeline, patient_id: &str, time_ms: i64, with_profile: bool) -> Scored {
    let mut payload = json!({
        "patient_id": patient_id,
        "time_ms": time_ms,
        "vitals": {"heart_rate_bpm": 135, "respiratory_rate_per_min": 26, "spo2_percent": 90,
            "systolic_bp_mmhg": 185, "diastolic_bp_mmhg": 110, "temperature_celsius": 39.5,
            "supplemental_oxygen": true, "consciousness": "voice"}
    });
    if with_profile {
        payload["profile"] = json!({"age_years": 63, "sex": "male", "height_cm": 170,
            "weight_kg": 80, "cholesterol_category": 3, "glucose_category": 1,
            "smoker": false, "alcohol": false, "physically_active": true});
    }
    let record = InputRecord {
        topic: "vitals".into(),
        payload: payload.to_string().into_bytes(),
        headers: vec![("hospital-id".into(), Some(b"st-marys".to_vec()))],
        ..InputRecord::default()
    };
    match pipeline.process(&record) {
        Outcome::Scored {
            prediction, alerts, ..
        } => Scored {
            prediction: *prediction,
            alerts,
        },
        Outcome::DeadLetter(dead) => panic!("unexpected dead letter: {}", dead.reason),
    }
}

fn v1_config(url: &str, database: &str) -> InfluxConfig {
    let mut config = InfluxConfig::v1(url, database);
    config.patient_key = Some(Secret::new(PATIENT_KEY));
    config.flush_interval_ms = 50;
    config
}

// InfluxQL over HTTP.

async fn influxql(url: &str, database: &str, query: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{url}/query"))
        .query(&[("db", database), ("q", query), ("epoch", "ms")])
        .send()
        .await
        .unwrap_or_else(|error| panic!("InfluxQL request {query:?} failed: {error}"));
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(
        status.is_success(),
        "InfluxQL {query:?}: HTTP {status}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(
        body["results"][0].get("error").is_none(),
        "InfluxQL {query:?}: {text}"
    );
    body
}

async fn create_database(url: &str, database: &str) {
    influxql(url, database, &format!("CREATE DATABASE \"{database}\"")).await;
}

/// Rows of the first series of an InfluxQL result, as column name to value.
fn rows(result: &Value) -> Vec<Map<String, Value>> {
    let Some(series) = result["results"][0]["series"][0].as_object() else {
        return Vec::new();
    };
    let columns: Vec<String> = series["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|column| column.as_str().unwrap().to_string())
        .collect();
    series["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            columns
                .iter()
                .cloned()
                .zip(row.as_array().unwrap().iter().cloned())
                .filter(|(_, value)| !value.is_null())
                .collect()
        })
        .collect()
}

async fn select_patient(
    url: &str,
    database: &str,
    measurement: &str,
    patient: &str,
) -> Vec<Map<String, Value>> {
    let query = format!("SELECT * FROM \"{measurement}\" WHERE \"patient\" = '{patient}'");
    rows(&influxql(url, database, &query).await)
}

/// Builds the fields and tags expected in the `predictions` point. The top contributions
/// come from the model alert, which the alert rules component chose independently.
fn expected_prediction(scored: &Scored, patient: &str) -> Map<String, Value> {
    let prediction = &scored.prediction;
    let mut expected = Map::new();
    expected.insert("time".into(), json!(prediction.event_time_ms));
    expected.insert("hospital".into(), json!(prediction.hospital));
    expected.insert("patient".into(), json!(patient));
    expected.insert("news2".into(), json!(prediction.news2.total));
    expected.insert("model_version".into(), json!(prediction.components.model));
    if let Some(model) = &prediction.model {
        expected.insert("status".into(), json!("scored"));
        expected.insert("probability".into(), json!(model.probability));
        let alert = scored
            .alerts
            .iter()
            .find(|alert| alert.kind == "model")
            .expect("the high-risk reading raises a model alert");
        for (direction, top) in [("pos", &alert.top_positive), ("neg", &alert.top_negative)] {
            for (index, contribution) in top.iter().enumerate() {
                let rank = index + 1;
                expected.insert(
                    format!("top{rank}_{direction}_feature"),
                    json!(contribution.feature),
                );
                expected.insert(
                    format!("top{rank}_{direction}_value"),
                    json!(contribution.contribution),
                );
            }
        }
    } else {
        expected.insert("status".into(), json!("news2_only"));
    }
    expected
}

fn expected_vitals(prediction: &PredictionRecord, patient: &str) -> Map<String, Value> {
    let mut expected = Map::new();
    expected.insert("time".into(), json!(prediction.event_time_ms));
    expected.insert("hospital".into(), json!(prediction.hospital));
    expected.insert("patient".into(), json!(patient));
    let vitals = serde_json::to_value(&prediction.vitals).unwrap();
    for (name, value) in vitals.as_object().unwrap() {
        let value = match value {
            Value::Bool(flag) => json!(i64::from(*flag)),
            Value::String(level) => {
                assert_eq!(level, "voice");
                expected.insert("consciousness_acvpu".into(), json!(2));
                continue;
            }
            number => number.clone(),
        };
        expected.insert(name.clone(), value);
    }
    expected
}

fn expected_alert(alert: &AlertRecord, patient: &str) -> Map<String, Value> {
    let mut expected = Map::new();
    expected.insert("time".into(), json!(alert.event_time_ms));
    expected.insert("hospital".into(), json!(alert.hospital));
    expected.insert("kind".into(), json!(alert.kind));
    expected.insert("patient".into(), json!(patient));
    expected.insert("severity".into(), json!(alert.severity));
    expected.insert("reason".into(), json!(alert.reason));
    expected.insert("news2".into(), json!(alert.news2_total));
    if let Some(probability) = alert.probability {
        expected.insert("probability".into(), json!(probability));
    }
    expected
}

/// Compares numbers by value, so that InfluxDB's `172` matches a record's `172.0`.
fn assert_row_eq(actual: &Map<String, Value>, expected: &Map<String, Value>, context: &str) {
    let keys = |map: &Map<String, Value>| map.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(actual), keys(expected), "{context}: columns");
    for (name, value) in expected {
        let got = &actual[name];
        match (got.as_f64(), value.as_f64()) {
            (Some(got), Some(value)) => assert_eq!(got, value, "{context}: {name}"),
            _ => assert_eq!(got, value, "{context}: {name}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_round_trips_every_field() {
    let url = service_url(INFLUX_V1_URL_VARIABLE);
    let database = &unique("cardiowatch_round_trip");
    create_database(&url, database).await;
    let sink = InfluxSink::start(&v1_config(&url, database)).unwrap();
    let mut pipeline = explaining_pipeline();
    let time_ms = now_ms() - 60_000;
    let scored = vec![
        score(&mut pipeline, "round-trip-1", time_ms, true),
        score(&mut pipeline, "round-trip-2", time_ms + 1_000, true),
        score(&mut pipeline, "round-trip-3", time_ms + 2_000, false),
    ];
    for item in &scored {
        sink.record_prediction(&item.prediction);
        for alert in &item.alerts {
            sink.record_alert(alert);
        }
    }
    sink.flush(FLUSH_TIMEOUT).await.unwrap();
    assert_eq!(sink.dropped_points(), 0);
    assert_eq!(sink.write_errors(), 0);

    for item in &scored {
        let id = &item.prediction.patient_id;
        let patient = sink.patient_tag(id);
        let predictions = select_patient(&url, database, "predictions", &patient).await;
        assert_eq!(predictions.len(), 1, "{id}: predictions");
        assert_row_eq(&predictions[0], &expected_prediction(item, &patient), id);

        let vitals = select_patient(&url, database, "vitals", &patient).await;
        assert_eq!(vitals.len(), 1, "{id}: vitals");
        assert_row_eq(&vitals[0], &expected_vitals(&item.prediction, &patient), id);

        let alerts = select_patient(&url, database, "alerts", &patient).await;
        assert_eq!(alerts.len(), item.alerts.len(), "{id}: alerts");
        for alert in &item.alerts {
            let row = alerts
                .iter()
                .find(|row| row["kind"] == json!(alert.kind))
                .unwrap_or_else(|| panic!("{id}: no {} alert", alert.kind));
            assert_row_eq(row, &expected_alert(alert, &patient), id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_patient_tag_is_pseudonym() {
    let url = service_url(INFLUX_V1_URL_VARIABLE);
    let database = &unique("cardiowatch_pseudonyms");
    create_database(&url, database).await;
    let sink = InfluxSink::start(&v1_config(&url, database)).unwrap();
    let mut pipeline = explaining_pipeline();
    let item = score(&mut pipeline, "p-raw-id-0042", now_ms() - 60_000, true);
    sink.record_prediction(&item.prediction);
    sink.flush(FLUSH_TIMEOUT).await.unwrap();

    let query = "SHOW TAG VALUES FROM \"predictions\" WITH KEY = \"patient\"";
    let values = rows(&influxql(&url, database, query).await);
    let tags: Vec<&str> = values
        .iter()
        .map(|row| row["value"].as_str().unwrap())
        .collect();
    assert_eq!(tags, [sink.patient_tag("p-raw-id-0042").as_str()]);
    assert_eq!(tags[0].len(), 16);
    assert!(
        tags[0].chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        tags[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_escapes_special_characters() {
    let url = service_url(INFLUX_V1_URL_VARIABLE);
    let database = &unique("cardiowatch_escaping");
    create_database(&url, database).await;
    let sink = InfluxSink::start(&v1_config(&url, database)).unwrap();
    let mut pipeline = explaining_pipeline();
    let item = score(&mut pipeline, "escape-1", now_ms() - 60_000, false);
    let mut alert = item.alerts[0].clone();
    alert.hospital = r"st marys, east=wing \ annex".to_string();
    alert.reason = r#"say "hi", then C:\ward\ = 3 "#.to_string();
    sink.record_alert(&alert);
    sink.flush(FLUSH_TIMEOUT).await.unwrap();
    assert_eq!(sink.dropped_points(), 0);

    let patient = sink.patient_tag("escape-1");
    let alerts = select_patient(&url, database, "alerts", &patient).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["hospital"], json!(alert.hospital));
    assert_eq!(alerts[0]["reason"], json!(alert.reason));
}

// VictoriaMetrics over the v2 API.

/// Series of `/api/v1/export` for `selector`, by metric name and `kind` label, as
/// (timestamps, values).
async fn victoria_export(url: &str, selector: &str) -> BTreeMap<String, (Vec<i64>, Vec<f64>)> {
    let client = reqwest::Client::new();
    // Makes the points written so far visible to queries at once.
    client
        .get(format!("{url}/internal/force_flush"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let text = client
        .get(format!("{url}/api/v1/export"))
        .query(&[("match[]", selector)])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut series = BTreeMap::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let item: Value = serde_json::from_str(line).unwrap();
        let metric = &item["metric"];
        let mut name = metric["__name__"].as_str().unwrap().to_string();
        if let Some(kind) = metric["kind"].as_str() {
            name = format!("{name}{{kind={kind}}}");
        }
        let timestamps = item["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_i64().unwrap())
            .collect();
        let values = item["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        series.insert(name, (timestamps, values));
    }
    series
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_receives_numeric_fields() {
    let url = service_url(VICTORIA_URL_VARIABLE);
    let mut config = InfluxConfig::v2(&url, "cardiowatch", "tests");
    config.patient_key = Some(Secret::new(PATIENT_KEY));
    config.flush_interval_ms = 50;
    let sink = InfluxSink::start(&config).unwrap();
    let mut pipeline = explaining_pipeline();
    let patient_id = unique("victoria");
    let item = score(&mut pipeline, &patient_id, now_ms() - 60_000, true);
    sink.record_prediction(&item.prediction);
    for alert in &item.alerts {
        sink.record_alert(alert);
    }
    sink.flush(FLUSH_TIMEOUT).await.unwrap();
    assert_eq!(sink.dropped_points(), 0);
    assert_eq!(sink.write_errors(), 0);

    let patient = sink.patient_tag(&patient_id);
    let series = victoria_export(&url, &format!("{{patient=\"{patient}\"}}")).await;
    let time = item.prediction.event_time_ms;
    let model = item.prediction.model.as_ref().unwrap();
    let model_alert = item.alerts.iter().find(|a| a.kind == "model").unwrap();
    let vitals = serde_json::to_value(&item.prediction.vitals).unwrap();
    let mut expected: BTreeMap<String, f64> = BTreeMap::from([
        ("predictions_probability".into(), model.probability),
        (
            "predictions_news2".into(),
            f64::from(item.prediction.news2.total),
        ),
        (
            "predictions_top1_pos_value".into(),
            model_alert.top_positive[0].contribution,
        ),
        (
            "predictions_top1_neg_value".into(),
            model_alert.top_negative[0].contribution,
        ),
        (
            "vitals_heart_rate_bpm".into(),
            vitals["heart_rate_bpm"].as_f64().unwrap(),
        ),
        (
            "vitals_temperature_celsius".into(),
            vitals["temperature_celsius"].as_f64().unwrap(),
        ),
        ("vitals_supplemental_oxygen".into(), 1.0),
        ("vitals_consciousness_acvpu".into(), 2.0),
    ]);
    for alert in &item.alerts {
        let kind = alert.kind;
        expected.insert(
            format!("alerts_news2{{kind={kind}}}"),
            f64::from(alert.news2_total),
        );
        if let Some(probability) = alert.probability {
            expected.insert(format!("alerts_probability{{kind={kind}}}"), probability);
        }
    }
    for (name, value) in &expected {
        let (timestamps, values) = series
            .get(name)
            .unwrap_or_else(|| panic!("no series {name} in {:?}", series.keys()));
        assert_eq!(timestamps, &[time], "{name}: timestamps");
        assert_eq!(values.len(), 1, "{name}: values {values:?}");
        // VictoriaMetrics 1.79 returns 12 significant decimal digits (0.877835750579834
        // comes back as 0.877835750579).
        let tolerance = 1e-11 * value.abs().max(1.0);
        assert!(
            (values[0] - value).abs() <= tolerance,
            "{name}: value {} instead of {value}",
            values[0]
        );
    }
}

// An outage of a dedicated influxd.

/// An influxd that this test owns, started and stopped through
/// `scripts/test-services.sh`; stopped when dropped.
struct OwnInfluxd {
    dir: tempfile::TempDir,
    url: String,
}

fn services_script() -> std::path::PathBuf {
    common::repo_root().join("scripts/test-services.sh")
}

fn run_script(args: &[&str]) -> String {
    let output = Command::new(services_script())
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("failed to run scripts/test-services.sh: {error}"));
    assert!(
        output.status.success(),
        "scripts/test-services.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

impl OwnInfluxd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = run_script(&["start-influxd", path_str(dir.path())]);
        OwnInfluxd { dir, url }
    }

    fn port(&self) -> String {
        self.url.rsplit(':').next().unwrap().to_string()
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("influxd.pid"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} influxd failed");
    }

    fn stop(&self) {
        run_script(&["stop-influxd", path_str(self.dir.path())]);
    }

    /// Starts influxd again on the same port and data.
    fn restart(&self) {
        let url = run_script(&["start-influxd", path_str(self.dir.path()), &self.port()]);
        assert_eq!(url, self.url);
    }
}

impl Drop for OwnInfluxd {
    fn drop(&mut self) {
        let _ = Command::new(services_script())
            .args(["stop-influxd", path_str(self.dir.path())])
            .output();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary directory path is UTF-8")
}

/// Records one prediction per patient and returns the longest time one call took.
fn record_predictions(
    sink: &InfluxSink,
    pipeline: &mut Pipeline,
    prefix: &str,
    count: usize,
) -> Duration {
    let time_ms = now_ms() - 60_000;
    let mut slowest = Duration::ZERO;
    for index in 0..count {
        let item = score(pipeline, &format!("{prefix}-{index}"), time_ms, true);
        let started = Instant::now();
        sink.record_prediction(&item.prediction);
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

async fn count_points(url: &str, database: &str, measurement: &str, field: &str) -> i64 {
    let query = format!("SELECT count(\"{field}\") FROM \"{measurement}\"");
    let result = rows(&influxql(url, database, &query).await);
    result
        .first()
        .map_or(0, |row| row["count"].as_i64().unwrap())
}

/// Pauses influxd with SIGSTOP (requests time out), then stops it (connections are
/// refused): no point recorded meanwhile is dropped, and all arrive once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_keeps_points_until_store_returns() {
    service_url(INFLUX_V1_URL_VARIABLE);
    let influxd = OwnInfluxd::start();
    let database = "cardiowatch_outage";
    create_database(&influxd.url, database).await;
    let mut config = v1_config(&influxd.url, database);
    config.batch_size = 25;
    config.max_retries = 1_000;
    config.retry_backoff_ms = 50;
    config.retry_max_backoff_ms = 400;
    config.request_timeout_ms = 500;
    let sink = InfluxSink::start(&config).unwrap();
    let mut pipeline = explaining_pipeline();
    let per_phase = 20;

    record_predictions(&sink, &mut pipeline, "before", per_phase);
    sink.flush(FLUSH_TIMEOUT).await.unwrap();
    assert_eq!(sink.written_points(), 2 * per_phase as u64);

    influxd.signal("-STOP");
    let slowest = record_predictions(&sink, &mut pipeline, "paused", per_phase);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let errors_while_paused = sink.write_errors();
    influxd.signal("-CONT");
    assert!(
        slowest < Duration::from_millis(50),
        "a call took {slowest:?}"
    );
    assert!(errors_while_paused > 0, "no write failed while paused");
    assert_eq!(sink.dropped_points(), 0);
    sink.flush(FLUSH_TIMEOUT).await.unwrap();
    assert_eq!(sink.written_points(), 4 * per_phase as u64);

    influxd.stop();
    let slowest = record_predictions(&sink, &mut pipeline, "stopped", per_phase);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        slowest < Duration::from_millis(50),
        "a call took {slowest:?}"
    );
    assert!(
        sink.write_errors() > errors_while_paused,
        "no write failed while stopped"
    );
    influxd.restart();
    sink.flush(FLUSH_TIMEOUT).await.unwrap();

    assert_eq!(sink.dropped_points(), 0);
    assert_eq!(sink.written_points(), 6 * per_phase as u64);
    let points = 3 * per_phase as i64;
    assert_eq!(
        count_points(&influxd.url, database, "predictions", "news2").await,
        points
    );
    assert_eq!(
        count_points(&influxd.url, database, "vitals", "heart_rate_bpm").await,
        points
    );
}
