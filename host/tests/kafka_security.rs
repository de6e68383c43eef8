//! The host against the SASL/SCRAM and TLS listeners of the real broker that
//! `scripts/kafka.sh start` runs, as `./dev test` does. Through each listener a vitals
//! record goes in and its prediction comes out. The start-up check must fail with a clear
//! error for a wrong password and for an untrusted broker certificate.
//!
//! Each round trip creates its own topics and consumer group, so these tests share the
//! broker with `kafka_real.rs` without seeing each other's records.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cardiowatch::config::KafkaConfig;
use cardiowatch::source::{Worker, check_brokers, client_config};
use cardiowatch::stats::Stats;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Environment variable that `scripts/kafka.sh` sets to the test user's password.
const PASSWORD_ENV: &str = "CARDIOWATCH_TEST_KAFKA_PASSWORD";
/// Maximum time of a failed start-up check. It waits the full 10 s only when no broker
/// responds.
const CHECK_LIMIT: Duration = Duration::from_secs(5);

/// Returns a variable of target/kafka.env, or panics with the command that sets it.
fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `scripts/kafka.sh start` and `source target/kafka.env`, \
             or run `./dev test`"
        )
    })
}

/// Builds a config for the SCRAM listener that reads the password from `password_env`.
fn scram_config(mechanism: &str, password_env: &str) -> KafkaConfig {
    let mut kafka = KafkaConfig {
        brokers: env("CARDIOWATCH_TEST_KAFKA_SASL_BROKERS"),
        sasl_password_env: Some(password_env.into()),
        ..KafkaConfig::default()
    };
    kafka.settings = BTreeMap::from([
        ("security.protocol".into(), "SASL_PLAINTEXT".into()),
        ("sasl.mechanism".into(), mechanism.into()),
        ("sasl.username".into(), env("CARDIOWATCH_TEST_KAFKA_USER")),
    ]);
    kafka
}

/// Builds a config for the TLS listener that trusts the CA in `ca_file`, or the system's
/// CA store when it is None.
fn tls_config(ca_file: Option<String>) -> KafkaConfig {
    let mut kafka = KafkaConfig {
        brokers: env("CARDIOWATCH_TEST_KAFKA_SSL_BROKERS"),
        ..KafkaConfig::default()
    };
    kafka
        .settings
        .insert("security.protocol".into(), "SSL".into());
    if let Some(ca_file) = ca_file {
        kafka.settings.insert("ssl.ca.location".into(), ca_file);
    }
    kafka
}

/// Names the topics and the group of `kafka` after `test` with a unique suffix.
fn with_unique_topics(mut kafka: KafkaConfig, test: &str) -> KafkaConfig {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = |role: &str| format!("{test}-{}-{nanos}-{role}", std::process::id());
    kafka.group_id = name("group");
    kafka.vitals_topics = vec![name("vitals"), name("heart_data")];
    kafka.patients_topic = name("patients");
    kafka.predictions_topic = name("predictions");
    kafka.alerts_topic = name("alerts");
    kafka.dead_letter_topic = name("dead-letters");
    kafka.topic_hospitals = BTreeMap::from([(name("heart_data"), "legacy".to_string())]);
    kafka
}

async fn create_topics(kafka: &KafkaConfig) {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka).create().unwrap();
    let mut names = kafka.vitals_topics.clone();
    names.extend([
        kafka.patients_topic.clone(),
        kafka.predictions_topic.clone(),
        kafka.alerts_topic.clone(),
        kafka.dead_letter_topic.clone(),
    ]);
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, 1, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(&topics, &options).await.unwrap();
    for result in results {
        assert!(result.is_ok(), "topic creation failed: {result:?}");
    }
}

