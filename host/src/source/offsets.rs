//! Which offsets are safe to commit: per partition, everything below the oldest record
//! whose outputs are not yet all acknowledged.
//!
//! Outputs of different records are acknowledged out of order (they go to different
//! topics and partitions), so the committable position is the smallest pending offset,
//! or one past the highest finished one when nothing is pending.

use std::collections::{BTreeSet, HashMap};

/// A topic and partition.
pub type TopicPartition = (String, i32);

#[derive(Debug, Default)]
struct PartitionOffsets {
    pending: BTreeSet<i64>,
    highest_done: Option<i64>,
    committed: Option<i64>,
}

/// Tracks in-flight records per partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<TopicPartition, PartitionOffsets>,
}

impl OffsetTracker {
    /// Records that `offset` was consumed and its outputs are being produced.
    pub fn start(&mut self, partition: &TopicPartition, offset: i64) {
        self.partitions
            .entry(partition.clone())
            .or_default()
            .pending
            .insert(offset);
    }

    /// Records that every output of `offset` was acknowledged.
    pub fn finish(&mut self, partition: &TopicPartition, offset: i64) {
        let entry = self.partitions.entry(partition.clone()).or_default();
        entry.pending.remove(&offset);
        entry.highest_done = Some(entry.highest_done.map_or(offset, |done| done.max(offset)));
    }

    /// Number of records whose outputs are still in flight.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }

    /// Positions to commit (the next offset to read) that moved since the last call.
    pub fn take_committable(&mut self) -> Vec<(TopicPartition, i64)> {
        let mut ready = Vec::new();
        for (partition, offsets) in &mut self.partitions {
            let position = match offsets.pending.first() {
                Some(&oldest) => Some(oldest),
                None => offsets.highest_done.map(|done| done + 1),
            };
            if let Some(position) = position
                && offsets
                    .committed
                    .is_none_or(|committed| position > committed)
            {
                offsets.committed = Some(position);
                ready.push((partition.clone(), position));
            }
        }
        ready.sort();
        ready
    }

    /// Forgets partitions this instance no longer owns.
    pub fn forget(&mut self, partitions: &[TopicPartition]) {
        for partition in partitions {
            self.partitions.remove(partition);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        ("vitals".into(), 0)
    }

    #[test]
    fn commit_waits_for_oldest_pending() {
        let mut tracker = OffsetTracker::default();
        for offset in 0..3 {
            tracker.start(&tp(), offset);
        }
        tracker.finish(&tp(), 1);
        tracker.finish(&tp(), 2);
        assert_eq!(tracker.take_committable(), vec![(tp(), 0)]);
        tracker.finish(&tp(), 0);
        assert_eq!(tracker.take_committable(), vec![(tp(), 3)]);
    }

    #[test]
    fn commit_reports_only_progress() {
        let mut tracker = OffsetTracker::default();
        tracker.start(&tp(), 5);
        tracker.finish(&tp(), 5);
        assert_eq!(tracker.take_committable(), vec![(tp(), 6)]);
        assert!(tracker.take_committable().is_empty());
    }

    #[test]
    fn pending_offset_is_its_own_position() {
        let mut tracker = OffsetTracker::default();
        tracker.start(&tp(), 7);
        assert_eq!(tracker.take_committable(), vec![(tp(), 7)]);
        assert_eq!(tracker.in_flight(), 1);
    }
}
