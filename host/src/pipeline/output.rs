//! The JSON records cardiowatch writes: predictions, alerts and dead-letter reasons.
//!
//! The schemas are versioned by their `schema` field and documented in `docs/schemas.md`.
//! Each record names the components that produced it by role and sha256.

use serde::Serialize;

use crate::runtime::bindings::alert_rules::{Alert, AlertKind, ClinicalRisk, News2, Severity};
use crate::runtime::bindings::types::{Consciousness, Contribution, Vitals};
use crate::runtime::{ComponentSet, Role};

/// Schema id of prediction records.
pub const PREDICTION_SCHEMA: &str = "cardiowatch.prediction/1";
/// Schema id of alert records.
pub const ALERT_SCHEMA: &str = "cardiowatch.alert/1";

/// Where an input record came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceRef {
    /// Input topic.
    pub topic: String,
    /// Input partition.
    pub partition: i32,
    /// Input offset.
    pub offset: i64,
    /// Input format preprocess recognised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// One component's identity in an output record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentStamp {
    /// Lowercase hex sha256 of the component file.
    pub sha256: String,
}

/// Identity of the three components that produced a record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentStamps {
    /// Preprocess component.
    pub preprocess: ComponentStamp,
    /// Score component.
    pub score: ComponentStamp,
    /// Alert rules component.
    pub alert_rules: ComponentStamp,
    /// Model baked into the score component, as `name@version`.
    pub model: String,
    /// sha256 of the model JSON file inside the score component.
    pub model_sha256: String,
}

impl ComponentStamps {
    /// Stamps of a component set.
    pub fn of(set: &ComponentSet) -> Self {
        let stamp = |role| ComponentStamp {
            sha256: set.info(role).sha256.clone(),
        };
        ComponentStamps {
            preprocess: stamp(Role::Preprocess),
            score: stamp(Role::Score),
            alert_rules: stamp(Role::AlertRules),
            model: format!("{}@{}", set.model.name, set.model.version),
            model_sha256: set.model.model_sha256.clone(),
        }
    }
}

/// Whether and how the model ran for a prediction.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The model ran; NEWS2 was computed.
    Scored,
    /// Only NEWS2 was computed; `status_reason` gives the reason the model did not run.
    News2Only,
    /// The reading is older than one already applied for this patient, so it changed no
    /// state and raised no alert; NEWS2 is of its own vitals.
    Late,
}

/// Vitals as written in output records.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct VitalsJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    heart_rate_bpm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    systolic_bp_mmhg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diastolic_bp_mmhg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    respiratory_rate_per_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spo2_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature_celsius: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplemental_oxygen: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consciousness: Option<&'static str>,
}

impl From<&Vitals> for VitalsJson {
    fn from(vitals: &Vitals) -> Self {
        VitalsJson {
            heart_rate_bpm: vitals.heart_rate_bpm,
            systolic_bp_mmhg: vitals.systolic_bp_mmhg,
            diastolic_bp_mmhg: vitals.diastolic_bp_mmhg,
            respiratory_rate_per_min: vitals.respiratory_rate_per_min,
            spo2_percent: vitals.spo2_percent,
            temperature_celsius: vitals.temperature_celsius,
            supplemental_oxygen: vitals.supplemental_oxygen,
            consciousness: vitals.consciousness.map(consciousness_name),
        }
    }
}

fn consciousness_name(level: Consciousness) -> &'static str {
    match level {
        Consciousness::Alert => "alert",
        Consciousness::NewConfusion => "new_confusion",
        Consciousness::Voice => "voice",
        Consciousness::Pain => "pain",
        Consciousness::Unresponsive => "unresponsive",
    }
}

/// A NEWS2 result as written in output records.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct News2Json {
    /// Aggregate score.
    pub total: u8,
    /// Clinical risk band: `low`, `low_medium`, `medium` or `high`.
    pub risk: &'static str,
    /// Score per measured parameter.
    pub parameters: std::collections::BTreeMap<String, u8>,
    /// Parameters that were not measured.
    pub missing: Vec<String>,
}

impl From<&News2> for News2Json {
    fn from(news2: &News2) -> Self {
        News2Json {
            total: news2.total,
            risk: match news2.risk {
                ClinicalRisk::Low => "low",
                ClinicalRisk::LowMedium => "low_medium",
                ClinicalRisk::Medium => "medium",
                ClinicalRisk::High => "high",
            },
            parameters: news2
                .parameters
                .iter()
                .map(|p| (p.name.clone(), p.score))
                .collect(),
            missing: news2.missing.clone(),
        }
    }
}

