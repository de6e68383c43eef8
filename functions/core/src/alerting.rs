//! Alert rules: NEWS2 and model thresholds, with per-kind alert fatigue control.
//!
//! Takes the latest vitals, the model's output, the hospital's thresholds and the patient's
//! alert memory. Returns the NEWS2 result, the alerts this reading raises and the next
//! alert memory. The types mirror the WIT interface `alert-rules` field for field.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::news2::news2;
pub use crate::news2::{ClinicalRisk, News2, Parameter, ParameterScore};
use crate::types::{Contribution, Spo2Scale, Vitals};

/// Largest possible NEWS2 aggregate: 3 on six parameters plus 2 for oxygen.
const MAX_NEWS2_TOTAL: u8 = 20;
/// Number of contributions of each sign that an alert carries.
const TOP_CONTRIBUTIONS: usize = 3;

/// Severity of an alert, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Inform the team without an urgent response.
    Info,
    /// Urgent ward-based response.
    Urgent,
    /// Emergency response.
    Emergency,
}

/// Rule that raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The NEWS2 score.
    News2,
    /// The model's probability.
    Model,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Rule that raised it.
    pub kind: AlertKind,
    /// Severity.
    pub severity: Severity,
    /// Why, in one sentence for staff. It may contain vitals but never a patient id.
    pub reason: String,
    /// Whether this alert escalates an earlier one of the same kind in the same episode.
    pub escalation: bool,
    /// Up to three features that raised the risk most, largest contribution first.
    pub top_positive: Vec<Contribution>,
    /// Up to three features that lowered the risk most, most negative first.
    pub top_negative: Vec<Contribution>,
}

/// Per-hospital alert thresholds, from hospital config. Missing fields take the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Probability at or above which a model alert (info) is raised. Default 0.7.
    pub model_probability: f64,
    /// Probability at or above which a model alert is urgent. Default 0.85.
    pub model_urgent_probability: f64,
    /// Margin below `model_probability` that the probability must fall under to end a
    /// model alert episode. Default 0.05.
    pub model_hysteresis: f64,
    /// NEWS2 aggregate at or above which an urgent alert is raised. Default 5, as on the Royal College of Physicians chart.
    pub news2_urgent: u8,
    /// NEWS2 aggregate at or above which an emergency alert is raised. Default 7, as on the Royal College of Physicians chart.
    pub news2_emergency: u8,
    /// Whether a single NEWS2 parameter scoring 3 raises an urgent alert. Default true.
    pub news2_single_parameter: bool,
    /// Event-time window in milliseconds within which an alert of the same kind and
    /// severity is not repeated. Default 30 minutes (1,800,000 ms).
    pub suppression_window_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            model_probability: 0.7,
            model_urgent_probability: 0.85,
            model_hysteresis: 0.05,
            news2_urgent: 5,
            news2_emergency: 7,
            news2_single_parameter: true,
            suppression_window_ms: 30 * 60 * 1000,
        }
    }
}

impl Thresholds {
    /// Checks that the thresholds are consistent.
    ///
    /// # Errors
    ///
    /// Returns [`RuleError::InvalidThresholds`] naming the first invalid field, its value
    /// and the fix.
    pub fn validate(&self) -> Result<(), RuleError> {
        self.validate_model()
            .map_err(RuleError::InvalidThresholds)?;
        self.validate_news2()
            .map_err(RuleError::InvalidThresholds)?;
        if self.suppression_window_ms < 0 {
            return Err(RuleError::InvalidThresholds(format!(
                "invalid suppression_window_ms {}: expected 0 or more milliseconds",
                self.suppression_window_ms
            )));
        }
        Ok(())
    }

    fn validate_model(&self) -> Result<(), String> {
        let probability = self.model_probability;
        let urgent = self.model_urgent_probability;
        let hysteresis = self.model_hysteresis;
        if !(0.0..=1.0).contains(&probability) {
            return Err(format!(
                "invalid model_probability {probability}: expected a probability in 0..=1"
            ));
        }
        if !(0.0..=1.0).contains(&urgent) {
            return Err(format!(
                "invalid model_urgent_probability {urgent}: expected a probability in 0..=1"
            ));
        }
        if urgent < probability {
            return Err(format!(
                "invalid model_urgent_probability {urgent}: expected at least \
                 model_probability {probability}; raise it or lower model_probability"
            ));
        }
        if !(0.0..=probability).contains(&hysteresis) {
            return Err(format!(
                "invalid model_hysteresis {hysteresis}: expected 0 up to \
                 model_probability {probability}"
            ));
        }
        Ok(())
    }

