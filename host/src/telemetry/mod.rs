//! What operators and clinicians look at: Prometheus metrics, readiness and the live
//! dashboard's state, fed by the consume loop.

pub mod dashboard;
pub mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::pipeline::{Outcome, Pipeline};
use crate::sink::influx::InfluxSink;
use crate::stats::Stats;
use dashboard::{Dashboard, HospitalView};
use metrics::{AlertLabels, DeadLetterLabels, HospitalLabels, Metrics, PredictionLabels};

/// Everything the consume loop reports to, shared with the admin server.
#[derive(Default)]
pub struct Telemetry {
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Dashboard state.
    pub dashboard: Dashboard,
    /// Counters for summaries.
    pub stats: Arc<Stats>,
    consuming: AtomicBool,
    components_loaded: AtomicBool,
    influx: OnceLock<InfluxSink>,
}

impl Telemetry {
    /// Creates telemetry around existing counters.
    pub fn with_stats(stats: Arc<Stats>) -> Self {
        Telemetry {
            stats,
            ..Telemetry::default()
        }
    }

    /// Sends every prediction and alert to `sink` from now on; only the first call counts.
    pub fn set_influx(&self, sink: InfluxSink) {
        let _ = self.influx.set(sink);
    }

    /// The InfluxDB sink, if one is configured.
    pub fn influx(&self) -> Option<&InfluxSink> {
        self.influx.get()
    }

    /// Records that the loop subscribed and is consuming.
    pub fn set_consuming(&self, consuming: bool) {
        self.consuming.store(consuming, Ordering::Relaxed);
    }

    /// Whether the loop is consuming.
    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::Relaxed)
    }

    /// Whether every hospital's components are loaded.
    pub fn components_loaded(&self) -> bool {
        self.components_loaded.load(Ordering::Relaxed)
    }

    /// Publishes the hospitals of a pipeline and marks components as loaded.
    pub fn register_pipeline(&self, pipeline: &Pipeline) {
        let mut hospitals: Vec<HospitalView> = pipeline
            .hospitals()
            .map(|hospital| {
                let set = hospital.components();
                HospitalView {
                    id: hospital.config.id.clone(),
                    name: hospital.config.display_name().to_string(),
                    model: format!("{}@{}", set.model.name, set.model.version),
                    components: set
                        .infos
                        .iter()
                        .map(|info| (info.role.to_string(), info.sha256.clone()))
                        .collect(),
                }
            })
            .collect();
        hospitals.sort_by(|a, b| a.id.cmp(&b.id));
        self.dashboard.set_hospitals(hospitals);
        self.components_loaded.store(true, Ordering::Relaxed);
    }

    /// Counts one outcome and feeds the dashboard.
    pub fn record_outcome(&self, outcome: &Outcome) {
        let hospital = match outcome {
            Outcome::Scored { prediction, .. } => prediction.hospital.clone(),
            Outcome::DeadLetter(dead) => dead.hospital.clone().unwrap_or_else(|| "-".into()),
        };
        self.metrics
            .messages
            .get_or_create(&HospitalLabels {
                hospital: hospital.clone(),
            })
            .inc();
        match outcome {
            Outcome::Scored {
                prediction, alerts, ..
            } => {
                let status = serde_json::to_value(prediction.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let labels = PredictionLabels {
                    hospital: hospital.clone(),
                    status,
                };
                self.metrics.predictions.get_or_create(&labels).inc();
                self.dashboard.record_prediction(prediction);
                if let Some(influx) = self.influx() {
                    influx.record_prediction(prediction);
                }
                for alert in alerts {
                    let labels = AlertLabels {
                        hospital: hospital.clone(),
                        kind: alert.kind.to_string(),
                        severity: alert.severity.to_string(),
                    };
                    self.metrics.alerts.get_or_create(&labels).inc();
                    self.dashboard.record_alert(alert);
                    if let Some(influx) = self.influx() {
                        influx.record_alert(alert);
                    }
                }
            }
            Outcome::DeadLetter(dead) => {
                let labels = DeadLetterLabels {
                    hospital,
                    kind: dead.kind.as_str().to_string(),
                };
                self.metrics.dead_letters.get_or_create(&labels).inc();
            }
        }
    }
}
