//! The scoring half of the pipeline: window, model, NEWS2 and alerts for one reading.
//!
//! Contributions cost far more than a score, so with `explain = "alerting"` the model
//! first runs without them; only when the alert rules raise an alert does it run again
//! with them, and the rules are re-evaluated from the same prior state so that the
//! alerts carry their top contributions. Both calls are pure, so the repeat is exact.

use cardiowatch_core::xgb::baked::check_features_present;

use crate::config::ExplainMode;
use crate::runtime::bindings::alert_rules::{AlertInput, AlertOutcome, AlertState, ModelOutput};
use crate::runtime::bindings::score::{Prediction, ScoreInput};
use crate::runtime::bindings::types::{Profile, Reading, Spo2Scale, Vitals};
use crate::state::{PatientKey, StateStore};

use super::output::{
    ALERT_SCHEMA, AlertRecord, ComponentStamps, ContributionJson, ModelJson, PREDICTION_SCHEMA,
    PredictionRecord, SHADOW_SCHEMA, ShadowRecord, SourceRef, Status, alert_fields,
};
use super::{DeadLetter, DeadLetterKind, Hospital, Outcome, component_failure};
use crate::runtime::Role;

/// Identity of the reading being scored.
pub(super) struct Context {
    pub key: PatientKey,
    pub event_time_ms: i64,
    pub source: SourceRef,
}

/// What the model produced, or why it did not run.
enum ModelResult {
    Ran(Prediction),
    Skipped(String),
}

pub(super) fn score_reading(
    hospital: &mut Hospital,
    state: &mut StateStore,
    context: &Context,
    reading: &Reading,
) -> Result<Outcome, DeadLetter> {
    let profile = state.profile(&context.key).cloned();
    let patient = state.patient(&context.key);
    if patient
        .latest_event_ms
        .is_some_and(|latest| latest > context.event_time_ms)
    {
        return late_reading(hospital, context, reading, profile.as_ref());
    }
    patient
        .window
        .record(&reading.vitals, context.event_time_ms);
    patient.latest_event_ms = Some(context.event_time_ms);
    let oldest_ms = match hospital.config.scoring.max_reading_age_s {
        0 => i64::MIN,
        age => context
            .event_time_ms
            .saturating_sub(age.saturating_mul(1000) as i64),
    };
    let vitals = patient.window.latest(oldest_ms);
    let prior = patient.alerts;

    let explain_all = hospital.config.scoring.explain == ExplainMode::All;
    let mut model = run_model(hospital, &vitals, profile.as_ref(), explain_all)?;
    let scale2 = profile.as_ref().and_then(|p| p.spo2_scale) == Some(Spo2Scale::Scale2);
    let mut outcome = evaluate(hospital, context, &vitals, scale2, &model, prior)?;

    let wants_explanation = hospital.config.scoring.explain == ExplainMode::Alerting
        && !outcome.alerts.is_empty()
        && matches!(&model, ModelResult::Ran(prediction) if prediction.contributions.is_none());
    if wants_explanation {
        model = run_model(hospital, &vitals, profile.as_ref(), true)?;
        outcome = evaluate(hospital, context, &vitals, scale2, &model, prior)?;
    }
    state.patient(&context.key).alerts = outcome.state;
    let shadow = run_shadow(
        hospital,
        context,
        &vitals,
        profile.as_ref(),
        scale2,
        prior,
        &model,
        &outcome,
    );
    let mut result = build_outcome(hospital, context, &vitals, model, &outcome, Status::Scored);
    if let Outcome::Scored { shadow: slot, .. } = &mut result {
        *slot = shadow;
    }
    Ok(result)
}

fn run_model(
    hospital: &mut Hospital,
    vitals: &Vitals,
    profile: Option<&Profile>,
    explain: bool,
) -> Result<ModelResult, DeadLetter> {
    let Some(profile) = profile else {
        return Ok(ModelResult::Skipped(
            "no profile known for this patient: send one on the patients topic or in the reading"
                .into(),
        ));
    };
    let input = ScoreInput {
        vitals: *vitals,
        profile: profile.clone(),
    };
    match hospital.instances.score(&input, explain) {
        Ok(Ok(prediction)) => Ok(enough_features(
            prediction,
            hospital.config.scoring.min_features_present,
        )),
        Ok(Err(error)) => Ok(ModelResult::Skipped(format!(
            "the model could not run: {error:?}"
        ))),
        Err(trap) => Err(component_failure(hospital, trap)),
    }
}

