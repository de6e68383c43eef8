//! The Grafana dashboard of `deploy/grafana` against real data.
//!
//! Predictions and alerts from the real components go through the InfluxDB sink into
//! the InfluxDB 1.6 that `scripts/test-services.sh start` starts. Then every panel query
//! and every template variable query of the dashboard, with Grafana's macros and
//! variables substituted, must return data. No Grafana runs here: the test checks the
//! InfluxQL, not how Grafana draws the results.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cardiowatch::pipeline::output::{AlertRecord, PredictionRecord};
use cardiowatch::pipeline::{InputRecord, Outcome, Pipeline};
use cardiowatch::sink::influx::{InfluxConfig, InfluxSink, Secret};
use serde_json::{Value, json};

/// URL of the shared InfluxDB 1.x server.
const INFLUX_V1_URL_VARIABLE: &str = "CARDIOWATCH_TEST_INFLUXDB_V1_URL";
const PATIENT_KEY: &str = "grafana-test-key-0123456789abcdef";
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
const DASHBOARD_PATH: &str = "deploy/grafana/dashboards/cardiowatch.json";
const DATASOURCE_PATH: &str = "deploy/grafana/provisioning/datasources/cardiowatch.yaml";
/// The demonstration hospitals; the test data has patients at each.
const HOSPITALS: [&str; 3] = ["st-marys", "northgate", "legacy"];
/// Time range of the dashboard queries: the last hour, the dashboard's default.
const RANGE_MS: i64 = 3_600_000;
/// `$__interval` of the test: the data source's `timeInterval`, which is the lower bound
/// Grafana applies to it.
const INTERVAL: &str = "10s";
const INTERVAL_MS: &str = "10000";
/// Time between two readings of one patient.
const READING_SPACING_MS: i64 = 10 * 60 * 1000;
/// Age of each patient's last reading when the test starts.
const LAST_READING_AGE_MS: i64 = 10 * 60 * 1000;

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

fn repo_file(path: &str) -> PathBuf {
    common::repo_root().join(path)
}

// The dashboard and its queries.

/// One query of the dashboard: a panel target or a template variable.
#[derive(Debug)]
struct DashboardQuery {
    /// Where the query is, as `panel "Title" (refId A)` or `variable $name`.
    location: String,
    /// The InfluxQL as written in the dashboard, with Grafana's variables.
    text: String,
}

fn load_dashboard() -> Value {
    let path = repo_file(DASHBOARD_PATH);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not valid JSON: {error}", path.display()))
}

/// Reads the `uid` of the provisioned data source from its YAML file.
fn provisioned_datasource_uid() -> String {
    let path = repo_file(DATASOURCE_PATH);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    let uids: Vec<&str> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("uid:"))
        .map(str::trim)
        .collect();
    assert_eq!(
        uids.len(),
        1,
        "{DATASOURCE_PATH} must define exactly one uid"
    );
    uids[0].to_string()
}

/// Collects every panel of the dashboard, including those inside collapsed rows, but not
/// the rows themselves.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    let top_level = dashboard["panels"]
        .as_array()
        .expect("the dashboard has a panels array");
    for panel in top_level {
        if panel["type"] == "row" {
            found.extend(panel["panels"].as_array().into_iter().flatten());
        } else {
            found.push(panel);
        }
    }
    found
}

fn assert_datasource(value: &Value, uid: &str, location: &str) {
    assert_eq!(
        value["datasource"]["type"], "influxdb",
        "{location}: datasource type"
    );
    assert_eq!(
        value["datasource"]["uid"], uid,
        "{location}: datasource uid"
    );
}

