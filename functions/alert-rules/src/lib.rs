//! The alert rules component: exports the WIT interface `alert-rules` of the world
//! `alerter`.
//!
//! Each call converts the WIT records to the types of `cardiowatch_core::alerting`, runs
//! [`alerting::evaluate`] and converts the outcome or error back. No rule logic lives
//! here, so the host's native tests of the core crate cover the same rules.

wit_bindgen::generate!({
    world: "alerter",
    path: "../../wit",
});

use cardiowatch_core::{alerting, news2, types};

use cardiowatch::pipeline::types as wit_types;
use exports::cardiowatch::pipeline::alert_rules as wit;

/// The exported component.
struct AlertRules;

impl wit::Guest for AlertRules {
    fn evaluate(input: wit::AlertInput) -> Result<wit::AlertOutcome, wit::RuleError> {
        alerting::evaluate(&input_from_wit(input))
            .map(outcome_to_wit)
            .map_err(rule_error_to_wit)
    }
}

export!(AlertRules);

fn input_from_wit(input: wit::AlertInput) -> alerting::AlertInput {
    alerting::AlertInput {
        vitals: vitals_from_wit(input.vitals),
        spo2_scale2: input.spo2_scale2,
        model: input.model.map(model_output_from_wit),
        event_time_ms: input.event_time_ms,
        thresholds: thresholds_from_wit(input.thresholds),
        state: alert_state_from_wit(input.state),
    }
}

fn vitals_from_wit(vitals: wit_types::Vitals) -> types::Vitals {
    types::Vitals {
        heart_rate_bpm: vitals.heart_rate_bpm,
        systolic_bp_mmhg: vitals.systolic_bp_mmhg,
        diastolic_bp_mmhg: vitals.diastolic_bp_mmhg,
        respiratory_rate_per_min: vitals.respiratory_rate_per_min,
        spo2_percent: vitals.spo2_percent,
        temperature_celsius: vitals.temperature_celsius,
        supplemental_oxygen: vitals.supplemental_oxygen,
        consciousness: vitals.consciousness.map(consciousness_from_wit),
    }
}

fn consciousness_from_wit(level: wit_types::Consciousness) -> types::Consciousness {
    match level {
        wit_types::Consciousness::Alert => types::Consciousness::Alert,
        wit_types::Consciousness::NewConfusion => types::Consciousness::NewConfusion,
        wit_types::Consciousness::Voice => types::Consciousness::Voice,
        wit_types::Consciousness::Pain => types::Consciousness::Pain,
        wit_types::Consciousness::Unresponsive => types::Consciousness::Unresponsive,
    }
}

fn model_output_from_wit(model: wit::ModelOutput) -> alerting::ModelOutput {
    alerting::ModelOutput {
        probability: model.probability,
        contributions: model
            .contributions
            .map(|list| list.into_iter().map(contribution_from_wit).collect()),
    }
}

fn contribution_from_wit(contribution: wit_types::Contribution) -> types::Contribution {
    types::Contribution {
        feature: contribution.feature,
        value: contribution.value,
        contribution: contribution.contribution,
    }
}

fn thresholds_from_wit(thresholds: wit::Thresholds) -> alerting::Thresholds {
    alerting::Thresholds {
        model_probability: thresholds.model_probability,
        model_urgent_probability: thresholds.model_urgent_probability,
        model_hysteresis: thresholds.model_hysteresis,
        news2_urgent: thresholds.news2_urgent,
        news2_emergency: thresholds.news2_emergency,
        news2_single_parameter: thresholds.news2_single_parameter,
        suppression_window_ms: thresholds.suppression_window_ms,
    }
}

fn alert_state_from_wit(state: wit::AlertState) -> alerting::AlertState {
    alerting::AlertState {
        news2: kind_state_from_wit(state.news2),
        model: kind_state_from_wit(state.model),
    }
}

