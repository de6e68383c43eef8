//! Counters of what one host instance has done, for summaries and the live display.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters, shared between the consume loop and whoever reports them.
#[derive(Debug, Default)]
pub struct Stats {
    /// Vitals records consumed.
    pub messages: AtomicU64,
    /// Predictions produced.
    pub predictions: AtomicU64,
    /// Predictions for which the model ran.
    pub scored: AtomicU64,
    /// Alerts produced.
    pub alerts: AtomicU64,
    /// Dead letters produced.
    pub dead_letters: AtomicU64,
    /// Profiles stored from the patients topic.
    pub profiles: AtomicU64,
    /// Output records whose delivery failed and was retried.
    pub delivery_retries: AtomicU64,
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Vitals records consumed.
    pub messages: u64,
    /// Predictions produced.
    pub predictions: u64,
    /// Predictions for which the model ran.
    pub scored: u64,
    /// Alerts produced.
    pub alerts: u64,
    /// Dead letters produced.
    pub dead_letters: u64,
    /// Profiles stored.
    pub profiles: u64,
    /// Delivery retries.
    pub delivery_retries: u64,
}

impl Stats {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Snapshot {
            messages: read(&self.messages),
            predictions: read(&self.predictions),
            scored: read(&self.scored),
            alerts: read(&self.alerts),
            dead_letters: read(&self.dead_letters),
            profiles: read(&self.profiles),
            delivery_retries: read(&self.delivery_retries),
        }
    }
}