/// Collects every query of the dashboard: template variable queries first, then each
/// panel's targets. Panics when a panel has no query, a target is not raw InfluxQL or anything
/// refers to another data source than the provisioned one.
fn dashboard_queries(dashboard: &Value, datasource_uid: &str) -> Vec<DashboardQuery> {
    let mut queries = Vec::new();
    let variables = dashboard["templating"]["list"].as_array();
    for variable in variables.into_iter().flatten() {
        if variable["type"] != "query" {
            continue;
        }
        let location = format!("variable ${}", variable["name"].as_str().unwrap_or("?"));
        assert_datasource(variable, datasource_uid, &location);
        // Grafana stores a variable query either as a string or as an object.
        let text = variable["query"]
            .as_str()
            .or_else(|| variable["query"]["query"].as_str())
            .unwrap_or_else(|| panic!("{location}: no query string"));
        queries.push(DashboardQuery {
            location,
            text: text.to_string(),
        });
    }

    let panels = panels(dashboard);
    assert!(!panels.is_empty(), "{DASHBOARD_PATH} has no panels");
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let location = format!("panel {title:?}");
        assert_datasource(panel, datasource_uid, &location);
        let targets = panel["targets"].as_array().map(Vec::as_slice);
        let visible: Vec<&Value> = targets
            .unwrap_or_default()
            .iter()
            .filter(|target| target["hide"] != true)
            .collect();
        assert!(!visible.is_empty(), "{location} has no visible query");
        for target in visible {
            let ref_id = target["refId"].as_str().unwrap_or("?");
            let location = format!("{location} (refId {ref_id})");
            assert_datasource(target, datasource_uid, &location);
            assert_eq!(
                target["rawQuery"], true,
                "{location}: only raw InfluxQL is tested; switch the query editor to raw mode"
            );
            let text = target["query"]
                .as_str()
                .filter(|text| !text.trim().is_empty())
                .unwrap_or_else(|| panic!("{location}: no query string"));
            queries.push(DashboardQuery {
                location,
                text: text.to_string(),
            });
        }
    }
    queries
}

// Grafana's substitution of macros and variables.

/// Replaces Grafana's `$name` and `${name}` in `query` with `variables[name]`. A name is
/// a run of letters, digits and underscores, as the `variableRegex` of Grafana's frontend
/// matches it, so `$__interval_ms` is one name and never `$__interval` followed by `_ms`.
/// A `$` not followed by a name, such as the end anchor in `/^$hospital$/`, stays.
///
/// # Errors
///
/// A message naming a variable that `variables` lacks, or a `${name:format}`, which the
/// test does not render.
fn interpolate(query: &str, variables: &BTreeMap<&str, String>) -> Result<String, String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut output = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {query:?}"))?;
            let name = &braced[..end];
            if name.contains(':') {
                return Err(format!(
                    "variable format ${{{name}}} is not rendered by this test"
                ));
            }
            (name, end + 2)
        } else {
            let end = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            output.push('$');
        } else {
            let value = variables
                .get(name)
                .ok_or_else(|| format!("unknown variable ${name}"))?;
            output.push_str(value);
        }
        rest = &after[consumed..];
    }
    output.push_str(rest);
    Ok(output)
}

/// Renders `values` as Grafana renders a multi-value or "All" variable inside an InfluxQL
/// regex: joined with `|`, in parentheses. Grafana 10.4.1 restored the parentheses, which
/// some earlier 10.x releases left out. Grafana also regex-escapes each value, which the
/// test skips, so it accepts only values without regex metacharacters.
fn multi_value_regex(values: &[&str]) -> String {
    for value in values {
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{value:?} needs regex escaping, which this test does not do"
        );
    }
    format!("({})", values.join("|"))
}

/// Renders `$timeFilter` for the last hour ending at `now_ms` in two forms Grafana has
/// sent: absolute milliseconds, as its backend does (`pkg/tsdb/influxdb/models/query.go`),
/// and the relative `time > now() - 1h` of its early browser-side InfluxQL path.
fn time_filters(now_ms: i64) -> [String; 2] {
    [
        format!("time >= {}ms and time <= {}ms", now_ms - RANGE_MS, now_ms),
        "time > now() - 1h".to_string(),
    ]
}

/// Returns the values of Grafana's macros and of the dashboard's variables: every
/// hospital, and `patient` set to one pseudonym. A single-value variable is regex-escaped by Grafana,
/// which leaves a hexadecimal pseudonym unchanged.
fn grafana_variables(time_filter: &str, patient: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("timeFilter", time_filter.to_string()),
        ("__interval", INTERVAL.to_string()),
        ("__interval_ms", INTERVAL_MS.to_string()),
        // Grafana's backend also replaces `$interval`, the older name of `$__interval`.
        ("interval", INTERVAL.to_string()),
        ("hospital", multi_value_regex(&HOSPITALS)),
        ("patient", patient.to_string()),
    ])
}