fn kind_state_from_wit(state: wit::KindState) -> alerting::KindState {
    alerting::KindState {
        last_severity: state.last_severity.map(severity_from_wit),
        last_alert_ms: state.last_alert_ms,
    }
}

fn severity_from_wit(severity: wit::Severity) -> alerting::Severity {
    match severity {
        wit::Severity::Info => alerting::Severity::Info,
        wit::Severity::Urgent => alerting::Severity::Urgent,
        wit::Severity::Emergency => alerting::Severity::Emergency,
    }
}

fn outcome_to_wit(outcome: alerting::AlertOutcome) -> wit::AlertOutcome {
    wit::AlertOutcome {
        news2: news2_to_wit(outcome.news2),
        alerts: outcome.alerts.into_iter().map(alert_to_wit).collect(),
        state: alert_state_to_wit(outcome.state),
    }
}

fn news2_to_wit(score: news2::News2) -> wit::News2 {
    wit::News2 {
        total: score.total,
        risk: clinical_risk_to_wit(score.risk),
        parameters: score
            .parameters
            .into_iter()
            .map(parameter_score_to_wit)
            .collect(),
        missing: score
            .missing
            .into_iter()
            .map(|p| p.as_str().to_string())
            .collect(),
    }
}

fn parameter_score_to_wit(parameter: news2::ParameterScore) -> wit::News2Parameter {
    wit::News2Parameter {
        name: parameter.name.as_str().to_string(),
        score: parameter.score,
    }
}

fn clinical_risk_to_wit(risk: news2::ClinicalRisk) -> wit::ClinicalRisk {
    match risk {
        news2::ClinicalRisk::Low => wit::ClinicalRisk::Low,
        news2::ClinicalRisk::LowMedium => wit::ClinicalRisk::LowMedium,
        news2::ClinicalRisk::Medium => wit::ClinicalRisk::Medium,
        news2::ClinicalRisk::High => wit::ClinicalRisk::High,
    }
}

fn alert_to_wit(alert: alerting::Alert) -> wit::Alert {
    wit::Alert {
        kind: alert_kind_to_wit(alert.kind),
        severity: severity_to_wit(alert.severity),
        reason: alert.reason,
        escalation: alert.escalation,
        top_positive: alert
            .top_positive
            .into_iter()
            .map(contribution_to_wit)
            .collect(),
        top_negative: alert
            .top_negative
            .into_iter()
            .map(contribution_to_wit)
            .collect(),
    }
}

fn alert_kind_to_wit(kind: alerting::AlertKind) -> wit::AlertKind {
    match kind {
        alerting::AlertKind::News2 => wit::AlertKind::News2,
        alerting::AlertKind::Model => wit::AlertKind::Model,
    }
}

fn severity_to_wit(severity: alerting::Severity) -> wit::Severity {
    match severity {
        alerting::Severity::Info => wit::Severity::Info,
        alerting::Severity::Urgent => wit::Severity::Urgent,
        alerting::Severity::Emergency => wit::Severity::Emergency,
    }
}

fn contribution_to_wit(contribution: types::Contribution) -> wit_types::Contribution {
    wit_types::Contribution {
        feature: contribution.feature,
        value: contribution.value,
        contribution: contribution.contribution,
    }
}

fn alert_state_to_wit(state: alerting::AlertState) -> wit::AlertState {
    wit::AlertState {
        news2: kind_state_to_wit(state.news2),
        model: kind_state_to_wit(state.model),
    }
}

fn kind_state_to_wit(state: alerting::KindState) -> wit::KindState {
    wit::KindState {
        last_severity: state.last_severity.map(severity_to_wit),
        last_alert_ms: state.last_alert_ms,
    }
}

fn rule_error_to_wit(error: alerting::RuleError) -> wit::RuleError {
    match error {
        alerting::RuleError::InvalidThresholds(text) => wit::RuleError::InvalidThresholds(text),
        alerting::RuleError::Other(text) => wit::RuleError::Other(text),
    }
}
