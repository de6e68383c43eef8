//! `cardiowatch replay` on librdkafka's mock cluster: the binary re-scores readings
//! produced here, with an identical candidate, a different model and changed thresholds,
//! and must leave no output records and no committed offsets behind.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use cardiowatch::config::KafkaConfig;
use cardiowatch::embedded::EmbeddedCluster;
use cardiowatch::pipeline::{InputRecord, Outcome};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};

const PARTITIONS: i32 = 2;
/// Readings produced; reading `i` goes to partition `i % 2`.
const READINGS: usize = 200;
/// Patients; the last one has no profile on the patients topic.
const PATIENTS: usize = 20;
/// Kafka timestamp and event time of reading 0; later readings are one second apart.
const BASE_MS: i64 = 1_796_379_300_000;

fn cluster() -> EmbeddedCluster {
    let kafka = KafkaConfig::default();
    let mut topics = kafka.vitals_topics.clone();
    topics.extend([
        kafka.patients_topic,
        kafka.predictions_topic,
        kafka.alerts_topic,
        kafka.dead_letter_topic,
    ]);
    EmbeddedCluster::start(1, &topics, PARTITIONS).unwrap()
}

fn patient(index: usize) -> String {
    format!("p-{:02}", index % PATIENTS)
}

/// Profile record of patient `number` on the patients topic.
fn profile(number: usize) -> (String, String) {
    let body = json!({
        "patient_id": patient(number),
        "profile": {"age_years": 45 + number, "sex": if number.is_multiple_of(2) { "female" } else { "male" },
            "height_cm": 160 + number, "weight_kg": 60 + 2 * number,
            "cholesterol_category": 1 + number % 3, "glucose_category": 1,
            "smoker": number.is_multiple_of(3), "alcohol": false, "physically_active": number % 2 == 1}
    });
    (patient(number), body.to_string())
}

/// Reading `index`: canonical vitals without a profile, varied so that NEWS2 and the
/// model output vary. Reading 7 is malformed, so both pipelines dead-letter it.
fn reading(index: usize) -> String {
    if index == 7 {
        return "{not json".to_string();
    }
    json!({
        "time_ms": BASE_MS + index as i64 * 1000,
        "vitals": {"heart_rate_bpm": 60 + index % 70, "respiratory_rate_per_min": 12 + index % 14,
            "spo2_percent": 99 - index % 9, "systolic_bp_mmhg": 100 + index % 80,
            "diastolic_bp_mmhg": 70 + index % 30, "temperature_celsius": 36.5}
    })
    .to_string()
}

fn headers() -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: "hospital-id",
        value: Some("st-marys"),
    })
}