/// One feature's contribution as written in output records.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContributionJson {
    /// Model feature name.
    pub feature: String,
    /// Feature value; null when missing.
    pub value: Option<f64>,
    /// Contribution in log-odds.
    pub contribution: f64,
}

impl From<&Contribution> for ContributionJson {
    fn from(item: &Contribution) -> Self {
        ContributionJson {
            feature: item.feature.clone(),
            value: item.value,
            contribution: item.contribution,
        }
    }
}

/// The model's part of a prediction.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelJson {
    /// Probability of the positive class.
    pub probability: f64,
    /// Margin in log-odds.
    pub margin: f64,
    /// Per-feature contributions, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<Vec<ContributionJson>>,
    /// TreeSHAP bias (expected margin), when contributions were computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<f64>,
}

/// A record on the predictions topic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PredictionRecord {
    /// Always [`PREDICTION_SCHEMA`].
    pub schema: &'static str,
    /// Hospital id.
    pub hospital: String,
    /// Patient id.
    pub patient_id: String,
    /// Event time, milliseconds since the Unix epoch.
    pub event_time_ms: i64,
    /// Whether the model ran.
    pub status: Status,
    /// Why the model did not run, for `news2_only` and `late`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Model output, for `scored`.
    pub model: Option<ModelJson>,
    /// NEWS2 of the vitals below.
    pub news2: News2Json,
    /// The vitals scored: the latest of each within the maximum reading age.
    pub vitals: VitalsJson,
    /// Number of alerts this reading raised.
    pub alerts: usize,
    /// Input coordinates.
    pub source: SourceRef,
    /// Components that produced it.
    pub components: ComponentStamps,
}

/// Schema of shadow records.
pub const SHADOW_SCHEMA: &str = "cardiowatch.shadow/1";

/// A record on the shadow topic: what a candidate score component would have predicted
/// and alerted for a reading, next to what the active one did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShadowRecord {
    /// Always [`SHADOW_SCHEMA`].
    pub schema: &'static str,
    /// Hospital id.
    pub hospital: String,
    /// Patient id.
    pub patient_id: String,
    /// Event time, milliseconds since the Unix epoch.
    pub event_time_ms: i64,
    /// sha256 of the active score component.
    pub live_score_sha256: String,
    /// sha256 of the candidate.
    pub shadow_score_sha256: String,
    /// The active model's probability; none when it did not run.
    pub live_probability: Option<f64>,
    /// The candidate's probability; none when it did not run.
    pub shadow_probability: Option<f64>,
    /// Alerts the active version raised, as `kind:severity`.
    pub live_alerts: Vec<String>,
    /// Alerts the candidate would have raised, as `kind:severity`.
    pub shadow_alerts: Vec<String>,
    /// Why the candidate did not run, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Input coordinates.
    pub source: SourceRef,
}

/// A record on the alerts topic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertRecord {
    /// Always [`ALERT_SCHEMA`].
    pub schema: &'static str,
    /// Hospital id.
    pub hospital: String,
    /// Patient id.
    pub patient_id: String,
    /// Event time of the reading that raised it, milliseconds since the Unix epoch.
    pub event_time_ms: i64,
    /// `news2` or `model`.
    pub kind: &'static str,
    /// `info`, `urgent` or `emergency`.
    pub severity: &'static str,
    /// Why, in one sentence for staff.
    pub reason: String,
    /// Whether it escalates an earlier alert of the same kind.
    pub escalation: bool,
    /// NEWS2 aggregate at the time.
    pub news2_total: u8,
    /// Model probability at the time, if the model ran.
    pub probability: Option<f64>,
    /// Up to three features that raised the risk most.
    pub top_positive: Vec<ContributionJson>,
    /// Up to three features that lowered the risk most.
    pub top_negative: Vec<ContributionJson>,
    /// Input coordinates.
    pub source: SourceRef,
    /// Components that produced it.
    pub components: ComponentStamps,
}

/// Builds the alert record fields that come from the component's alert.
pub fn alert_fields(alert: &Alert) -> (&'static str, &'static str) {
    let kind = match alert.kind {
        AlertKind::News2 => "news2",
        AlertKind::Model => "model",
    };
    (kind, severity_name(alert.severity))
}

/// Lowercase name of a severity.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Urgent => "urgent",
        Severity::Emergency => "emergency",
    }
}