// Test data through the real components.

/// Readings of one patient, oldest first.
struct Patient {
    hospital: &'static str,
    id: &'static str,
    readings: Vec<Value>,
}

/// Vitals with NEWS2 0.
fn calm_vitals() -> Value {
    json!({"heart_rate_bpm": 72, "respiratory_rate_per_min": 14, "spo2_percent": 98,
        "systolic_bp_mmhg": 122, "diastolic_bp_mmhg": 78, "temperature_celsius": 36.8,
        "supplemental_oxygen": false, "consciousness": "alert"})
}

/// Vitals with NEWS2 6 (medium clinical risk), which raises an urgent NEWS2 alert.
fn febrile_vitals() -> Value {
    json!({"heart_rate_bpm": 112, "respiratory_rate_per_min": 22, "spo2_percent": 95,
        "systolic_bp_mmhg": 128, "diastolic_bp_mmhg": 80, "temperature_celsius": 38.4,
        "supplemental_oxygen": false, "consciousness": "alert"})
}

/// Vitals with NEWS2 of 7 or more, which raises an emergency NEWS2 alert.
fn critical_vitals() -> Value {
    json!({"heart_rate_bpm": 135, "respiratory_rate_per_min": 26, "spo2_percent": 90,
        "systolic_bp_mmhg": 185, "diastolic_bp_mmhg": 110, "temperature_celsius": 39.5,
        "supplemental_oxygen": true, "consciousness": "voice"})
}

/// Vitals with NEWS2 0 but a blood pressure that the cardio model weighs heavily.
fn hypertensive_vitals() -> Value {
    json!({"heart_rate_bpm": 88, "respiratory_rate_per_min": 16, "spo2_percent": 97,
        "systolic_bp_mmhg": 175, "diastolic_bp_mmhg": 105, "temperature_celsius": 37.0,
        "supplemental_oxygen": false, "consciousness": "alert"})
}

/// Builds a profile for the cardio model. `risky_habits` adds obesity, high glucose,
/// smoking and inactivity.
fn cardio_profile(age_years: u32, male: bool, cholesterol: u8, risky_habits: bool) -> Value {
    json!({"age_years": age_years, "sex": if male { "male" } else { "female" },
        "height_cm": 170, "weight_kg": if risky_habits { 95 } else { 72 },
        "cholesterol_category": cholesterol, "glucose_category": if risky_habits { 3 } else { 1 },
        "smoker": risky_habits, "alcohol": false, "physically_active": !risky_habits})
}

/// Builds a profile for the UCI Cleveland model of northgate. With `diseased`, the
/// stress-test results are those of a patient with angiographic disease.
fn uci_profile(diseased: bool) -> Value {
    let extra = if diseased {
        json!({"chest_pain_type": 4, "serum_cholesterol_mg_dl": 286,
            "fasting_glucose_over_120": 0, "resting_ecg": 2, "max_exercise_heart_rate_bpm": 108,
            "exercise_angina": 1, "st_depression_mm": 1.5, "st_slope": 2, "major_vessels": 3,
            "thal": 3})
    } else {
        json!({"chest_pain_type": 2, "serum_cholesterol_mg_dl": 204,
            "fasting_glucose_over_120": 0, "resting_ecg": 2, "max_exercise_heart_rate_bpm": 172,
            "exercise_angina": 0, "st_depression_mm": 1.4, "st_slope": 1, "major_vessels": 0,
            "thal": 3})
    };
    let mut profile = if diseased {
        cardio_profile(67, true, 3, false)
    } else {
        cardio_profile(41, false, 1, false)
    };
    profile["extra"] = extra;
    profile
}

fn canonical(vitals: Value, profile: &Value) -> Value {
    json!({"vitals": vitals, "profile": profile})
}

/// Builds a message of the Spark system's `heart_data` feed.
fn legacy(id: u32, age: u32, systolic: u32, diastolic: u32, cholesterol: u8) -> Value {
    json!({"id": id, "age": age, "gender": 1, "height": 170, "weight": 80, "ap_hi": systolic,
        "ap_lo": diastolic, "cholesterol": cholesterol, "gluc": 1, "smoke": 0, "alco": 0,
        "active": 1})
}