/// Keeps a prediction only when enough of its features were present.
fn enough_features(prediction: Prediction, min_share: f64) -> ModelResult {
    match check_features_present(&prediction.features, min_share) {
        Ok(()) => ModelResult::Ran(prediction),
        Err(reason) => ModelResult::Skipped(reason),
    }
}

fn evaluate(
    hospital: &mut Hospital,
    context: &Context,
    vitals: &Vitals,
    spo2_scale2: bool,
    model: &ModelResult,
    state: AlertState,
) -> Result<AlertOutcome, DeadLetter> {
    let model = match model {
        ModelResult::Ran(prediction) => Some(ModelOutput {
            probability: prediction.probability,
            contributions: prediction.contributions.clone(),
        }),
        ModelResult::Skipped(_) => None,
    };
    let input = AlertInput {
        vitals: *vitals,
        spo2_scale2,
        model,
        event_time_ms: context.event_time_ms,
        thresholds: thresholds(hospital),
        state,
    };
    match hospital.instances.evaluate(&input) {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(error)) => Err(DeadLetter {
            kind: DeadLetterKind::RuleFailure,
            reason: format!("alert rules rejected the reading: {error:?}"),
            hospital: Some(context.key.0.clone()),
        }),
        Err(trap) => Err(component_failure(hospital, trap)),
    }
}

fn thresholds(hospital: &Hospital) -> crate::runtime::bindings::alert_rules::Thresholds {
    wit_thresholds(&hospital.config.thresholds)
}

/// A hospital's thresholds as the alert rules component takes them.
pub(crate) fn wit_thresholds(
    config: &crate::config::Thresholds,
) -> crate::runtime::bindings::alert_rules::Thresholds {
    crate::runtime::bindings::alert_rules::Thresholds {
        model_probability: config.model_probability,
        model_urgent_probability: config.model_urgent_probability,
        model_hysteresis: config.model_hysteresis,
        news2_urgent: config.news2_urgent,
        news2_emergency: config.news2_emergency,
        news2_single_parameter: config.news2_single_parameter,
        suppression_window_ms: i64::from(config.suppression_window_minutes) * 60_000,
    }
}

/// A reading older than the patient's latest: NEWS2 of its own vitals, no state change.
fn late_reading(
    hospital: &mut Hospital,
    context: &Context,
    reading: &Reading,
    profile: Option<&Profile>,
) -> Result<Outcome, DeadLetter> {
    let scale2 = profile.and_then(|p| p.spo2_scale) == Some(Spo2Scale::Scale2);
    let empty = crate::state::PatientState::default().alerts;
    let model = ModelResult::Skipped(
        "late reading: a newer reading of this patient was already applied".into(),
    );
    let outcome = evaluate(hospital, context, &reading.vitals, scale2, &model, empty)?;
    let mut result = build_outcome(
        hospital,
        context,
        &reading.vitals,
        model,
        &outcome,
        Status::Late,
    );
    if let Outcome::Scored {
        alerts, prediction, ..
    } = &mut result
    {
        alerts.clear();
        prediction.alerts = 0;
    }
    Ok(result)
}

fn build_outcome(
    hospital: &Hospital,
    context: &Context,
    vitals: &Vitals,
    model: ModelResult,
    outcome: &AlertOutcome,
    scored: Status,
) -> Outcome {
    let stamps = ComponentStamps::of(hospital.components());
    let (model_json, status, status_reason) = match model {
        ModelResult::Ran(prediction) => (Some(model_json(&prediction)), scored, None),
        ModelResult::Skipped(reason) => {
            let status = if scored == Status::Late {
                Status::Late
            } else {
                Status::News2Only
            };
            (None, status, Some(reason))
        }
    };
    let probability = model_json.as_ref().map(|model| model.probability);
    let (hospital_id, patient_id) = context.key.clone();
    let alerts: Vec<AlertRecord> = outcome
        .alerts
        .iter()
        .map(|alert| {
            let (kind, severity) = alert_fields(alert);
            AlertRecord {
                schema: ALERT_SCHEMA,
                hospital: hospital_id.clone(),
                patient_id: patient_id.clone(),
                event_time_ms: context.event_time_ms,
                kind,
                severity,
                reason: alert.reason.clone(),
                escalation: alert.escalation,
                news2_total: outcome.news2.total,
                probability,
                top_positive: alert
                    .top_positive
                    .iter()
                    .map(ContributionJson::from)
                    .collect(),
                top_negative: alert
                    .top_negative
                    .iter()
                    .map(ContributionJson::from)
                    .collect(),
                source: context.source.clone(),
                components: stamps.clone(),
            }
        })
        .collect();
    let prediction = PredictionRecord {
        schema: PREDICTION_SCHEMA,
        hospital: hospital_id,
        patient_id: patient_id.clone(),
        event_time_ms: context.event_time_ms,
        status,
        status_reason,
        model: model_json,
        news2: (&outcome.news2).into(),
        vitals: vitals.into(),
        alerts: alerts.len(),
        source: context.source.clone(),
        components: stamps,
    };
    Outcome::Scored {
        patient_id,
        prediction: Box::new(prediction),
        alerts,
        shadow: None,
    }
}

