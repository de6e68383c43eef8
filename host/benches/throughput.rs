//! Messages per second through the whole consume loop of `cardiowatch up` on the
//! embedded mock cluster: consume, preprocess, score, alert, produce, commit.
//!
//! Pre-produces `CARDIOWATCH_BENCH_MESSAGES` simulated readings (default 50,000), runs
//! the worker until every offset is committed, and prints the rate. Repeats three times
//! and reports the median, since one run on a shared machine is noisy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cardiowatch::config::{KafkaConfig, load_hospitals};
use cardiowatch::embedded::EmbeddedCluster;
use cardiowatch::pipeline::{Hospital, Pipeline, load_component_set};
use cardiowatch::runtime::{Limits, Runtime};
use cardiowatch::simulator::{SimConfig, SimHospital, Simulator, WireFormat};
use cardiowatch::source::Worker;
use cardiowatch::stats::Stats;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio::sync::watch;

fn pipeline() -> Pipeline {
    let runtime = Runtime::new(Limits::default()).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hospitals");
    let hospitals = load_hospitals(&dir)
        .unwrap()
        .into_iter()
        .map(|config| {
            let set = load_component_set(&runtime, &config).expect("run ./dev components");
            Hospital::new(&runtime, config, set).unwrap()
        })
        .collect();
    Pipeline::new(hospitals, KafkaConfig::default().topic_hospitals)
}

fn produce(brokers: &str, count: usize) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let config = SimConfig {
        patients: 500,
        hospitals: vec![
            SimHospital {
                id: "st-marys".into(),
                format: WireFormat::Canonical,
            },
            SimHospital {
                id: "northgate".into(),
                format: WireFormat::Canonical,
            },
            SimHospital {
                id: "legacy".into(),
                format: WireFormat::Legacy,
            },
        ],
        interval_s: 60,
        deteriorating_share: 0.25,
        invalid_share: 0.01,
        vitals_topic: "vitals".into(),
        legacy_topic: "heart_data".into(),
        patients_topic: "patients".into(),
        seed: 11,
    };
    let mut simulator = Simulator::new(config, 0);
    let mut messages = simulator.profile_messages();
    let mut now = 0;
    while messages.len() < count {
        now += 60_000;
        messages.extend(simulator.readings_until(now));
    }
    messages.truncate(count);
    for message in &messages {
        let headers = message
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value),
                })
            });
        let mut record = BaseRecord::to(&message.topic)
            .key(&message.key)
            .payload(&message.payload)
            .headers(headers);
        if let Some(timestamp_ms) = message.timestamp_ms {
            record = record.timestamp(timestamp_ms);
        }
        // A full local queue hands the record back; wait for deliveries and retry it.
        while let Err((_, returned)) = producer.send(record) {
            record = returned;
            producer.poll(Duration::from_millis(10));
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

async fn run_once(count: usize) -> f64 {
    let kafka0 = KafkaConfig::default();
    let mut topics = kafka0.vitals_topics.clone();
    topics.extend(["patients", "predictions", "alerts", "dead-letters"].map(String::from));
    let cluster = EmbeddedCluster::start(1, &topics, 4).unwrap();
    let kafka = KafkaConfig {
        brokers: cluster.bootstrap_servers().into(),
        ..KafkaConfig::default()
    };
    produce(&kafka.brokers, count);
    let stats = Arc::new(Stats::default());
    let worker = Worker::new(kafka, pipeline(), stats.clone(), None).unwrap();
    let (stop, shutdown) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(worker.run(shutdown));
    let total = stats.clone();
    let expected = count as u64;
    while total.snapshot().messages + total.snapshot().profiles < expected {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    cluster.shutdown();
    let rate = count as f64 / elapsed.as_secs_f64();
    let snapshot = stats.snapshot();
    println!(
        "  {count} records in {:.2} s: {rate:.0} records/s ({} predictions, {} alerts, {} dead letters)",
        elapsed.as_secs_f64(),
        snapshot.predictions,
        snapshot.alerts,
        snapshot.dead_letters
    );
    rate
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let count: usize = std::env::var("CARDIOWATCH_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("throughput through the consume loop ({count} records, mock cluster):");
    let mut rates: Vec<f64> = (0..3).map(|_| runtime.block_on(run_once(count))).collect();
    rates.sort_by(f64::total_cmp);
    println!("median {:.0} records/s", rates[1]);
}