/// Produces a profile and one reading of patient `p-001` in hospital `st-marys`.
fn produce_profile_and_reading(kafka: &KafkaConfig) {
    let producer: BaseProducer = client_config(kafka).create().unwrap();
    let profile = json!({"profile": {"age_years": 61, "sex": "female", "height_cm": 160,
        "weight_kg": 70, "cholesterol_category": 2, "glucose_category": 1, "smoker": false,
        "alcohol": false, "physically_active": true}})
    .to_string();
    let reading = json!({"time_ms": 1_796_379_300_000i64,
        "vitals": {"heart_rate_bpm": 88, "respiratory_rate_per_min": 16, "spo2_percent": 97,
            "systolic_bp_mmhg": 150, "diastolic_bp_mmhg": 95, "temperature_celsius": 36.9}})
    .to_string();
    for (topic, payload) in [
        (&kafka.patients_topic, &profile),
        (&kafka.vitals_topics[0], &reading),
    ] {
        let headers = OwnedHeaders::new().insert(Header {
            key: "hospital-id",
            value: Some("st-marys"),
        });
        let record = BaseRecord::to(topic)
            .key("p-001")
            .payload(payload)
            .headers(headers);
        producer.send(record).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Reads the first record of the predictions topic, waiting up to `timeout`.
fn first_prediction(kafka: &KafkaConfig, timeout: Duration) -> Option<Value> {
    let consumer: BaseConsumer = client_config(kafka)
        .set("group.id", format!("{}-reader", kafka.group_id))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&kafka.predictions_topic]).unwrap();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            return Some(serde_json::from_slice(message.payload().unwrap()).unwrap());
        }
    }
    None
}

/// Sends one reading through a worker connected with `kafka` and returns its prediction.
async fn round_trip(kafka: KafkaConfig) -> Value {
    if let Err(error) = check_brokers(&kafka).await {
        panic!("the start-up check failed: {error}");
    }
    create_topics(&kafka).await;
    produce_profile_and_reading(&kafka);
    let pipeline = common::pipeline_with(|_| {});
    let stats = std::sync::Arc::new(Stats::default());
    let worker = Worker::new(kafka.clone(), pipeline, stats, None).unwrap();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(worker.run(shutdown));
    let reader_kafka = kafka.clone();
    let prediction = tokio::task::spawn_blocking(move || {
        first_prediction(&reader_kafka, Duration::from_secs(60))
    })
    .await
    .unwrap();
    // A worker that failed has dropped its receiver, so this send may fail.
    let _ = stop.send(true);
    if let Err(error) = task.await.unwrap() {
        panic!("the worker failed: {error:#}");
    }
    prediction.expect("no prediction within 60 s")
}

