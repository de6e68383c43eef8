//! End to end through librdkafka's mock cluster: records in, one outcome per record out,
//! offsets committed only after the outputs were acknowledged.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cardiowatch::config::KafkaConfig;
use cardiowatch::embedded::EmbeddedCluster;
use cardiowatch::sink::influx::{InfluxConfig, InfluxSink, Secret};
use cardiowatch::source::Worker;
use cardiowatch::stats::Stats;
use cardiowatch::telemetry::Telemetry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCoordinator;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::sync::watch;

const PARTITIONS: i32 = 3;

fn kafka_config(brokers: &str, group: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers.into(),
        group_id: group.into(),
        ..KafkaConfig::default()
    }
}

fn topics(kafka: &KafkaConfig) -> Vec<String> {
    let mut topics = kafka.vitals_topics.clone();
    topics.extend([
        kafka.patients_topic.clone(),
        kafka.predictions_topic.clone(),
        kafka.alerts_topic.clone(),
        kafka.dead_letter_topic.clone(),
    ]);
    topics
}

/// One output record: topic, JSON body (null for dead letters) and headers.
type Output = (String, Value, Vec<(String, String)>);

/// One input: topic, key, optional hospital header, payload.
type Input = (&'static str, String, Option<&'static str>, Value);

/// A mix of valid and invalid records in both formats; returns them and how many are
/// expected to become dead letters.
fn inputs() -> (Vec<Input>, usize) {
    let mut inputs: Vec<Input> = Vec::new();
    let mut invalid = 0;
    for i in 0..40 {
        let patient = format!("p-{:03}", i % 10);
        let vitals = json!({"time_ms": 1_796_379_300_000i64 + i * 60_000,
            "vitals": {"heart_rate_bpm": 70 + i, "respiratory_rate_per_min": 16, "spo2_percent": 97,
                "systolic_bp_mmhg": 125, "diastolic_bp_mmhg": 80, "temperature_celsius": 36.9}});
        inputs.push(("vitals", patient, Some("st-marys"), vitals));
    }
    for i in 0..20 {
        let legacy = json!({"id": i, "age": 50 + i, "gender": i % 2, "height": 168, "weight": 75,
            "ap_hi": 130 + i, "ap_lo": 85, "cholesterol": 1 + i % 3, "gluc": 1, "smoke": 0,
            "alco": 0, "active": 1});
        inputs.push(("heart_data", format!("{i}"), None, legacy));
    }
    let bad: [Input; 4] = [
        (
            "vitals",
            "p-bad1".into(),
            Some("st-marys"),
            json!({"vitals": {"heart_rate_bpm": 412}}),
        ),
        (
            "vitals",
            "p-bad2".into(),
            Some("atlantis"),
            json!({"vitals": {"heart_rate_bpm": 80}}),
        ),
        (
            "heart_data",
            "99".into(),
            None,
            json!({"id": 99, "age": 50}),
        ),
        (
            "vitals",
            "p-bad3".into(),
            Some("st-marys"),
            json!({"vitals": {"heart_rte": 80}}),
        ),
    ];
    for input in bad {
        invalid += 1;
        inputs.push(input);
    }
    (inputs, invalid)
}

fn produce(brokers: &str, inputs: &[Input]) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let profile = json!({"profile": {"age_years": 61, "sex": "female", "height_cm": 160,
        "weight_kg": 70, "cholesterol_category": 2, "glucose_category": 1, "smoker": false,
        "alcohol": false, "physically_active": true}});
    let hospital = OwnedHeaders::new().insert(Header {
        key: "hospital-id",
        value: Some("st-marys"),
    });
    for i in 0..10 {
        let key = format!("p-{i:03}");
        let payload = profile.to_string();
        let record = BaseRecord::to("patients")
            .key(&key)
            .payload(&payload)
            .headers(hospital.clone());
        producer.send(record).unwrap();
    }
    for (topic, key, hospital, payload) in inputs {
        let payload = payload.to_string();
        let mut record = BaseRecord::to(topic).key(key).payload(&payload);
        if let Some(id) = hospital {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "hospital-id",
                value: Some(*id),
            }));
        }
        producer.send(record).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Reads `topics` from the beginning until `expected` records arrived (or the timeout),
/// then 2 s more, so that an unexpected extra record is seen too.
fn collect(brokers: &str, topics: &[&str], expected: usize, timeout: Duration) -> Vec<Output> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&list).unwrap();
    let mut deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    let mut settling = false;
    while Instant::now() < deadline {
        if !settling && records.len() >= expected {
            settling = true;
            deadline = Instant::now() + Duration::from_secs(2);
        }
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let body = if message.topic() == "dead-letters" {
            Value::Null
        } else {
            serde_json::from_slice(message.payload().unwrap()).unwrap()
        };
        records.push((message.topic().to_string(), body, headers));
    }
    records
}

