//! Reads the compacted patients topic in full, on every instance, outside the group.
//!
//! Profiles are small and every instance may own any patient's vitals, so each instance
//! keeps all of them, like a replicated table. The reader first reports when it has
//! reached the end offsets it saw at start-up, then keeps following the topic.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use crate::config::KafkaConfig;
use crate::pipeline::InputRecord;

use super::{client_config, to_input_record};

/// What the reader sends to the consume loop.
#[derive(Debug)]
pub enum ProfileEvent {
    /// A record of the patients topic.
    Record(InputRecord),
    /// Every record that existed at start-up has been sent.
    CaughtUp,
}

/// Starts the reader task.
///
/// # Errors
///
/// A librdkafka configuration error.
pub fn spawn(
    kafka: KafkaConfig,
    events: mpsc::Sender<ProfileEvent>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let topic = kafka.patients_topic.clone();
    spawn_reader(kafka, &topic, "profiles", events, shutdown)
}

/// Starts a reader of every partition of `topic`, from the beginning, outside the
/// consumer group; `purpose` names its client in the broker's logs.
///
/// # Errors
///
/// A librdkafka configuration error.
pub fn spawn_reader(
    kafka: KafkaConfig,
    topic: &str,
    purpose: &str,
    events: mpsc::Sender<ProfileEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let consumer: StreamConsumer = client_config(&kafka)
        .set("group.id", format!("{}-{purpose}", kafka.group_id))
        // Changes on the control topic should reach the loop in tens of milliseconds,
        // not after librdkafka's default 500 ms fetch wait.
        .set("fetch.wait.max.ms", "50")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let topic = topic.to_string();
    Ok(tokio::spawn(async move {
        let mut remaining = match assign_all(&consumer, &topic).await {
            Ok(ends) => ends,
            Err(error) => {
                tracing::warn!(%error, topic, "topic unavailable; nothing loaded from it");
                let _ = events.send(ProfileEvent::CaughtUp).await;
                return;
            }
        };
        if remaining.is_empty() {
            let _ = events.send(ProfileEvent::CaughtUp).await;
        }
        loop {
            let message = tokio::select! {
                _ = crate::source::stopped(&mut shutdown) => return,
                message = consumer.recv() => message,
            };
            let record = match message {
                Ok(message) => to_input_record(&message),
                Err(error) => {
                    tracing::warn!(%error, topic, "reading the topic failed; retrying");
                    continue;
                }
            };
            let position = (record.partition, record.offset + 1);
            if events.send(ProfileEvent::Record(record)).await.is_err() {
                return;
            }
            if !remaining.is_empty() {
                remaining
                    .retain(|partition, end| !(position.0 == *partition && position.1 >= *end));
                if remaining.is_empty() {
                    let _ = events.send(ProfileEvent::CaughtUp).await;
                }
            }
        }
    }))
}

/// Assigns every partition of `topic` from the beginning and returns, per non-empty
/// partition, the end offset at this moment.
async fn assign_all(consumer: &StreamConsumer, topic: &str) -> anyhow::Result<HashMap<i32, i64>> {
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        anyhow::bail!("topic {topic:?} has no partitions");
    }
    let mut list = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        if high > low {
            ends.insert(partition, high);
        }
    }
    consumer.assign(&list)?;
    Ok(ends)
}
