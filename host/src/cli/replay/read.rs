//! Reads a range of a topic outside any consumer group: resolves `--from`/`--to` times
//! and offsets to a start and end offset per partition, then polls with `assign()`.
//!
//! The consumer never subscribes and never commits, so it joins no group and leaves no
//! committed offsets. It still sets a `group.id`, because librdkafka rejects `assign()`
//! without one.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message as _, Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::pipeline::InputRecord;
use crate::source::{client_config, to_input_record};

/// How long one metadata, watermark or offset lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a poll may return nothing before the read is declared stuck.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Start and end of a replay range, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    /// First offset to read, per partition; `None` as key applies to every partition.
    pub from_offsets: BTreeMap<Option<i32>, i64>,
    /// Last offset to read (inclusive), per partition or for all.
    pub to_offsets: BTreeMap<Option<i32>, i64>,
    /// First Kafka timestamp to read, milliseconds since the epoch.
    pub from_ms: Option<i64>,
    /// First Kafka timestamp not read, milliseconds since the epoch.
    pub to_ms: Option<i64>,
}

/// Offsets to read in one partition: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PartitionRange {
    /// Partition.
    pub partition: i32,
    /// First offset read.
    pub start: i64,
    /// First offset not read.
    pub end: i64,
}

impl PartitionRange {
    /// Number of offsets in the range; compacted or aborted records may leave gaps.
    pub fn len(&self) -> i64 {
        (self.end - self.start).max(0)
    }
}

/// Creates a consumer that joins no group and never commits.
pub fn create_consumer(kafka: &KafkaConfig) -> anyhow::Result<BaseConsumer> {
    client_config(kafka)
        .set(
            "group.id",
            format!("{}-replay-{}", kafka.group_id, std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("failed to create the Kafka consumer")
}

/// Returns the partitions of `topic`.
pub fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), LOOKUP_TIMEOUT)
        .with_context(|| format!("failed to fetch the metadata of topic {topic:?}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        anyhow::bail!("topic {topic:?} not found: check the name with --topic and --brokers");
    }
    Ok(partitions)
}

/// Resolves `bounds` to an offset range per partition of `topic`, clamped to what the
/// partition holds.
pub fn resolve(
    consumer: &BaseConsumer,
    topic: &str,
    bounds: &Bounds,
) -> anyhow::Result<Vec<PartitionRange>> {
    let partitions = partitions(consumer, topic)?;
    for partition in bounds.from_offsets.keys().chain(bounds.to_offsets.keys()) {
        if let Some(partition) = partition
            && !partitions.contains(partition)
        {
            anyhow::bail!(
                "partition {partition} not found in topic {topic:?}: it has partitions 0..{}",
                partitions.len()
            );
        }
    }
    let from_times = match bounds.from_ms {
        Some(ms) => offsets_for_time(consumer, topic, &partitions, ms)?,
        None => BTreeMap::new(),
    };
    let to_times = match bounds.to_ms {
        Some(ms) => offsets_for_time(consumer, topic, &partitions, ms)?,
        None => BTreeMap::new(),
    };
    let mut ranges = Vec::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, LOOKUP_TIMEOUT)
            .with_context(|| format!("failed to fetch the offsets of {topic}/{partition}"))?;
        let pick = |map: &BTreeMap<Option<i32>, i64>| {
            map.get(&Some(partition))
                .or_else(|| map.get(&None))
                .copied()
        };
        let mut start = low;
        let mut end = high;
        if let Some(from) = pick(&bounds.from_offsets) {
            start = start.max(from);
        }
        if let Some(to) = pick(&bounds.to_offsets) {
            end = end.min(to.saturating_add(1));
        }
        if let Some(&from) = from_times.get(&partition) {
            start = start.max(from.unwrap_or(high));
        }
        if let Some(&to) = to_times.get(&partition) {
            end = end.min(to.unwrap_or(high));
        }
        ranges.push(PartitionRange {
            partition,
            start,
            end: end.max(start),
        });
    }
    Ok(ranges)
}

/// Returns, per partition, the first offset whose timestamp is at or after `ms`; `None`
/// where no record is that late.
fn offsets_for_time(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    ms: i64,
) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
    let mut list = TopicPartitionList::new();
    for &partition in partitions {
        list.add_partition_offset(topic, partition, Offset::Offset(ms))?;
    }
    let found = consumer
        .offsets_for_times(list, LOOKUP_TIMEOUT)
        .with_context(|| format!("failed to look up offsets by time in topic {topic:?}"))?;
    let mut offsets = BTreeMap::new();
    for element in found.elements() {
        let offset = match element.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        };
        offsets.insert(element.partition(), offset);
    }
    Ok(offsets)
}