/// Lists patients at every demonstration hospital whose readings together reach every
/// NEWS2 band and every alert severity, with and without contributions.
fn patients() -> Vec<Patient> {
    let low_risk = cardio_profile(45, false, 1, false);
    let high_risk = cardio_profile(63, true, 3, false);
    let very_high_risk = cardio_profile(68, true, 3, true);
    vec![
        Patient {
            hospital: "st-marys",
            id: "sm-1001",
            readings: vec![canonical(calm_vitals(), &low_risk); 4],
        },
        Patient {
            hospital: "st-marys",
            id: "sm-1002",
            readings: vec![
                canonical(calm_vitals(), &high_risk),
                canonical(febrile_vitals(), &high_risk),
                canonical(critical_vitals(), &high_risk),
                canonical(critical_vitals(), &high_risk),
            ],
        },
        Patient {
            hospital: "st-marys",
            id: "sm-1003",
            readings: vec![canonical(hypertensive_vitals(), &very_high_risk); 3],
        },
        Patient {
            hospital: "northgate",
            id: "ng-2001",
            readings: vec![canonical(calm_vitals(), &uci_profile(false)); 3],
        },
        Patient {
            hospital: "northgate",
            id: "ng-2002",
            readings: vec![canonical(febrile_vitals(), &uci_profile(true)); 3],
        },
        Patient {
            hospital: "legacy",
            id: "7001",
            readings: vec![legacy(7001, 55, 150, 95, 3); 3],
        },
        Patient {
            hospital: "legacy",
            id: "7002",
            readings: vec![legacy(7002, 40, 118, 76, 1); 3],
        },
    ]
}

/// Builds the Kafka record of one reading at `time_ms`. Legacy messages carry no time, so
/// the host takes the Kafka timestamp, as for the real `heart_data` topic.
fn input_record(patient: &Patient, reading: &Value, time_ms: i64) -> InputRecord {
    if patient.hospital == "legacy" {
        return InputRecord {
            topic: "heart_data".into(),
            payload: reading.to_string().into_bytes(),
            timestamp_ms: Some(time_ms),
            ..InputRecord::default()
        };
    }
    let mut payload = reading.clone();
    payload["time_ms"] = json!(time_ms);
    InputRecord {
        topic: "vitals".into(),
        key: Some(patient.id.as_bytes().to_vec()),
        payload: payload.to_string().into_bytes(),
        headers: vec![(
            "hospital-id".into(),
            Some(patient.hospital.as_bytes().to_vec()),
        )],
        timestamp_ms: Some(time_ms),
        ..InputRecord::default()
    }
}

/// Scores every reading of `patients`, spaced [`READING_SPACING_MS`] apart and ending
/// [`LAST_READING_AGE_MS`] before `now_ms`, so that the last hour contains them all.
fn score_all(
    pipeline: &mut Pipeline,
    patients: &[Patient],
    now_ms: i64,
) -> (Vec<PredictionRecord>, Vec<AlertRecord>) {
    let mut predictions = Vec::new();
    let mut alerts = Vec::new();
    for patient in patients {
        let count = patient.readings.len() as i64;
        let first_ms = now_ms - LAST_READING_AGE_MS - (count - 1) * READING_SPACING_MS;
        for (index, reading) in patient.readings.iter().enumerate() {
            let time_ms = first_ms + index as i64 * READING_SPACING_MS;
            match pipeline.process(&input_record(patient, reading, time_ms)) {
                Outcome::Scored {
                    prediction,
                    alerts: raised,
                    ..
                } => {
                    assert_eq!(prediction.hospital, patient.hospital, "{}", patient.id);
                    predictions.push(*prediction);
                    alerts.extend(raised);
                }
                Outcome::DeadLetter(dead) => {
                    panic!(
                        "reading of {} became a dead letter: {}",
                        patient.id, dead.reason
                    )
                }
            }
        }
    }
    (predictions, alerts)
}

// InfluxQL over HTTP, as Grafana's backend sends it.