/// Source coordinates of an output: from the body of a prediction, from the headers of
/// a dead letter.
fn source_of(topic: &str, body: &Value, headers: &[(String, String)]) -> (String, i64, i64) {
    if topic == "dead-letters" {
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).unwrap().1.clone();
        (
            header("cardiowatch-source-topic"),
            header("cardiowatch-source-partition").parse().unwrap(),
            header("cardiowatch-source-offset").parse().unwrap(),
        )
    } else {
        let source = &body["source"];
        (
            source["topic"].as_str().unwrap().into(),
            source["partition"].as_i64().unwrap(),
            source["offset"].as_i64().unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_has_one_outcome() {
    let kafka0 = KafkaConfig::default();
    let cluster = EmbeddedCluster::start(1, &topics(&kafka0), PARTITIONS).unwrap();
    let kafka = kafka_config(cluster.bootstrap_servers(), "e2e-outcomes");
    let (inputs, invalid) = inputs();
    produce(&kafka.brokers, &inputs);

    let stats = Arc::new(Stats::default());
    let worker = Worker::new(kafka.clone(), common::pipeline(), stats.clone(), None).unwrap();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(worker.run(shutdown));

    let brokers = kafka.brokers.clone();
    let expected = inputs.len();
    let outputs = tokio::task::spawn_blocking(move || {
        collect(
            &brokers,
            &["predictions", "dead-letters"],
            expected,
            Duration::from_secs(30),
        )
    })
    .await
    .unwrap();
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    let dead: Vec<_> = outputs
        .iter()
        .filter(|(topic, _, _)| topic == "dead-letters")
        .collect();
    assert_eq!(outputs.len(), inputs.len(), "one output per input record");
    assert_eq!(dead.len(), invalid, "dead letters");
    let sources: BTreeSet<_> = outputs.iter().map(|(t, b, h)| source_of(t, b, h)).collect();
    assert_eq!(
        sources.len(),
        inputs.len(),
        "each input's coordinates appear exactly once"
    );
    for (_, _, headers) in &dead {
        let error = headers
            .iter()
            .find(|(k, _)| k == "cardiowatch-error")
            .map(|(_, v)| v.clone());
        assert!(
            error.is_some_and(|e| !e.is_empty()),
            "dead letter without a reason: {headers:?}"
        );
    }
    let scored = outputs
        .iter()
        .filter(|(_, body, _)| body["status"] == "scored")
        .count();
    assert_eq!(
        scored,
        inputs.len() - invalid,
        "every valid record had a profile, so the model ran"
    );

    let snapshot = stats.snapshot();
    assert_eq!(snapshot.messages as usize, inputs.len());
    assert_eq!(snapshot.profiles, 10);
    assert_eq!(
        common::committed_offsets(&kafka, PARTITIONS),
        common::end_offsets(&kafka, PARTITIONS),
        "committed offsets reach the end"
    );
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_wait_for_acknowledged_outputs() {
    let kafka0 = KafkaConfig::default();
    let cluster = EmbeddedCluster::start(2, &topics(&kafka0), PARTITIONS).unwrap();
    let kafka = kafka_config(cluster.bootstrap_servers(), "e2e-commits");
    // Inputs and the group coordinator on broker 1, every output topic on broker 2.
    cluster.with_mock(|mock| {
        mock.coordinator(MockCoordinator::Group(kafka.group_id.clone()), 1)
            .unwrap();
        for partition in 0..PARTITIONS {
            for topic in ["vitals", "heart_data", "patients"] {
                mock.partition_leader(topic, partition, Some(1)).unwrap();
            }
            for topic in ["predictions", "alerts", "dead-letters"] {
                mock.partition_leader(topic, partition, Some(2)).unwrap();
            }
        }
    });
    let (inputs, _) = inputs();
    produce(&kafka.brokers, &inputs);
    cluster.with_mock(|mock| mock.broker_down(2).unwrap());

    let stats = Arc::new(Stats::default());
    let worker = Worker::new(kafka.clone(), common::pipeline(), stats.clone(), None).unwrap();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(worker.run(shutdown));
    let deadline = Instant::now() + Duration::from_secs(20);
    while (stats.snapshot().messages as usize) < inputs.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        stats.snapshot().messages as usize,
        inputs.len(),
        "every input consumed while outputs are blocked"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let while_down = common::committed_offsets(&kafka, PARTITIONS);
    assert!(
        while_down.values().all(|&offset| offset == 0) || while_down.is_empty(),
        "offsets committed while outputs could not be delivered: {while_down:?}"
    );

    cluster.with_mock(|mock| mock.broker_up(2).unwrap());
    let expected = common::end_offsets(&kafka, PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::committed_offsets(&kafka, PARTITIONS) != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        common::committed_offsets(&kafka, PARTITIONS),
        expected,
        "offsets advance once outputs are acknowledged"
    );
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_metrics_store_stalls_nothing() {
    let kafka0 = KafkaConfig::default();
    let cluster = EmbeddedCluster::start(1, &topics(&kafka0), PARTITIONS).unwrap();
    let kafka = kafka_config(cluster.bootstrap_servers(), "e2e-dead-influx");
    let (inputs, _) = inputs();
    produce(&kafka.brokers, &inputs);

    // Nothing listens on port 1: every write fails and is retried in the background.
    let mut influx = InfluxConfig::v1("http://127.0.0.1:1", "cardiowatch");
    influx.patient_key = Some(Secret::new("a-test-key-of-16-bytes-or-more"));
    let telemetry = Arc::new(Telemetry::default());
    telemetry.set_influx(InfluxSink::start(&influx).unwrap());
    let worker = Worker::new(
        kafka.clone(),
        common::pipeline(),
        telemetry.stats.clone(),
        None,
    )
    .unwrap()
    .with_telemetry(telemetry.clone());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(worker.run(shutdown));

    let expected = common::end_offsets(&kafka, PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::committed_offsets(&kafka, PARTITIONS) != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        common::committed_offsets(&kafka, PARTITIONS),
        expected,
        "offsets advance while the metrics store is down"
    );
    assert_eq!(telemetry.stats.snapshot().messages as usize, inputs.len());
    let influx = telemetry.influx().unwrap();
    assert_eq!(influx.written_points(), 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counters = influx.counters();
    assert!(
        counters.write_errors > 0,
        "the sink tried and failed to write: {counters:?}"
    );
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    cluster.shutdown();
}