/// `kind:severity` of each alert, for comparing two outcomes.
fn alert_labels(outcome: &AlertOutcome) -> Vec<String> {
    outcome
        .alerts
        .iter()
        .map(|alert| {
            let (kind, severity) = alert_fields(alert);
            format!("{kind}:{severity}")
        })
        .collect()
}

/// Runs the hospital's shadow score component on the reading, and the alert rules on
/// its probability from the same prior state. Nothing it does reaches live outputs or
/// patient state; a failure is recorded in the shadow record only.
#[allow(clippy::too_many_arguments)]
fn run_shadow(
    hospital: &mut Hospital,
    context: &Context,
    vitals: &Vitals,
    profile: Option<&Profile>,
    spo2_scale2: bool,
    prior: AlertState,
    live: &ModelResult,
    live_outcome: &AlertOutcome,
) -> Option<Box<ShadowRecord>> {
    let thresholds = thresholds(hospital);
    let min_share = hospital.config.scoring.min_features_present;
    let live_score_sha256 = hospital.components().info(Role::Score).sha256.clone();
    let shadow = hospital.shadow.as_mut()?;
    let shadow_score_sha256 = shadow.set().info(Role::Score).sha256.clone();
    let mut error = None;
    let mut probability = None;
    match profile {
        None => error = Some("no profile known for this patient".to_string()),
        Some(profile) => {
            let input = ScoreInput {
                vitals: *vitals,
                profile: profile.clone(),
            };
            match shadow.score(&input, false) {
                Ok(Ok(prediction)) => match enough_features(prediction, min_share) {
                    ModelResult::Ran(prediction) => probability = Some(prediction.probability),
                    ModelResult::Skipped(reason) => error = Some(reason),
                },
                Ok(Err(failure)) => error = Some(format!("the model could not run: {failure:?}")),
                Err(failure) => error = Some(failure.to_string()),
            }
        }
    }
    let mut shadow_alerts = Vec::new();
    let model = probability.map(|probability| ModelOutput {
        probability,
        contributions: None,
    });
    let input = AlertInput {
        vitals: *vitals,
        spo2_scale2,
        model,
        event_time_ms: context.event_time_ms,
        thresholds,
        state: prior,
    };
    match shadow.evaluate(&input) {
        Ok(Ok(outcome)) => shadow_alerts = alert_labels(&outcome),
        Ok(Err(failure)) => error = Some(format!("the alert rules refused it: {failure:?}")),
        Err(failure) => error = Some(failure.to_string()),
    }
    let (hospital_id, patient_id) = context.key.clone();
    Some(Box::new(ShadowRecord {
        schema: SHADOW_SCHEMA,
        hospital: hospital_id,
        patient_id,
        event_time_ms: context.event_time_ms,
        live_score_sha256,
        shadow_score_sha256,
        live_probability: match live {
            ModelResult::Ran(prediction) => Some(prediction.probability),
            ModelResult::Skipped(_) => None,
        },
        shadow_probability: probability,
        live_alerts: alert_labels(live_outcome),
        shadow_alerts,
        error,
        source: context.source.clone(),
    }))
}

fn model_json(prediction: &Prediction) -> ModelJson {
    ModelJson {
        probability: prediction.probability,
        margin: prediction.margin,
        contributions: prediction
            .contributions
            .as_ref()
            .map(|items| items.iter().map(ContributionJson::from).collect()),
        bias: prediction.bias,
    }
}