    fn validate_news2(&self) -> Result<(), String> {
        for (name, value) in [
            ("news2_urgent", self.news2_urgent),
            ("news2_emergency", self.news2_emergency),
        ] {
            if !(1..=MAX_NEWS2_TOTAL).contains(&value) {
                return Err(format!(
                    "invalid {name} {value}: expected an aggregate in 1..={MAX_NEWS2_TOTAL}"
                ));
            }
        }
        if self.news2_urgent > self.news2_emergency {
            return Err(format!(
                "invalid news2_urgent {}: expected at most news2_emergency {}; lower \
                 news2_urgent or raise news2_emergency",
                self.news2_urgent, self.news2_emergency
            ));
        }
        Ok(())
    }
}

/// Alert memory of one kind for one patient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindState {
    /// Severity of the last alert raised in the current episode, or `None` outside one.
    pub last_severity: Option<Severity>,
    /// Event time of that alert, milliseconds since the Unix epoch.
    pub last_alert_ms: Option<i64>,
}

/// Alert memory for one patient, kept by the host between readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// NEWS2 alert memory.
    pub news2: KindState,
    /// Model alert memory.
    pub model: KindState,
}

/// The model's output as the alert rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelOutput {
    /// Probability of the positive class, 0 to 1.
    pub probability: f64,
    /// Per-feature contributions in log-odds, when they were computed.
    pub contributions: Option<Vec<Contribution>>,
}

/// Everything one evaluation needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertInput {
    /// Latest vitals of the patient.
    pub vitals: Vitals,
    /// Whether NEWS2 uses SpO2 scale 2 for this patient.
    pub spo2_scale2: bool,
    /// Model output, or `None` when the model could not run.
    pub model: Option<ModelOutput>,
    /// Event time of the reading, milliseconds since the Unix epoch.
    pub event_time_ms: i64,
    /// Hospital thresholds.
    pub thresholds: Thresholds,
    /// Alert memory before this reading.
    pub state: AlertState,
}

/// Result of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertOutcome {
    /// NEWS2 of the latest vitals.
    pub news2: News2,
    /// Alerts raised by this reading, NEWS2 first.
    pub alerts: Vec<Alert>,
    /// Alert memory after this reading.
    pub state: AlertState,
}

/// Error of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleError {
    /// Thresholds are inconsistent. The message names the field, its value and the fix.
    #[error("invalid thresholds: {0}")]
    InvalidThresholds(String),
    /// Any other failure. The message names what failed.
    #[error("{0}")]
    Other(String),
}

/// Conclusion of one rule about one reading, before fatigue control.
#[derive(Debug, Clone, PartialEq)]
enum Finding {
    /// The alert condition is met at this severity, for this reason.
    Alert(Severity, String),
    /// The condition is not met, but an open episode stays open (model hysteresis).
    Hold,
    /// The condition has cleared, so any open episode ends.
    Clear,
    /// The rule had no data, so the alert memory stays as it was.
    NoData,
}

/// Evaluates NEWS2 and the model output against the thresholds and the alert memory.
///
/// The NEWS2 memory stays unchanged when the vitals are empty, and the model memory
/// stays unchanged when there is no model output, so a gap in the data neither ends
/// nor starts an episode.
///
/// # Errors
///
/// Returns [`RuleError::InvalidThresholds`] when the thresholds fail
/// [`Thresholds::validate`], and [`RuleError::Other`] when the model probability is not
/// a number in 0..=1.
pub fn evaluate(input: &AlertInput) -> Result<AlertOutcome, RuleError> {
    let thresholds = &input.thresholds;
    thresholds.validate()?;
    if let Some(model) = &input.model {
        check_probability(model.probability)?;
    }
    let score = news2(&input.vitals, spo2_scale(input.spo2_scale2));
    let news2_finding = if input.vitals.is_empty() {
        Finding::NoData
    } else {
        news2_finding(&score, thresholds)
    };
    let model_finding = input.model.as_ref().map_or(Finding::NoData, |model| {
        model_finding(model.probability, thresholds)
    });

    let now = input.event_time_ms;
    let window = thresholds.suppression_window_ms;
    let (news2_state, news2_raised) = advance(&input.state.news2, news2_finding, now, window);
    let (model_state, model_raised) = advance(&input.state.model, model_finding, now, window);

    let (top_positive, top_negative) = top_contributions(model_contributions(input.model.as_ref()));
    let alerts = [
        (AlertKind::News2, news2_raised),
        (AlertKind::Model, model_raised),
    ]
    .into_iter()
    .filter_map(|(kind, raised)| Some(raised?.into_alert(kind, &top_positive, &top_negative)))
    .collect();
    Ok(AlertOutcome {
        news2: score,
        alerts,
        state: AlertState {
            news2: news2_state,
            model: model_state,
        },
    })
}

fn spo2_scale(scale2: bool) -> Spo2Scale {
    if scale2 {
        Spo2Scale::Scale2
    } else {
        Spo2Scale::Scale1
    }
}

fn model_contributions(model: Option<&ModelOutput>) -> &[Contribution] {
    model
        .and_then(|m| m.contributions.as_deref())
        .unwrap_or_default()
}

