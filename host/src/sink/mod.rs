//! Where outputs go: Kafka records for predictions, alerts and dead letters.

pub mod kafka;