fn assert_scored(prediction: &Value, kafka: &KafkaConfig) {
    assert_eq!(prediction["status"], "scored", "{prediction}");
    assert_eq!(prediction["patient_id"], "p-001", "{prediction}");
    assert_eq!(
        prediction["source"]["topic"], kafka.vitals_topics[0],
        "{prediction}"
    );
    assert_eq!(prediction["source"]["offset"], 0, "{prediction}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_round_trip() {
    let mut kafka = with_unique_topics(scram_config("SCRAM-SHA-256", PASSWORD_ENV), "scram");
    kafka.validate_and_load_secrets().unwrap();
    let prediction = round_trip(kafka.clone()).await;
    assert_scored(&prediction, &kafka);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip() {
    let ca = env("CARDIOWATCH_TEST_KAFKA_CA");
    let mut kafka = with_unique_topics(tls_config(Some(ca)), "tls");
    kafka.validate_and_load_secrets().unwrap();
    let prediction = round_trip(kafka.clone()).await;
    assert_scored(&prediction, &kafka);
}

#[tokio::test]
async fn scram_sha_512_check_passes() {
    let mut kafka = scram_config("SCRAM-SHA-512", PASSWORD_ENV);
    kafka.validate_and_load_secrets().unwrap();
    check_brokers(&kafka).await.unwrap();
}

#[tokio::test]
async fn wrong_password_fails_check() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("kafka-password");
    std::fs::write(&password_file, "not-the-password\n").unwrap();
    let mut kafka = scram_config("SCRAM-SHA-256", PASSWORD_ENV);
    kafka.sasl_password_env = None;
    kafka.sasl_password_file = Some(password_file.clone());
    kafka.validate_and_load_secrets().unwrap();

    let started = Instant::now();
    let error = check_brokers(&kafka).await.unwrap_err().to_string();
    let elapsed = started.elapsed();
    println!("wrong password: the check failed after {elapsed:?}");

    let user = env("CARDIOWATCH_TEST_KAFKA_USER");
    assert!(
        error.starts_with(&format!(
            "Kafka authentication failed for user {user:?} with mechanism SCRAM-SHA-256"
        )),
        "{error}"
    );
    let source = format!("check the password in the file {}", password_file.display());
    assert!(error.contains(&source), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    assert!(elapsed < CHECK_LIMIT, "the check took {elapsed:?}");
}

#[tokio::test]
async fn untrusted_certificate_fails_check() {
    let other_ca = env("CARDIOWATCH_TEST_KAFKA_OTHER_CA");
    let cases = [
        (None, "not verified with the system's CA store".to_string()),
        (
            Some(other_ca.clone()),
            format!("not verified with the CA in ssl.ca.location {other_ca:?}"),
        ),
    ];
    for (ca_file, expected) in cases {
        let mut kafka = tls_config(ca_file.clone());
        kafka.validate_and_load_secrets().unwrap();
        let started = Instant::now();
        let error = check_brokers(&kafka).await.unwrap_err().to_string();
        let elapsed = started.elapsed();
        println!("{ca_file:?}: the check failed after {elapsed:?}");

        assert!(
            error.starts_with("TLS handshake with the Kafka brokers at"),
            "{ca_file:?}: {error}"
        );
        assert!(error.contains(&expected), "{ca_file:?}: {error}");
        assert!(
            error.contains("certificate verify failed"),
            "{ca_file:?}: {error}"
        );
        assert!(
            elapsed < CHECK_LIMIT,
            "{ca_file:?}: the check took {elapsed:?}"
        );
    }
}

#[test]
fn run_exits_on_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cardiowatch.toml");
    let kafka = scram_config("SCRAM-SHA-256", "CARDIOWATCH_KAFKA_PASSWORD");
    let text = format!(
        "[kafka]\nbrokers = {:?}\nsasl_password_env = \"CARDIOWATCH_KAFKA_PASSWORD\"\n\
         [kafka.settings]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
         \"sasl.mechanism\" = \"SCRAM-SHA-256\"\n\"sasl.username\" = {:?}\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n",
        kafka.brokers, kafka.settings["sasl.username"]
    );
    std::fs::write(&config, text).unwrap();

    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_cardiowatch"))
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(common::repo_root())
        .env_remove("RUST_LOG")
        .env("CARDIOWATCH_KAFKA_PASSWORD", "not-the-password")
        .output()
        .unwrap();
    let elapsed = started.elapsed();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "run succeeded: {stderr}");
    assert!(
        stderr.contains("error: Kafka authentication failed for user"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the environment variable CARDIOWATCH_KAFKA_PASSWORD"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line of output: {stderr}");
    assert!(elapsed < CHECK_LIMIT, "run took {elapsed:?}");
}

#[test]
fn run_rejects_password_in_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cardiowatch.toml");
    let text = "[kafka.settings]\n\"security.protocol\" = \"SASL_SSL\"\n\
                \"sasl.mechanism\" = \"SCRAM-SHA-256\"\n\"sasl.username\" = \"alice\"\n\
                \"sasl.password\" = \"written-in-the-file\"\n";
    std::fs::write(&config, text).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_cardiowatch"))
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(common::repo_root())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "run succeeded: {stderr}");
    assert!(
        stderr.contains("\"sasl.password\" must not be written in the config file"),
        "{stderr}"
    );
    assert!(stderr.contains("sasl_password_env"), "{stderr}");
    assert!(!stderr.contains("written-in-the-file"), "{stderr}");
}