fn check_probability(probability: f64) -> Result<(), RuleError> {
    if (0.0..=1.0).contains(&probability) {
        Ok(())
    } else {
        Err(RuleError::Other(format!(
            "invalid model probability {probability}: expected a number in 0..=1 from the \
             score component"
        )))
    }
}

/// Applies the NEWS2 rules: emergency aggregate, urgent aggregate, then a single red score.
fn news2_finding(score: &News2, thresholds: &Thresholds) -> Finding {
    let single_red_score = thresholds.news2_single_parameter && score.has_red_score();
    let severity = if score.total >= thresholds.news2_emergency {
        Severity::Emergency
    } else if score.total >= thresholds.news2_urgent || single_red_score {
        Severity::Urgent
    } else {
        return Finding::Clear;
    };
    Finding::Alert(severity, news2_reason(score))
}

/// Builds a reason such as `NEWS2 6 (medium clinical risk): respiration_rate 2, pulse 2,
/// temperature 2; not measured: consciousness`.
fn news2_reason(score: &News2) -> String {
    let scored: Vec<String> = score
        .parameters
        .iter()
        .filter(|p| p.score > 0)
        .map(|p| format!("{} {}", p.name.as_str(), p.score))
        .collect();
    let mut reason = format!(
        "NEWS2 {} ({} clinical risk): {}",
        score.total,
        score.risk.as_str(),
        scored.join(", ")
    );
    if !score.missing.is_empty() {
        let missing: Vec<&str> = score.missing.iter().map(|p| p.as_str()).collect();
        reason.push_str("; not measured: ");
        reason.push_str(&missing.join(", "));
    }
    reason
}

/// Applies the model thresholds and the hysteresis band below the alert threshold.
fn model_finding(probability: f64, thresholds: &Thresholds) -> Finding {
    let alert_at = thresholds.model_probability;
    let urgent_at = thresholds.model_urgent_probability;
    if probability >= urgent_at {
        let reason = format!(
            "model probability {probability:.3} is at or above the urgent threshold {urgent_at}"
        );
        Finding::Alert(Severity::Urgent, reason)
    } else if probability >= alert_at {
        let reason = format!(
            "model probability {probability:.3} is at or above the alert threshold {alert_at}"
        );
        Finding::Alert(Severity::Info, reason)
    } else if probability >= alert_at - thresholds.model_hysteresis {
        Finding::Hold
    } else {
        Finding::Clear
    }
}

/// An alert that fatigue control let through, before it gets its kind and contributions.
#[derive(Debug, Clone, PartialEq)]
struct Raised {
    severity: Severity,
    reason: String,
    escalation: bool,
}

impl Raised {
    fn into_alert(
        self,
        kind: AlertKind,
        positive: &[Contribution],
        negative: &[Contribution],
    ) -> Alert {
        Alert {
            kind,
            severity: self.severity,
            reason: self.reason,
            escalation: self.escalation,
            top_positive: positive.to_vec(),
            top_negative: negative.to_vec(),
        }
    }
}

/// Applies fatigue control to one kind's finding and returns the next memory and the
/// alert to raise, if any.
///
/// An alert is raised when no episode is open, when it is more severe than the last one
/// (an escalation), or when the suppression window has passed since the last one. Inside
/// the window an alert of the same or lower severity is suppressed, even when the
/// condition cleared in between; an episode ends only on a clear after the window. After the window, a
/// lower severity is raised too, so a condition that eased but persists is repeated at its
/// current severity. An event time before the last alert counts as inside the window.
fn advance(
    state: &KindState,
    finding: Finding,
    now_ms: i64,
    window_ms: i64,
) -> (KindState, Option<Raised>) {
    let (severity, reason) = match finding {
        Finding::Alert(severity, reason) => (severity, reason),
        Finding::Hold | Finding::NoData => return (*state, None),
        // A condition that clears and returns within the window is one episode, so that
        // flapping around a threshold does not alert again at the same severity.
        Finding::Clear if window_passed(state.last_alert_ms, now_ms, window_ms) => {
            return (KindState::default(), None);
        }
        Finding::Clear => return (*state, None),
    };
    let escalation = match state.last_severity {
        None => false,
        Some(last) if severity > last => true,
        Some(_) if window_passed(state.last_alert_ms, now_ms, window_ms) => false,
        Some(_) => return (*state, None),
    };
    let next = KindState {
        last_severity: Some(severity),
        last_alert_ms: Some(now_ms),
    };
    (
        next,
        Some(Raised {
            severity,
            reason,
            escalation,
        }),
    )
}

/// Returns true when at least `window_ms` of event time has passed since the last alert.
/// A missing last alert time counts as passed, and a negative elapsed time as not.
fn window_passed(last_alert_ms: Option<i64>, now_ms: i64, window_ms: i64) -> bool {
    match last_alert_ms {
        None => true,
        Some(last) => now_ms.saturating_sub(last) >= window_ms,
    }
}