/// Runs `query` with GET `/query`, as the data source's `httpMode: GET` makes Grafana do,
/// and returns the response body, or a message with the HTTP status or InfluxDB's error.
async fn influxql(
    client: &reqwest::Client,
    url: &str,
    database: &str,
    query: &str,
) -> Result<Value, String> {
    let response = client
        .get(format!("{url}/query"))
        .query(&[("db", database), ("q", query), ("epoch", "ms")])
        .send()
        .await
        .map_err(|error| format!("request failed: {error}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| format!("reading the response failed: {error}"))?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {text}"));
    }
    let body: Value =
        serde_json::from_str(&text).map_err(|error| format!("invalid JSON ({error}): {text}"))?;
    if let Some(error) = body.get("error") {
        return Err(format!("InfluxDB error: {error}"));
    }
    let results = body["results"].as_array().cloned().unwrap_or_default();
    if let Some(error) = results.iter().find_map(|result| result.get("error")) {
        return Err(format!("InfluxDB error: {error}"));
    }
    Ok(body)
}

/// What a query returned.
#[derive(Debug, Default)]
struct QuerySummary {
    rows: usize,
    /// Whether any row has a value other than null or 0 outside the time column; rows of
    /// `fill(0)` alone do not count as data.
    has_value: bool,
    /// The `hospital` tags of the series, when the query groups by hospital.
    hospitals: BTreeSet<String>,
    /// The `value` column, which `SHOW TAG VALUES` returns.
    tag_values: BTreeSet<String>,
}

