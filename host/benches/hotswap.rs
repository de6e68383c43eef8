//! Time from upload to live, and the largest gap in output during a swap under load.
//!
//! Runs a whole host (registry, consume loop, admin server) on the embedded mock
//! cluster while a producer sends `CARDIOWATCH_BENCH_RATE` readings per second (default
//! 2,000) to one hospital. Every 2 s it uploads the other score component over the
//! admin API, alternating cardio and UCI, `CARDIOWATCH_BENCH_SWAPS` times (default 8).
//! It reports the median and largest upload-to-live time as the API client saw it, and
//! the validation share of it. It also reports the largest gap between consecutive
//! predictions (by their Kafka timestamps) in a window around each swap, next to the
//! largest gap in quiet windows between swaps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cardiowatch::admin::{TokenStore, digest};
use cardiowatch::config::{KafkaConfig, load_hospitals};
use cardiowatch::embedded::EmbeddedCluster;
use cardiowatch::pipeline::Pipeline;
use cardiowatch::registry::{Registry, RegistryConfig};
use cardiowatch::runtime::{Limits, Runtime};
use cardiowatch::source::Worker;
use cardiowatch::telemetry::Telemetry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

const TOKEN: &str = "bench-operator-token";
const PARTITIONS: i32 = 4;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Sends readings to st-marys at `rate` per second until `stop`.
fn produce(brokers: String, rate: usize, stop: Arc<AtomicBool>) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "1")
        .create()
        .unwrap();
    let started = Instant::now();
    let mut sent = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as usize;
        while sent < due {
            let body = serde_json::json!({
                "time_ms": 1_796_379_300_000i64 + sent as i64 * 1000,
                "vitals": {"heart_rate_bpm": 70 + sent % 60, "respiratory_rate_per_min": 16,
                    "spo2_percent": 97, "systolic_bp_mmhg": 125, "diastolic_bp_mmhg": 80,
                    "temperature_celsius": 36.9},
                "profile": {"age_years": 61, "sex": "female", "height_cm": 160,
                    "weight_kg": 70, "cholesterol_category": 2, "glucose_category": 1,
                    "smoker": false, "alcohol": false, "physically_active": true}
            })
            .to_string();
            let key = format!("p-{}", sent % 200);
            let headers = OwnedHeaders::new().insert(Header {
                key: "hospital-id",
                value: Some("st-marys"),
            });
            let record = BaseRecord::to("vitals")
                .key(&key)
                .payload(&body)
                .headers(headers);
            if producer.send(record).is_err() {
                producer.poll(Duration::from_millis(5));
                continue;
            }
            sent += 1;
        }
        producer.poll(Duration::from_millis(1));
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Kafka timestamps of every prediction, sorted.
fn prediction_times(brokers: &str) -> Vec<i64> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-reader")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition_offset("predictions", partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut times = Vec::new();
    let mut idle = 0;
    while idle < 20 {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                idle = 0;
                times.push(message.timestamp().to_millis().unwrap_or(0));
            }
            _ => idle += 1,
        }
    }
    times.sort_unstable();
    times
}

fn largest_gap(times: &[i64], from: i64, to: i64) -> i64 {
    let window: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| (from..=to).contains(t))
        .collect();
    window.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
}