/// Reads every record of `ranges` and passes it to `handle`, in each partition's order.
///
/// # Errors
///
/// A Kafka error, or no progress for 30 s while records are still expected.
pub fn read_ranges(
    consumer: &BaseConsumer,
    topic: &str,
    ranges: &[PartitionRange],
    mut handle: impl FnMut(InputRecord),
) -> anyhow::Result<()> {
    let mut remaining: BTreeMap<i32, i64> = ranges
        .iter()
        .filter(|range| range.len() > 0)
        .map(|range| (range.partition, range.end))
        .collect();
    let mut list = TopicPartitionList::new();
    for range in ranges.iter().filter(|range| range.len() > 0) {
        list.add_partition_offset(topic, range.partition, Offset::Offset(range.start))?;
    }
    consumer.assign(&list)?;
    let mut last_progress = std::time::Instant::now();
    while !remaining.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            // A transaction marker or a compacted record may hold the last offset before
            // `end`, so no message arrives for it but the position moves past it.
            drop_finished(consumer, &mut remaining)?;
            if remaining.is_empty() {
                break;
            }
            if last_progress.elapsed() > STALL_TIMEOUT {
                anyhow::bail!(
                    "timed out reading topic {topic:?}: no record for {} s with partitions {:?} \
                     unfinished",
                    STALL_TIMEOUT.as_secs(),
                    remaining.keys().collect::<Vec<_>>()
                );
            }
            continue;
        };
        let message = message.with_context(|| format!("failed to read topic {topic:?}"))?;
        last_progress = std::time::Instant::now();
        let partition = message.partition();
        let Some(&end) = remaining.get(&partition) else {
            continue;
        };
        let offset = message.offset();
        if offset < end {
            handle(to_input_record(&message));
        }
        if offset + 1 >= end {
            remaining.remove(&partition);
        }
    }
    consumer.unassign()?;
    Ok(())
}

/// Removes the partitions whose position has reached their end offset.
fn drop_finished(
    consumer: &BaseConsumer,
    remaining: &mut BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let position = consumer.position()?;
    for element in position.elements() {
        if let Offset::Offset(offset) = element.offset()
            && remaining
                .get(&element.partition())
                .is_some_and(|end| offset >= *end)
        {
            remaining.remove(&element.partition());
        }
    }
    Ok(())
}

/// Reads every partition of `topic` from the beginning to its current end.
///
/// # Errors
///
/// As [`read_ranges`]; a missing topic is an error too.
pub fn read_all(
    consumer: &BaseConsumer,
    topic: &str,
    handle: impl FnMut(InputRecord),
) -> anyhow::Result<usize> {
    let ranges = resolve(consumer, topic, &Bounds::default())?;
    read_ranges(consumer, topic, &ranges, handle)?;
    Ok(ranges.iter().map(|range| range.len() as usize).sum())
}

/// Parses `--from-offset`/`--to-offset` values: `OFFSET` for every partition or
/// `PARTITION:OFFSET`.
pub fn parse_offsets(
    option: &str,
    values: &[String],
) -> anyhow::Result<BTreeMap<Option<i32>, i64>> {
    let mut offsets = BTreeMap::new();
    for value in values {
        let (partition, offset) = match value.split_once(':') {
            Some((partition, offset)) => (Some(partition), offset),
            None => (None, value.as_str()),
        };
        let invalid = || {
            anyhow::anyhow!(
                "invalid {option} {value:?}: expected OFFSET or PARTITION:OFFSET, e.g. 1200 or 0:1200"
            )
        };
        let partition = match partition {
            Some(text) => Some(text.trim().parse::<i32>().map_err(|_| invalid())?),
            None => None,
        };
        let offset = offset.trim().parse::<i64>().map_err(|_| invalid())?;
        if offset < 0 || partition.is_some_and(|p| p < 0) {
            return Err(invalid());
        }
        offsets.insert(partition, offset);
    }
    Ok(offsets)
}

/// Parses an RFC 3339 time to milliseconds since the epoch.
pub fn parse_time(option: &str, value: &str) -> anyhow::Result<i64> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|time| time.timestamp_millis())
        .map_err(|error| {
            anyhow::anyhow!(
                "invalid {option} {value:?}: {error}: expected an RFC 3339 time such as \
                 2026-12-04T08:00:00Z"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_parses_rfc3339_with_offset() {
        let ms = parse_time("--from", "2026-12-04T09:00:00+01:00").unwrap();
        assert_eq!(ms, parse_time("--from", "2026-12-04T08:00:00Z").unwrap());
        assert_eq!(ms % 1000, 0);
    }

    #[test]
    fn offsets_parse_per_partition_and_for_all() {
        let offsets = parse_offsets("--from-offset", &["5".into(), "1:90".into()]).unwrap();
        assert_eq!(offsets.get(&None), Some(&5));
        assert_eq!(offsets.get(&Some(1)), Some(&90));
        assert!(parse_offsets("--from-offset", &["-3".into()]).is_err());
        assert!(parse_offsets("--from-offset", &["a:3".into()]).is_err());
    }
}
