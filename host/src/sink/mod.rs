//! Where outputs go: Kafka records for predictions, alerts and dead letters, and
//! InfluxDB points for dashboards.

pub mod influx;
pub mod kafka;