async fn run(rate: usize, swaps: usize) {
    let kafka0 = KafkaConfig::default();
    let mut topics = kafka0.vitals_topics.clone();
    topics.extend([
        kafka0.patients_topic.clone(),
        kafka0.predictions_topic.clone(),
        kafka0.alerts_topic.clone(),
        kafka0.dead_letter_topic.clone(),
    ]);
    let cluster = EmbeddedCluster::start(1, &topics, PARTITIONS).unwrap();
    let registry_config = RegistryConfig::default();
    cluster
        .create_topic(&registry_config.control_topic, 1)
        .unwrap();
    let brokers = cluster.bootstrap_servers().to_string();
    let kafka = KafkaConfig {
        brokers: brokers.clone(),
        group_id: "bench-hotswap".into(),
        ..KafkaConfig::default()
    };
    let state = tempfile::tempdir().unwrap();
    let config = RegistryConfig {
        dir: state.path().to_path_buf(),
        ..registry_config
    };
    let seeds = load_hospitals(&repo().join("hospitals")).unwrap();
    let (stop_tx, shutdown) = watch::channel(false);
    let runtime = Runtime::new(Limits::default()).unwrap();
    let (registry, hospitals, follower) =
        Registry::start(runtime, &kafka, config, seeds, shutdown.clone())
            .await
            .expect("run ./dev components first");
    let pipeline = Pipeline::new(hospitals, kafka.topic_hospitals.clone());
    let telemetry = Arc::new(Telemetry::default());
    let mut tokens = TokenStore::default();
    tokens.add_operator_digest(digest(TOKEN));
    let (address, _server) = cardiowatch::admin::serve(
        "127.0.0.1:0".parse().unwrap(),
        telemetry.clone(),
        Arc::new(tokens),
        Some(registry.clone()),
    )
    .await
    .unwrap();
    let (activations_tx, activations_rx) = mpsc::channel(16);
    let follow = tokio::spawn(follower.run(activations_tx));
    let worker = Worker::new(kafka, pipeline, telemetry.stats.clone(), None)
        .unwrap()
        .with_telemetry(telemetry.clone())
        .with_control(registry.clone(), activations_rx);
    let worker = tokio::spawn(worker.run(shutdown));

    let stop_producing = Arc::new(AtomicBool::new(false));
    let producing = {
        let (brokers, stop) = (brokers.clone(), stop_producing.clone());
        std::thread::spawn(move || produce(brokers, rate, stop))
    };
    let components = [
        std::fs::read(repo().join("target/components/score-uci.wasm")).unwrap(),
        std::fs::read(repo().join("target/components/score-cardio.wasm")).unwrap(),
    ];
    let client = reqwest::Client::new();
    let url = format!("http://{address}/api/hospitals/st-marys/components/score");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut live_ms = Vec::new();
    let mut validate_ms = Vec::new();
    let mut swap_windows = Vec::new();
    for swap in 0..swaps {
        let started_ms = now_ms();
        let started = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(TOKEN)
            .body(components[swap % 2].clone())
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let status = response.status();
        let report: serde_json::Value = response.json().await.unwrap();
        assert!(status.is_success(), "deploy failed: {report}");
        live_ms.push(elapsed);
        validate_ms.push(report["validate_ms"].as_f64().unwrap_or(0.0));
        swap_windows.push((started_ms, now_ms() + 500));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop_producing.store(true, Ordering::Relaxed);
    producing.join().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_tx.send(true).unwrap();
    worker.await.unwrap().unwrap();
    follow.abort();
    let times = tokio::task::spawn_blocking(move || prediction_times(&brokers))
        .await
        .unwrap();

    let swap_gaps: Vec<f64> = swap_windows
        .iter()
        .map(|(from, to)| largest_gap(&times, *from, *to) as f64)
        .collect();
    let mut quiet_gaps: Vec<f64> = swap_windows
        .iter()
        .map(|(_, to)| largest_gap(&times, to + 200, to + 1200) as f64)
        .collect();
    let worst_live = live_ms.iter().copied().fold(0.0, f64::max);
    println!(
        "hot swap under load ({rate} records/s offered, {swaps} score swaps, {} predictions):",
        times.len()
    );
    println!(
        "  upload to live: median {:.0} ms, max {worst_live:.0} ms (validation median {:.0} ms)",
        median(&mut live_ms),
        median(&mut validate_ms)
    );
    println!(
        "  largest output gap: median {:.0} ms, max {:.0} ms within a swap; median {:.0} ms in quiet windows",
        median(&mut swap_gaps.clone()),
        swap_gaps.iter().copied().fold(0.0, f64::max),
        median(&mut quiet_gaps)
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let rate = env_or("CARDIOWATCH_BENCH_RATE", 2_000);
    let swaps = env_or("CARDIOWATCH_BENCH_SWAPS", 8);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(rate, swaps));
}