fn produce_all(brokers: &str) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for number in 0..PATIENTS - 1 {
        let (key, body) = profile(number);
        let record = BaseRecord::to("patients")
            .key(&key)
            .payload(&body)
            .partition((number % 2) as i32)
            .headers(headers());
        producer.send(record).map_err(|(error, _)| error).unwrap();
    }
    for index in 0..READINGS {
        let key = patient(index);
        let body = reading(index);
        let record = BaseRecord::to("vitals")
            .key(&key)
            .payload(&body)
            .partition((index % 2) as i32)
            .timestamp(BASE_MS + index as i64 * 1000)
            .headers(headers());
        producer.send(record).map_err(|(error, _)| error).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Runs the binary with `extra` arguments; returns whether it succeeded, its stdout and
/// its stderr, and checks that its group committed nothing.
fn replay(brokers: &str, extra: &[&str]) -> (bool, String, String) {
    let state_dir = tempfile::tempdir().unwrap();
    let hospitals = common::repo_root().join("hospitals");
    let output = Command::new(env!("CARGO_BIN_EXE_cardiowatch"))
        .arg("replay")
        .args(["--brokers", brokers])
        .arg("--hospitals")
        .arg(&hospitals)
        .arg("--state-dir")
        .arg(state_dir.path())
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The replay's consumer names its group after the process id.
    let group = format!("cardiowatch-replay-{}", output.id());
    let output = output.wait_with_output().unwrap();
    assert_no_commits(brokers, &group);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn replay_json(brokers: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = replay(brokers, &args);
    assert!(ok, "replay failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

fn counts(value: &Value) -> BTreeMap<String, i64> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, count)| (key.clone(), count.as_i64().unwrap()))
        .collect()
}

/// The records as produced, with the partition and offset the mock cluster gives them.
fn input_records() -> (Vec<InputRecord>, Vec<InputRecord>) {
    let header = vec![("hospital-id".to_string(), Some(b"st-marys".to_vec()))];
    let profiles = (0..PATIENTS - 1)
        .map(|number| {
            let (key, body) = profile(number);
            InputRecord {
                topic: "patients".into(),
                partition: (number % 2) as i32,
                offset: (number / 2) as i64,
                key: Some(key.into_bytes()),
                payload: body.into_bytes(),
                headers: header.clone(),
                timestamp_ms: Some(BASE_MS),
            }
        })
        .collect();
    let readings = (0..READINGS)
        .map(|index| InputRecord {
            topic: "vitals".into(),
            partition: (index % 2) as i32,
            offset: (index / 2) as i64,
            key: Some(patient(index).into_bytes()),
            payload: reading(index).into_bytes(),
            headers: header.clone(),
            timestamp_ms: Some(BASE_MS + index as i64 * 1000),
        })
        .collect();
    (profiles, readings)
}

/// Alerts the candidate adds and removes, by `kind/severity`, computed in this process.
fn expected_alert_changes(
    adjust: impl Fn(&mut cardiowatch::config::HospitalConfig),
) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let mut baseline = common::pipeline();
    let mut candidate = common::pipeline_with(adjust);
    let (profiles, readings) = input_records();
    for record in &profiles {
        baseline.apply_profile(record);
        candidate.apply_profile(record);
    }
    let alerts = |outcome: &Outcome| -> BTreeMap<String, i64> {
        let mut map = BTreeMap::new();
        if let Outcome::Scored { alerts, .. } = outcome {
            for alert in alerts {
                *map.entry(format!("{}/{}", alert.kind, alert.severity))
                    .or_default() += 1;
            }
        }
        map
    };
    let mut added = BTreeMap::new();
    let mut removed = BTreeMap::new();
    for record in &readings {
        let before = alerts(&baseline.process(record));
        let after = alerts(&candidate.process(record));
        let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            let delta = after.get(key).unwrap_or(&0) - before.get(key).unwrap_or(&0);
            if delta > 0 {
                *added.entry(key.clone()).or_default() += delta;
            } else if delta < 0 {
                *removed.entry(key.clone()).or_default() -= delta;
            }
        }
    }
    (added, removed)
}

fn assert_nothing_written(brokers: &str) {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for topic in ["predictions", "alerts", "dead-letters"] {
        for partition in 0..PARTITIONS {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .unwrap();
            assert_eq!(high, 0, "{topic}/{partition} has records");
        }
    }
}

/// Checks that `group` has no committed offset on the vitals and patients topics.
fn assert_no_commits(brokers: &str, group: &str) {
    let kafka = KafkaConfig {
        brokers: brokers.into(),
        group_id: group.into(),
        vitals_topics: vec!["vitals".into(), "patients".into()],
        ..KafkaConfig::default()
    };
    let committed = common::committed_offsets(&kafka, PARTITIONS);
    assert!(committed.is_empty(), "{group} committed {committed:?}");
}

