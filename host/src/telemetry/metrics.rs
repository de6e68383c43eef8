//! Prometheus metrics of one host instance, exposed on `/metrics`.
//!
//! Labels are hospitals, roles, kinds and Kafka partitions: never a patient id, an
//! offset or anything else whose values grow without bound.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-hospital counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HospitalLabels {
    /// Hospital id.
    pub hospital: String,
}

/// Labels of prediction counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PredictionLabels {
    /// Hospital id.
    pub hospital: String,
    /// `scored`, `news2_only` or `late`.
    pub status: String,
}

/// Labels of alert counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// Hospital id.
    pub hospital: String,
    /// `news2` or `model`.
    pub kind: String,
    /// `info`, `urgent` or `emergency`.
    pub severity: String,
}

/// Labels of dead-letter counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    /// Hospital id, `-` when routing failed.
    pub hospital: String,
    /// Dead-letter kind.
    pub kind: String,
}

/// Labels of component call metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// Hospital id.
    pub hospital: String,
    /// Component role.
    pub role: String,
}

/// Labels of per-partition gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// Topic.
    pub topic: String,
    /// Partition number.
    pub partition: String,
}

/// Labels of sink error counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    /// Sink name, e.g. `kafka` or `influxdb`.
    pub sink: String,
}

/// Every metric family, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Vitals records consumed.
    pub messages: Family<HospitalLabels, Counter>,
    /// Predictions produced.
    pub predictions: Family<PredictionLabels, Counter>,
    /// Alerts produced.
    pub alerts: Family<AlertLabels, Counter>,
    /// Dead letters produced.
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    /// Component call latency in seconds.
    pub call_seconds: Family<CallLabels, Histogram>,
    /// Component calls that trapped, timed out or exceeded memory.
    pub guest_failures: Family<CallLabels, Counter>,
    /// Consumer lag in records per partition.
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    /// Output delivery or write failures per sink.
    pub sink_errors: Family<SinkLabels, Counter>,
    /// Components quarantined after repeated failures, per hospital.
    pub quarantines: Family<HospitalLabels, Counter>,
}

fn call_histogram() -> Histogram {
    // 1 µs to about 4 s, doubling.
    Histogram::new(exponential_buckets(1e-6, 2.0, 22))
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cardiowatch");
        let metrics = Metrics {
            registry: Arc::new(Registry::default()),
            messages: Family::default(),
            predictions: Family::default(),
            alerts: Family::default(),
            dead_letters: Family::default(),
            call_seconds: Family::new_with_constructor(call_histogram),
            guest_failures: Family::default(),
            consumer_lag: Family::default(),
            sink_errors: Family::default(),
            quarantines: Family::default(),
        };
        registry.register(
            "messages",
            "Vitals records consumed",
            metrics.messages.clone(),
        );
        registry.register(
            "predictions",
            "Predictions produced",
            metrics.predictions.clone(),
        );
        registry.register("alerts", "Alerts produced", metrics.alerts.clone());
        registry.register(
            "dead_letters",
            "Records sent to the dead-letter topic",
            metrics.dead_letters.clone(),
        );
        registry.register(
            "component_call_seconds",
            "Component call latency in seconds",
            metrics.call_seconds.clone(),
        );
        registry.register(
            "guest_failures",
            "Component calls that trapped, timed out or ran out of memory",
            metrics.guest_failures.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records behind the end of each partition",
            metrics.consumer_lag.clone(),
        );
        registry.register(
            "sink_errors",
            "Failed output deliveries or writes",
            metrics.sink_errors.clone(),
        );
        registry.register(
            "quarantines",
            "Components quarantined after failing on records in a row",
            metrics.quarantines.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            ..metrics
        }
    }

    /// Records one component call.
    pub fn observe_call(&self, hospital: &str, role: &str, elapsed: Duration, failed: bool) {
        let labels = CallLabels {
            hospital: hospital.to_string(),
            role: role.to_string(),
        };
        self.call_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if failed {
            self.guest_failures.get_or_create(&labels).inc();
        }
    }

    /// Renders the OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names_counters_with_prefix() {
        let metrics = Metrics::new();
        metrics
            .messages
            .get_or_create(&HospitalLabels {
                hospital: "h1".into(),
            })
            .inc();
        metrics.observe_call("h1", "score", Duration::from_micros(5), true);
        let text = metrics.render();
        assert!(
            text.contains("cardiowatch_messages_total{hospital=\"h1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cardiowatch_guest_failures_total{hospital=\"h1\",role=\"score\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cardiowatch_component_call_seconds_bucket"),
            "{text}"
        );
    }
}