/// Selects the three largest positive and the three most negative contributions.
///
/// Zero and NaN contributions are skipped. Ties keep the order of the input, which is the
/// model's feature order.
fn top_contributions(contributions: &[Contribution]) -> (Vec<Contribution>, Vec<Contribution>) {
    let mut positive: Vec<&Contribution> = contributions
        .iter()
        .filter(|c| c.contribution > 0.0)
        .collect();
    let mut negative: Vec<&Contribution> = contributions
        .iter()
        .filter(|c| c.contribution < 0.0)
        .collect();
    positive.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    negative.sort_by(|a, b| a.contribution.total_cmp(&b.contribution));
    let take = |list: Vec<&Contribution>| {
        list.into_iter()
            .take(TOP_CONTRIBUTIONS)
            .cloned()
            .collect::<Vec<_>>()
    };
    (take(positive), take(negative))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Consciousness;

    const MINUTE_MS: i64 = 60 * 1000;
    const WINDOW_MS: i64 = 30 * MINUTE_MS;
    const T0: i64 = 1_700_000_000_000;

    /// A change to the default thresholds, for tables of cases.
    type ThresholdEdit = fn(&mut Thresholds);

    /// Vitals that score 0 on every NEWS2 parameter.
    fn normal_vitals() -> Vitals {
        Vitals {
            heart_rate_bpm: Some(70.0),
            systolic_bp_mmhg: Some(120.0),
            diastolic_bp_mmhg: Some(80.0),
            respiratory_rate_per_min: Some(16.0),
            spo2_percent: Some(98.0),
            temperature_celsius: Some(37.0),
            supplemental_oxygen: Some(false),
            consciousness: Some(Consciousness::Alert),
        }
    }

    /// Normal vitals changed to reach the given NEWS2 aggregate without any score of 3
    /// (for 1 to 6), or with scores of 3 where no other way exists (7 and above).
    fn vitals_with_total(total: u8) -> Vitals {
        let mut vitals = normal_vitals();
        let steps: [fn(&mut Vitals); 5] = [
            |v| v.heart_rate_bpm = Some(115.0),          // +2
            |v| v.respiratory_rate_per_min = Some(22.0), // +2
            |v| v.supplemental_oxygen = Some(true),      // +2
            |v| v.temperature_celsius = Some(39.5),      // +2
            |v| v.systolic_bp_mmhg = Some(95.0),         // +2
        ];
        for step in steps.iter().take(usize::from(total / 2)) {
            step(&mut vitals);
        }
        if total % 2 == 1 {
            vitals.spo2_percent = Some(95.0); // +1
        }
        vitals
    }

    fn input(
        vitals: Vitals,
        model: Option<ModelOutput>,
        now: i64,
        state: AlertState,
    ) -> AlertInput {
        AlertInput {
            vitals,
            spo2_scale2: false,
            model,
            event_time_ms: now,
            thresholds: Thresholds::default(),
            state,
        }
    }

    fn model(probability: f64) -> Option<ModelOutput> {
        Some(ModelOutput {
            probability,
            contributions: None,
        })
    }

    fn contribution(feature: &str, value: f64) -> Contribution {
        Contribution {
            feature: feature.to_string(),
            value: Some(1.0),
            contribution: value,
        }
    }

    fn news2_state(severity: Severity, at: i64) -> AlertState {
        AlertState {
            news2: KindState {
                last_severity: Some(severity),
                last_alert_ms: Some(at),
            },
            model: KindState::default(),
        }
    }

    fn model_state(severity: Severity, at: i64) -> AlertState {
        AlertState {
            news2: KindState::default(),
            model: KindState {
                last_severity: Some(severity),
                last_alert_ms: Some(at),
            },
        }
    }

    fn run(input: &AlertInput) -> AlertOutcome {
        evaluate(input).expect("valid input")
    }

    fn only_alert(outcome: &AlertOutcome) -> &Alert {
        assert_eq!(outcome.alerts.len(), 1, "alerts: {:?}", outcome.alerts);
        &outcome.alerts[0]
    }

    #[test]
    fn vitals_with_total_helper_reaches_totals() {
        for total in 0..=11 {
            let score = news2(&vitals_with_total(total), Spo2Scale::Scale1);
            assert_eq!(score.total, total, "requested total {total}");
            assert!(!score.has_red_score(), "total {total} has a red score");
        }
    }

    #[test]
    fn default_thresholds_are_valid() {
        let thresholds = Thresholds::default();
        assert_eq!(thresholds.model_probability, 0.7);
        assert_eq!(thresholds.model_urgent_probability, 0.85);
        assert_eq!(thresholds.model_hysteresis, 0.05);
        assert_eq!(thresholds.news2_urgent, 5);
        assert_eq!(thresholds.news2_emergency, 7);
        assert!(thresholds.news2_single_parameter);
        assert_eq!(thresholds.suppression_window_ms, 1_800_000);
        assert_eq!(thresholds.validate(), Ok(()));
    }

    #[test]
    fn threshold_validation_errors() {
        let cases: [(ThresholdEdit, &str); 14] = [
            (
                |t| t.model_probability = 1.2,
                "invalid model_probability 1.2",
            ),
            (
                |t| t.model_probability = -0.1,
                "invalid model_probability -0.1",
            ),
            (
                |t| t.model_probability = f64::NAN,
                "invalid model_probability NaN",
            ),
            (
                |t| t.model_urgent_probability = 1.5,
                "invalid model_urgent_probability 1.5",
            ),
            (
                |t| t.model_urgent_probability = 0.6,
                "expected at least model_probability 0.7",
            ),
            (
                |t| t.model_hysteresis = -0.01,
                "invalid model_hysteresis -0.01",
            ),
            (|t| t.model_hysteresis = 0.8, "invalid model_hysteresis 0.8"),
            (
                |t| t.model_hysteresis = f64::NAN,
                "invalid model_hysteresis NaN",
            ),
            (|t| t.news2_urgent = 0, "invalid news2_urgent 0"),
            (|t| t.news2_urgent = 21, "invalid news2_urgent 21"),
            (|t| t.news2_emergency = 0, "invalid news2_emergency 0"),
            (|t| t.news2_emergency = 21, "invalid news2_emergency 21"),
            (|t| t.news2_urgent = 8, "expected at most news2_emergency 7"),
            (
                |t| t.suppression_window_ms = -1,
                "invalid suppression_window_ms -1",
            ),
        ];
        for (edit, expected) in cases {
            let mut thresholds = Thresholds::default();
            edit(&mut thresholds);
            let error = thresholds.validate().expect_err(expected).to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
            assert!(
                error.starts_with("invalid thresholds: invalid "),
                "{error:?}"
            );
        }
    }

    #[test]
    fn threshold_edge_values_are_valid() {
        let cases: [ThresholdEdit; 5] = [
            |t| t.model_hysteresis = 0.0,
            |t| t.model_hysteresis = t.model_probability,
            |t| t.model_urgent_probability = t.model_probability,
            |t| t.news2_urgent = t.news2_emergency,
            |t| t.suppression_window_ms = 0,
        ];
        for (index, edit) in cases.into_iter().enumerate() {
            let mut thresholds = Thresholds::default();
            edit(&mut thresholds);
            assert_eq!(
                thresholds.validate(),
                Ok(()),
                "case {index}: {thresholds:?}"
            );
        }
    }

    #[test]
    fn evaluate_rejects_invalid_thresholds() {
        let mut request = input(normal_vitals(), None, T0, AlertState::default());
        request.thresholds.news2_urgent = 9;
        let error = evaluate(&request).expect_err("news2_urgent above news2_emergency");
        assert!(
            matches!(error, RuleError::InvalidThresholds(_)),
            "{error:?}"
        );
    }

    #[test]
    fn evaluate_rejects_invalid_probability() {
        for probability in [-0.1, 1.1, f64::NAN] {
            let request = input(
                normal_vitals(),
                model(probability),
                T0,
                AlertState::default(),
            );
            let error = evaluate(&request).expect_err("probability outside 0..=1");
            assert!(matches!(error, RuleError::Other(_)), "{error:?}");
            assert!(
                error.to_string().contains("invalid model probability"),
                "{error}"
            );
        }
    }

    #[test]
    fn thresholds_deserialize_with_defaults() {
        let json = r#"{"news2_urgent": 4, "suppression_window_ms": 600000}"#;
        let thresholds: Thresholds = serde_json::from_str(json).expect("valid json");
        assert_eq!(thresholds.news2_urgent, 4);
        assert_eq!(thresholds.suppression_window_ms, 600_000);
        assert_eq!(thresholds.model_probability, 0.7);
        let unknown = serde_json::from_str::<Thresholds>(r#"{"news2_urgnet": 4}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn news2_severity_by_aggregate() {
        let cases = [
            (0, None),
            (4, None),
            (5, Some(Severity::Urgent)),
            (6, Some(Severity::Urgent)),
            (7, Some(Severity::Emergency)),
            (10, Some(Severity::Emergency)),
        ];
        for (total, expected) in cases {
            let outcome = run(&input(
                vitals_with_total(total),
                None,
                T0,
                AlertState::default(),
            ));
            let severity = outcome.alerts.first().map(|a| a.severity);
            assert_eq!(severity, expected, "total {total}");
            assert_eq!(outcome.news2.total, total);
        }
    }

    #[test]
    fn news2_single_red_parameter_is_urgent() {
        let mut vitals = normal_vitals();
        vitals.consciousness = Some(Consciousness::Voice);
        let outcome = run(&input(vitals.clone(), None, T0, AlertState::default()));
        let alert = only_alert(&outcome);
        assert_eq!(alert.kind, AlertKind::News2);
        assert_eq!(alert.severity, Severity::Urgent);
        assert_eq!(
            alert.reason,
            "NEWS2 3 (low-medium clinical risk): consciousness 3"
        );

        let mut request = input(vitals, None, T0, AlertState::default());
        request.thresholds.news2_single_parameter = false;
        assert!(run(&request).alerts.is_empty());
    }

    #[test]
    fn news2_reason_names_scored_and_missing() {
        let mut vitals = vitals_with_total(6);
        vitals.systolic_bp_mmhg = None;
        vitals.temperature_celsius = None;
        vitals.spo2_percent = Some(91.0); // 3
        let outcome = run(&input(vitals, None, T0, AlertState::default()));
        let alert = only_alert(&outcome);
        assert_eq!(alert.severity, Severity::Emergency);
        assert_eq!(
            alert.reason,
            "NEWS2 9 (high clinical risk): respiration_rate 2, spo2 3, air_or_oxygen 2, \
             pulse 2; not measured: systolic_bp, temperature"
        );
    }

    #[test]
    fn custom_news2_thresholds_apply() {
        let mut request = input(vitals_with_total(4), None, T0, AlertState::default());
        request.thresholds.news2_urgent = 3;
        request.thresholds.news2_emergency = 4;
        assert_eq!(only_alert(&run(&request)).severity, Severity::Emergency);
    }

    #[test]
    fn model_severity_by_probability() {
        let cases = [
            (0.5, None),
            (0.6999, None),
            (0.7, Some(Severity::Info)),
            (0.8499, Some(Severity::Info)),
            (0.85, Some(Severity::Urgent)),
            (1.0, Some(Severity::Urgent)),
        ];
        for (probability, expected) in cases {
            let request = input(
                normal_vitals(),
                model(probability),
                T0,
                AlertState::default(),
            );
            let outcome = run(&request);
            let severity = outcome.alerts.first().map(|a| a.severity);
            assert_eq!(severity, expected, "probability {probability}");
            assert!(outcome.alerts.iter().all(|a| a.kind == AlertKind::Model));
        }
    }

    #[test]
    fn model_reason_names_probability_and_threshold() {
        let request = input(normal_vitals(), model(0.9), T0, AlertState::default());
        let outcome = run(&request);
        assert_eq!(
            only_alert(&outcome).reason,
            "model probability 0.900 is at or above the urgent threshold 0.85"
        );
    }

    #[test]
    fn first_alert_opens_episode() {
        let outcome = run(&input(
            vitals_with_total(5),
            None,
            T0,
            AlertState::default(),
        ));
        let alert = only_alert(&outcome);
        assert!(!alert.escalation);
        assert_eq!(outcome.state, news2_state(Severity::Urgent, T0));
    }

    #[test]
    fn same_severity_inside_window_suppressed() {
        let state = news2_state(Severity::Urgent, T0);
        let now = T0 + WINDOW_MS - 1;
        let outcome = run(&input(vitals_with_total(6), None, now, state));
        assert!(outcome.alerts.is_empty());
        assert_eq!(outcome.state, state);
    }

    #[test]
    fn same_severity_after_window_repeats() {
        let state = news2_state(Severity::Urgent, T0);
        let now = T0 + WINDOW_MS;
        let outcome = run(&input(vitals_with_total(5), None, now, state));
        let alert = only_alert(&outcome);
        assert_eq!(alert.severity, Severity::Urgent);
        assert!(!alert.escalation);
        assert_eq!(outcome.state, news2_state(Severity::Urgent, now));
    }

    #[test]
    fn escalation_inside_window_raises() {
        let state = news2_state(Severity::Urgent, T0);
        let now = T0 + MINUTE_MS;
        let outcome = run(&input(vitals_with_total(7), None, now, state));
        let alert = only_alert(&outcome);
        assert_eq!(alert.severity, Severity::Emergency);
        assert!(alert.escalation);
        assert_eq!(outcome.state, news2_state(Severity::Emergency, now));
    }

    #[test]
    fn de_escalation_inside_window_suppressed() {
        let state = news2_state(Severity::Emergency, T0);
        let outcome = run(&input(vitals_with_total(5), None, T0 + MINUTE_MS, state));
        assert!(outcome.alerts.is_empty());
        assert_eq!(outcome.state, state);
    }

    #[test]
    fn de_escalation_after_window_reminds() {
        let state = news2_state(Severity::Emergency, T0);
        let now = T0 + WINDOW_MS;
        let outcome = run(&input(vitals_with_total(5), None, now, state));
        let alert = only_alert(&outcome);
        assert_eq!(alert.severity, Severity::Urgent);
        assert!(!alert.escalation);
        assert_eq!(outcome.state, news2_state(Severity::Urgent, now));
    }

    #[test]
    fn news2_clear_inside_window_keeps_episode() {
        let state = news2_state(Severity::Urgent, T0);
        let cleared = run(&input(vitals_with_total(4), None, T0 + MINUTE_MS, state));
        assert!(cleared.alerts.is_empty());
        assert_eq!(cleared.state, state);

        let again = run(&input(
            vitals_with_total(5),
            None,
            T0 + 2 * MINUTE_MS,
            cleared.state,
        ));
        assert!(
            again.alerts.is_empty(),
            "flapping must not re-alert inside the window"
        );
    }

    #[test]
    fn news2_episode_resets_when_cleared_after_window() {
        let state = news2_state(Severity::Emergency, T0);
        let cleared = run(&input(vitals_with_total(4), None, T0 + WINDOW_MS, state));
        assert!(cleared.alerts.is_empty());
        assert_eq!(cleared.state, AlertState::default());

        let later = T0 + WINDOW_MS + MINUTE_MS;
        let again = run(&input(vitals_with_total(5), None, later, cleared.state));
        let alert = only_alert(&again);
        assert_eq!(alert.severity, Severity::Urgent);
        assert!(!alert.escalation);
    }

    #[test]
    fn empty_vitals_keep_news2_episode() {
        let state = news2_state(Severity::Urgent, T0);
        let outcome = run(&input(Vitals::default(), None, T0 + MINUTE_MS, state));
        assert!(outcome.alerts.is_empty());
        assert_eq!(outcome.state, state);
        assert_eq!(outcome.news2.missing.len(), 7);
    }

    #[test]
    fn older_event_time_counts_inside_window() {
        let state = news2_state(Severity::Urgent, T0);
        let outcome = run(&input(
            vitals_with_total(5),
            None,
            T0 - 2 * WINDOW_MS,
            state,
        ));
        assert!(outcome.alerts.is_empty());
        assert_eq!(outcome.state, state);

        let extreme = run(&input(vitals_with_total(5), None, i64::MIN, state));
        assert!(extreme.alerts.is_empty());
    }

    #[test]
    fn extreme_event_times_do_not_overflow() {
        let state = news2_state(Severity::Urgent, i64::MIN);
        let outcome = run(&input(vitals_with_total(5), None, i64::MAX, state));
        assert_eq!(only_alert(&outcome).severity, Severity::Urgent);
    }

    #[test]
    fn zero_window_repeats_every_reading() {
        let mut request = input(
            vitals_with_total(5),
            None,
            T0,
            news2_state(Severity::Urgent, T0),
        );
        request.thresholds.suppression_window_ms = 0;
        assert_eq!(only_alert(&run(&request)).severity, Severity::Urgent);
    }

    #[test]
    fn severity_without_time_raises() {
        let state = AlertState {
            news2: KindState {
                last_severity: Some(Severity::Urgent),
                last_alert_ms: None,
            },
            model: KindState::default(),
        };
        let outcome = run(&input(vitals_with_total(5), None, T0, state));
        assert_eq!(only_alert(&outcome).severity, Severity::Urgent);
    }

    #[test]
    fn model_hysteresis_band_keeps_episode() {
        let state = model_state(Severity::Info, T0);
        for probability in [0.65, 0.67, 0.6999] {
            let request = input(normal_vitals(), model(probability), T0 + WINDOW_MS, state);
            let outcome = run(&request);
            assert!(outcome.alerts.is_empty(), "probability {probability}");
            assert_eq!(outcome.state, state, "probability {probability}");
        }
    }

    #[test]
    fn model_episode_resets_below_hysteresis() {
        let state = model_state(Severity::Urgent, T0);
        let inside = run(&input(
            normal_vitals(),
            model(0.6499),
            T0 + MINUTE_MS,
            state,
        ));
        assert!(inside.alerts.is_empty());
        assert_eq!(
            inside.state, state,
            "a clear inside the window keeps the episode"
        );

        let cleared = run(&input(
            normal_vitals(),
            model(0.6499),
            T0 + WINDOW_MS,
            state,
        ));
        assert!(cleared.alerts.is_empty());
        assert_eq!(cleared.state, AlertState::default());

        let later = T0 + WINDOW_MS + MINUTE_MS;
        let again = run(&input(normal_vitals(), model(0.75), later, cleared.state));
        let alert = only_alert(&again);
        assert_eq!(alert.severity, Severity::Info);
        assert!(!alert.escalation);
    }

    #[test]
    fn model_return_from_band_inside_window_suppressed() {
        let state = model_state(Severity::Info, T0);
        let dipped = run(&input(normal_vitals(), model(0.67), T0 + MINUTE_MS, state));
        let back = run(&input(
            normal_vitals(),
            model(0.72),
            T0 + 2 * MINUTE_MS,
            dipped.state,
        ));
        assert!(back.alerts.is_empty());
        let urgent = run(&input(
            normal_vitals(),
            model(0.9),
            T0 + 3 * MINUTE_MS,
            back.state,
        ));
        let alert = only_alert(&urgent);
        assert_eq!(alert.severity, Severity::Urgent);
        assert!(alert.escalation);
    }

    #[test]
    fn hysteresis_without_episode_raises_nothing() {
        let request = input(normal_vitals(), model(0.68), T0, AlertState::default());
        let outcome = run(&request);
        assert!(outcome.alerts.is_empty());
        assert_eq!(outcome.state, AlertState::default());
    }

    #[test]
    fn missing_model_output_keeps_model_state() {
        let state = AlertState {
            news2: KindState::default(),
            model: KindState {
                last_severity: Some(Severity::Info),
                last_alert_ms: Some(T0),
            },
        };
        let outcome = run(&input(vitals_with_total(7), None, T0 + MINUTE_MS, state));
        let alert = only_alert(&outcome);
        assert_eq!(alert.kind, AlertKind::News2);
        assert_eq!(alert.severity, Severity::Emergency);
        assert_eq!(outcome.state.model, state.model);
        assert!(alert.top_positive.is_empty());
        assert!(alert.top_negative.is_empty());
    }

    #[test]
    fn kinds_are_controlled_independently() {
        let state = news2_state(Severity::Urgent, T0);
        let outcome = run(&input(
            vitals_with_total(5),
            model(0.9),
            T0 + MINUTE_MS,
            state,
        ));
        let alert = only_alert(&outcome);
        assert_eq!(alert.kind, AlertKind::Model);
        assert_eq!(outcome.state.news2, state.news2);
        assert_eq!(outcome.state.model.last_severity, Some(Severity::Urgent));
    }

    #[test]
    fn both_kinds_raise_news2_first() {
        let outcome = run(&input(
            vitals_with_total(7),
            model(0.9),
            T0,
            AlertState::default(),
        ));
        let kinds: Vec<AlertKind> = outcome.alerts.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, vec![AlertKind::News2, AlertKind::Model]);
    }

    #[test]
    fn top_contributions_pick_three_each_way() {
        let contributions = vec![
            contribution("a", 0.1),
            contribution("b", -0.4),
            contribution("c", 0.9),
            contribution("d", 0.0),
            contribution("e", 0.5),
            contribution("f", -0.1),
            contribution("g", 0.3),
            contribution("h", -0.7),
            contribution("i", -0.2),
        ];
        let (positive, negative) = top_contributions(&contributions);
        let names = |list: &[Contribution]| list.iter().map(|c| c.feature.clone()).collect();
        let positive: Vec<String> = names(&positive);
        let negative: Vec<String> = names(&negative);
        assert_eq!(positive, ["c", "e", "g"]);
        assert_eq!(negative, ["h", "b", "i"]);
    }

    #[test]
    fn top_contributions_ties_keep_model_order() {
        let contributions = vec![
            contribution("a", 0.5),
            contribution("b", 0.5),
            contribution("c", 0.5),
            contribution("d", 0.5),
            contribution("e", -0.5),
            contribution("f", -0.5),
        ];
        let (positive, negative) = top_contributions(&contributions);
        let positive: Vec<&str> = positive.iter().map(|c| c.feature.as_str()).collect();
        let negative: Vec<&str> = negative.iter().map(|c| c.feature.as_str()).collect();
        assert_eq!(positive, ["a", "b", "c"]);
        assert_eq!(negative, ["e", "f"]);
    }

    #[test]
    fn top_contributions_skip_zero_and_nan() {
        let contributions = vec![
            contribution("zero", 0.0),
            contribution("negative_zero", -0.0),
            contribution("nan", f64::NAN),
            contribution("up", 0.2),
        ];
        let (positive, negative) = top_contributions(&contributions);
        assert_eq!(positive.len(), 1);
        assert_eq!(positive[0].feature, "up");
        assert!(negative.is_empty());
    }

    #[test]
    fn alerts_carry_contributions_for_both_kinds() {
        let contributions = vec![contribution("ap_hi", 0.8), contribution("age", -0.3)];
        let output = ModelOutput {
            probability: 0.9,
            contributions: Some(contributions),
        };
        let outcome = run(&input(
            vitals_with_total(7),
            Some(output),
            T0,
            AlertState::default(),
        ));
        assert_eq!(outcome.alerts.len(), 2);
        for alert in &outcome.alerts {
            assert_eq!(alert.top_positive.len(), 1, "{:?}", alert.kind);
            assert_eq!(alert.top_positive[0].feature, "ap_hi");
            assert_eq!(alert.top_negative.len(), 1, "{:?}", alert.kind);
            assert_eq!(alert.top_negative[0].feature, "age");
        }
    }

    #[test]
    fn severity_is_ordered() {
        assert!(Severity::Info < Severity::Urgent);
        assert!(Severity::Urgent < Severity::Emergency);
    }

    #[test]
    fn spo2_scale2_flag_selects_scale() {
        let mut vitals = normal_vitals();
        vitals.spo2_percent = Some(89.0);
        let mut request = input(vitals, None, T0, AlertState::default());
        assert_eq!(run(&request).news2.total, 3);
        request.spo2_scale2 = true;
        assert_eq!(run(&request).news2.total, 0);
    }
}