#[test]
fn replay_reports_differences_and_writes_nothing() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers().to_string();
    produce_all(&brokers);

    // Identical candidate: nothing differs.
    let same = replay_json(&brokers, &[]);
    assert_eq!(same["records_read"], READINGS as u64);
    assert_eq!(same["profiles_read"], (PATIENTS - 1) as u64);
    let st_marys = &same["hospitals"]["st-marys"];
    assert_eq!(st_marys["records"], READINGS as u64);
    assert_eq!(st_marys["records_changed"], 0);
    assert_eq!(st_marys["predictions_compared"], (READINGS - 1) as u64);
    assert_eq!(st_marys["probability"]["max"], 0.0);
    assert_eq!(st_marys["baseline_dead_letters"]["invalid_input"], 1);
    assert_eq!(st_marys["candidate_dead_letters"]["invalid_input"], 1);
    assert!(counts(&st_marys["alerts_added"]).is_empty());
    assert!(st_marys["status_changes"].as_object().unwrap().is_empty());
    assert!(st_marys["examples"].as_array().unwrap().is_empty());

    // The profiles were joined: the patients with one got the model.
    let scored = st_marys["probability"]["compared"].as_u64().unwrap();
    let without_profile = READINGS / PATIENTS;
    assert_eq!(scored, (READINGS - 1 - without_profile) as u64);

    // A lower model threshold: model alerts added, exactly as counted in process.
    let lower = replay_json(
        &brokers,
        &[
            "--hospital",
            "st-marys",
            "--thresholds",
            "model_probability=0.05",
        ],
    );
    let st_marys = &lower["hospitals"]["st-marys"];
    let (added, removed) = expected_alert_changes(|config| {
        if config.id == "st-marys" {
            config.thresholds.model_probability = 0.05;
        }
    });
    assert!(
        added.keys().any(|key| key.starts_with("model/")),
        "{added:?}"
    );
    assert_eq!(counts(&st_marys["alerts_added"]), added);
    assert_eq!(counts(&st_marys["alerts_removed"]), removed);
    assert_eq!(st_marys["probability"]["max"], 0.0);
    assert!(st_marys["records_changed"].as_u64().unwrap() > 0);
    let example = &st_marys["examples"][0];
    assert!(
        example["patient"].as_str().unwrap().starts_with("patient-"),
        "{example}"
    );

    // Another model: probabilities or statuses change.
    let uci = common::component("score-uci.wasm");
    let other = replay_json(
        &brokers,
        &["--hospital", "st-marys", "--score", uci.to_str().unwrap()],
    );
    let st_marys = &other["hospitals"]["st-marys"];
    assert!(
        st_marys["records_changed"].as_u64().unwrap() > 0,
        "{st_marys}"
    );
    let statuses = counts(&st_marys["status_changes"]);
    let max = st_marys["probability"]["max"].as_f64().unwrap();
    assert!(max > 0.0 || !statuses.is_empty(), "{st_marys}");

    assert_nothing_written(&brokers);
}

#[test]
fn replay_ranges_by_offset() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers().to_string();
    produce_all(&brokers);

    let both = replay_json(&brokers, &["--from-offset", "5", "--to-offset", "14"]);
    assert_eq!(both["records_read"], 20);
    let one = replay_json(&brokers, &["--from-offset", "1:90", "--to-offset", "0:0"]);
    // Partition 0 reads offset 0 only, partition 1 reads 90..=99.
    assert_eq!(one["records_read"], 11);

    // NOTE: `--from`/`--to` are not checked here because the mock cluster of librdkafka
    // 2.12.1 does not look offsets up by time: its ListOffsets handler returns -1 for any
    // timestamp. They need a real broker.
    assert_nothing_written(&brokers);
}

#[test]
fn replay_rejects_bad_arguments() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers().to_string();
    produce_all(&brokers);
    let preprocess = common::component("preprocess.wasm");
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "--hospital",
                "nowhere",
                "--thresholds",
                "model_probability=0.5",
            ],
            "unknown hospital \"nowhere\"",
        ),
        (
            &[
                "--hospital",
                "st-marys",
                "--score",
                "/nonexistent/score.wasm",
            ],
            "--score /nonexistent/score.wasm not found",
        ),
        (
            &[
                "--hospital",
                "st-marys",
                "--score",
                preprocess.to_str().unwrap(),
            ],
            "invalid --score",
        ),
        (
            &["--hospital", "st-marys", "--thresholds", "model_prob=0.5"],
            "unknown threshold \"model_prob\"",
        ),
        (&["--from-offset", "100000"], "no records in the range"),
        (&["--from", "yesterday"], "invalid --from \"yesterday\""),
    ];
    for (args, expected) in cases {
        let (ok, _, stderr) = replay(&brokers, args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Replay speed: 20,000 readings (two per second of event time for 100 patients). Run
/// with `cargo test --release -p cardiowatch --test replay -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn replay_speed_20000_records() {
    const COUNT: usize = 20_000;
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers().to_string();
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("queue.buffering.max.messages", "100000")
        .create()
        .unwrap();
    for index in 0..COUNT {
        let key = format!("p-{:03}", index % 100);
        let body = reading(index + 8);
        let record = BaseRecord::to("vitals")
            .key(&key)
            .payload(&body)
            .partition((index % 2) as i32)
            .timestamp(BASE_MS + index as i64 * 1000)
            .headers(headers());
        producer.send(record).map_err(|(error, _)| error).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let mut rates = Vec::new();
    for _ in 0..3 {
        let report = replay_json(
            &brokers,
            &[
                "--hospital",
                "st-marys",
                "--thresholds",
                "model_probability=0.05",
            ],
        );
        assert_eq!(report["records_read"], COUNT as u64);
        rates.push(report["records_per_s"].as_f64().unwrap());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "replay records/s over {COUNT} records: {rates:?}, median {:.0}",
        rates[1]
    );
}