fn summarize(body: &Value) -> QuerySummary {
    let mut summary = QuerySummary::default();
    let results = body["results"].as_array().into_iter().flatten();
    let series = results.flat_map(|result| result["series"].as_array().into_iter().flatten());
    for item in series {
        if let Some(hospital) = item["tags"]["hospital"].as_str() {
            summary.hospitals.insert(hospital.to_string());
        }
        let columns: Vec<&str> = item["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|column| column.as_str().unwrap_or(""))
            .collect();
        for row in item["values"].as_array().into_iter().flatten() {
            summary.rows += 1;
            let cells = columns.iter().zip(row.as_array().into_iter().flatten());
            for (column, cell) in cells {
                if *column == "time" {
                    continue;
                }
                let is_empty = cell.is_null() || cell.as_f64() == Some(0.0);
                summary.has_value |= !is_empty;
                if *column == "value"
                    && let Some(value) = cell.as_str()
                {
                    summary.tag_values.insert(value.to_string());
                }
            }
        }
    }
    summary
}

#[test]
fn interpolation_matches_grafana_syntax() {
    let variables = BTreeMap::from([
        ("__interval", "10s".to_string()),
        ("__interval_ms", "10000".to_string()),
        ("hospital", multi_value_regex(&["st-marys", "northgate"])),
    ]);
    let query = "GROUP BY time($__interval) LIMIT $__interval_ms WHERE h =~ /^${hospital}$/";
    assert_eq!(
        interpolate(query, &variables).unwrap(),
        "GROUP BY time(10s) LIMIT 10000 WHERE h =~ /^(st-marys|northgate)$/"
    );
    assert_eq!(
        interpolate("$unknown", &variables).unwrap_err(),
        "unknown variable $unknown"
    );
    assert!(interpolate("${hospital:csv}", &variables).is_err());
    assert_eq!(interpolate("a $ b$", &variables).unwrap(), "a $ b$");
}

#[test]
fn dashboard_queries_use_provisioned_datasource() {
    let dashboard = load_dashboard();
    let uid = provisioned_datasource_uid();
    let queries = dashboard_queries(&dashboard, &uid);
    let variables = grafana_variables(&time_filters(now_ms())[0], "0123456789abcdef");
    for query in &queries {
        if let Err(error) = interpolate(&query.text, &variables) {
            panic!("{}: {error}\n  query: {}", query.location, query.text);
        }
    }
}

/// Writes predictions and alerts of patients at every hospital into a fresh database,
/// then runs every dashboard query with each form of `$timeFilter` and checks that it
/// returns data, and that queries grouped by hospital return every hospital.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data() {
    let url = service_url(INFLUX_V1_URL_VARIABLE);
    let database = format!("cardiowatch_grafana_{}", now_ms());
    let client = reqwest::Client::new();
    let create = format!("CREATE DATABASE \"{database}\"");
    influxql(&client, &url, &database, &create)
        .await
        .unwrap_or_else(|error| panic!("{create}: {error}"));

    let mut config = InfluxConfig::v1(&url, &database);
    config.patient_key = Some(Secret::new(PATIENT_KEY));
    config.flush_interval_ms = 50;
    let sink = InfluxSink::start(&config).unwrap();
    let mut pipeline = common::pipeline();
    let patients = patients();
    let (predictions, alerts) = score_all(&mut pipeline, &patients, now_ms());
    for prediction in &predictions {
        sink.record_prediction(prediction);
    }
    for alert in &alerts {
        sink.record_alert(alert);
    }
    sink.flush(FLUSH_TIMEOUT).await.unwrap();
    assert_eq!(sink.dropped_points(), 0, "dropped points");
    assert_eq!(sink.write_errors(), 0, "write errors");

    // The panels filter on these, so the data must reach each of them.
    let severities: BTreeSet<&str> = alerts.iter().map(|alert| alert.severity).collect();
    assert_eq!(
        severities,
        BTreeSet::from(["emergency", "info", "urgent"]),
        "alert severities in the test data"
    );
    let totals: Vec<u8> = predictions.iter().map(|p| p.news2.total).collect();
    assert!(
        totals.iter().any(|&t| t <= 4),
        "no NEWS2 0 to 4 in {totals:?}"
    );
    assert!(
        totals.iter().any(|&t| (5..=6).contains(&t)),
        "no NEWS2 5 or 6 in {totals:?}"
    );
    assert!(
        totals.iter().any(|&t| t >= 7),
        "no NEWS2 7 or more in {totals:?}"
    );
    let explained = predictions
        .iter()
        .filter(|p| p.model.as_ref().is_some_and(|m| m.contributions.is_some()))
        .count();
    assert!(explained > 0, "no prediction carries contributions");

    let dashboard = load_dashboard();
    let queries = dashboard_queries(&dashboard, &provisioned_datasource_uid());
    let patient = sink.patient_tag("sm-1002");
    let expected_hospitals: BTreeSet<String> = HOSPITALS.iter().map(|h| h.to_string()).collect();
    let mut failures = Vec::new();
    for time_filter in time_filters(now_ms()) {
        println!("$timeFilter = {time_filter}");
        let variables = grafana_variables(&time_filter, &patient);
        for query in &queries {
            let context = format!(
                "{} with $timeFilter = {time_filter}\n  query: {}",
                query.location, query.text
            );
            let rendered = match interpolate(&query.text, &variables) {
                Ok(rendered) => rendered,
                Err(error) => {
                    failures.push(format!("{context}\n  {error}"));
                    continue;
                }
            };
            let context = format!("{context}\n  sent: {rendered}");
            let summary = match influxql(&client, &url, &database, &rendered).await {
                Ok(body) => summarize(&body),
                Err(error) => {
                    failures.push(format!("{context}\n  {error}"));
                    continue;
                }
            };
            println!("{:>4} rows  {}", summary.rows, query.location);
            if summary.rows == 0 {
                failures.push(format!("{context}\n  returned no rows"));
            } else if !summary.has_value {
                failures.push(format!("{context}\n  returned only nulls and zeros"));
            }
            if !summary.hospitals.is_empty() && summary.hospitals != expected_hospitals {
                failures.push(format!(
                    "{context}\n  returned hospitals {:?}, expected {expected_hospitals:?}",
                    summary.hospitals
                ));
            }
            if query.location == "variable $hospital" && summary.tag_values != expected_hospitals {
                failures.push(format!(
                    "{context}\n  returned {:?}, expected {expected_hospitals:?}",
                    summary.tag_values
                ));
            }
            if query.location == "variable $patient" && !summary.tag_values.contains(&patient) {
                failures.push(format!(
                    "{context}\n  returned {:?} without the pseudonym {patient} of sm-1002",
                    summary.tag_values
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures among {} dashboard queries, each run with {} forms of $timeFilter:\n{}",
        failures.len(),
        queries.len(),
        time_filters(0).len(),
        failures.join("\n")
    );
}
