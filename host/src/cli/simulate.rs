//! `simulate`: the simulator alone, producing to a Kafka cluster.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::load_kafka_config;
use crate::simulator::{SimConfig, SimHospital, SimMessage, Simulator, WireFormat};

/// Options of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// TOML file with a `[kafka]` table naming the topics.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Message format: canonical JSON with a hospital header, or the legacy flat JSON.
    #[arg(long, value_enum, default_value_t = WireFormat::Canonical)]
    format: WireFormat,
    /// Hospital id of the simulated patients (canonical format only).
    #[arg(long, default_value = "st-marys")]
    hospital: String,
    /// Number of patients.
    #[arg(long, default_value_t = 100)]
    patients: usize,
    /// Readings to produce in total.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Event-time seconds between two readings of one patient.
    #[arg(long, default_value_t = 60)]
    interval_s: u64,
    /// Share of patients that deteriorate, 0 to 1.
    #[arg(long, default_value_t = 0.25)]
    deteriorating_share: f64,
    /// Share of readings replaced by an invalid message, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    invalid_share: f64,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Produces one message, logging a failed delivery.
pub async fn send(producer: &FutureProducer, message: &SimMessage) {
    let headers = message
        .headers
        .iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value),
            })
        });
    let mut record = FutureRecord::to(&message.topic)
        .key(&message.key)
        .payload(&message.payload)
        .headers(headers);
    if let Some(timestamp_ms) = message.timestamp_ms {
        record = record.timestamp(timestamp_ms);
    }
    if let Err((error, _)) = producer
        .send(record, Timeout::After(Duration::from_secs(30)))
        .await
    {
        tracing::warn!(%error, topic = %message.topic, "failed to produce a simulated message");
    }
}

/// Runs `simulate`.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let mut kafka = load_kafka_config(args.config.as_ref())?;
    kafka.brokers = args.brokers.clone();
    let producer = crate::source::create_producer(&kafka)?;
    let hospital_id = if args.format == WireFormat::Legacy {
        "legacy".into()
    } else {
        args.hospital.clone()
    };
    let config = SimConfig {
        patients: args.patients,
        hospitals: vec![SimHospital {
            id: hospital_id,
            format: args.format,
        }],
        interval_s: args.interval_s,
        deteriorating_share: args.deteriorating_share,
        invalid_share: args.invalid_share,
        vitals_topic: kafka
            .vitals_topics
            .first()
            .cloned()
            .unwrap_or_else(|| "vitals".into()),
        legacy_topic: "heart_data".into(),
        patients_topic: kafka.patients_topic.clone(),
        seed: args.seed,
    };
    let start_ms = super::serve::now_ms();
    let mut simulator = Simulator::new(config, start_ms);
    for message in simulator.profile_messages() {
        send(&producer, &message).await;
    }
    let progress = ProgressBar::new(args.count).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} readings {per_sec} eta {eta}")
            .expect("valid template"),
    );
    let mut produced = 0u64;
    let mut event_ms = start_ms;
    while produced < args.count {
        event_ms += 1000;
        for message in simulator.readings_until(event_ms) {
            if produced == args.count {
                break;
            }
            send(&producer, &message).await;
            produced += 1;
            progress.inc(1);
        }
    }
    progress.finish();
    println!(
        "produced {produced} readings ({} invalid) for {} patients",
        simulator.invalid_count(),
        args.patients
    );
    Ok(())
}
