//! One message through the scoring pipeline, with no patient state: parse, score, NEWS2,
//! alerts.
//!
//! Every step is a `cardiowatch_core` function that the host's pipeline also runs inside
//! its preprocess, score and alert rules components. The message is scored as the first
//! reading of its patient, as `cardiowatch score` does, so the profile must travel in the
//! message for the model to run.

use std::collections::BTreeMap;

use cardiowatch_core::alerting::{self, Alert, AlertInput, AlertState, ModelOutput, Thresholds};
use cardiowatch_core::input::{self, FORMAT_HEADER, InputError, RawMessage};
use cardiowatch_core::types::{Contribution, Profile, Spo2Scale, Vitals};
use cardiowatch_core::xgb::baked::{self, BakedModel};
use serde::Serialize;

/// Share of the model's features that must be present for its output to count. It equals
/// the host's default `scoring.min_features_present`.
const MIN_FEATURES_PRESENT: f64 = 0.5;

/// Topic name given to the parser. It is not the legacy topic, so the format comes from
/// the `cardiowatch-format` header or the payload's shape.
const HTTP_TOPIC: &str = "http";

/// Status reason for a message without a profile.
const MISSING_PROFILE: &str = "missing profile: the model needs the patient's profile in the \
    message (legacy records carry it, canonical JSON in \"profile\")";

/// Whether the model ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The model ran; NEWS2 was computed.
    Scored,
    /// Only NEWS2 was computed, and `status_reason` gives the reason the model did not run.
    News2Only,
}

/// The body of a successful `POST /score`.
#[derive(Debug, Serialize)]
pub struct ScoreResponse {
    /// Whether the model ran.
    pub status: Status,
    /// Reason the model did not run, for `news2_only`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Input format the parser recognised.
    pub format: String,
    /// Patient id from the body, if any.
    pub patient_id: Option<String>,
    /// Event time from the body, milliseconds since the Unix epoch, if any.
    pub event_time_ms: Option<i64>,
    /// The baked model and, for `scored`, its output.
    pub model: ModelJson,
    /// NEWS2 of the vitals.
    pub news2: News2Json,
    /// The vitals scored, without the ones the message lacks.
    pub vitals: serde_json::Map<String, serde_json::Value>,
    /// Alerts this reading raises for a patient with no earlier alerts.
    pub alerts: Vec<Alert>,
}

/// The model's identity and output.
#[derive(Debug, Serialize)]
pub struct ModelJson {
    /// Model name.
    pub name: &'static str,
    /// Model version.
    pub version: &'static str,
    /// Lowercase hex sha256 of the model JSON file baked in.
    pub model_sha256: &'static str,
    /// Probability of the positive class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Margin in log-odds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    /// Exact TreeSHAP contributions in model order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<Vec<Contribution>>,
    /// TreeSHAP bias (expected margin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<f64>,
}

/// NEWS2 as the host writes it in prediction records.
#[derive(Debug, Serialize)]
pub struct News2Json {
    /// Aggregate score.
    pub total: u8,
    /// Clinical risk band.
    pub risk: alerting::ClinicalRisk,
    /// Score per measured parameter.
    pub parameters: BTreeMap<&'static str, u8>,
    /// Parameters that were not measured.
    pub missing: Vec<&'static str>,
}

/// Reason a message could not be scored.
#[derive(Debug)]
pub enum Rejection {
    /// The message is invalid; the text names the value and the fix.
    InvalidInput(InputError),
    /// The alert rules rejected their input, which default thresholds never cause.
    RuleFailure(alerting::RuleError),
}

/// Scores one message with `model`. `format` is the value of a `cardiowatch-format`
/// header, if the request had one.
///
/// # Errors
///
/// [`Rejection`] when the message is invalid or the alert rules fail.
pub fn score_message(
    model: &BakedModel,
    payload: Vec<u8>,
    format: Option<Vec<u8>>,
) -> Result<ScoreResponse, Rejection> {
    let message = RawMessage {
        topic: HTTP_TOPIC.to_string(),
        key: None,
        payload,
        headers: format
            .map(|value| vec![(FORMAT_HEADER.to_string(), Some(value))])
            .unwrap_or_default(),
    };
    let reading = input::parse(&message).map_err(Rejection::InvalidInput)?;
    let outcome = run_model(model, &reading.vitals, reading.profile.as_ref());
    let scale2 = reading.profile.as_ref().and_then(|p| p.spo2_scale) == Some(Spo2Scale::Scale2);
    let (prediction, status_reason) = match outcome {
        Ok(prediction) => (Some(prediction), None),
        Err(reason) => (None, Some(reason)),
    };
    let input = AlertInput {
        vitals: reading.vitals.clone(),
        spo2_scale2: scale2,
        model: prediction.as_ref().map(|p| ModelOutput {
            probability: p.probability,
            contributions: p.contributions.clone(),
        }),
        // The time matters to the rules only against an earlier alert, and this patient
        // has none.
        event_time_ms: reading.event_time_ms.unwrap_or(0),
        thresholds: Thresholds::default(),
        state: AlertState::default(),
    };
    let alerts = alerting::evaluate(&input).map_err(Rejection::RuleFailure)?;
    Ok(ScoreResponse {
        status: if prediction.is_some() {
            Status::Scored
        } else {
            Status::News2Only
        },
        status_reason,
        format: reading.format,
        patient_id: reading.patient_id,
        event_time_ms: reading.event_time_ms,
        model: model_json(model, prediction),
        news2: news2_json(&alerts.news2),
        vitals: present_vitals(&reading.vitals),
        alerts: alerts.alerts,
    })
}

/// Runs the model with contributions, or returns why its output does not count.
fn run_model(
    model: &BakedModel,
    vitals: &Vitals,
    profile: Option<&Profile>,
) -> Result<baked::Prediction, String> {
    let Some(profile) = profile else {
        return Err(MISSING_PROFILE.to_string());
    };
    let prediction = model
        .score(vitals, profile, true)
        .map_err(|error| format!("the model could not run: {error}"))?;
    baked::check_features_present(&prediction.features, MIN_FEATURES_PRESENT)?;
    Ok(prediction)
}

fn model_json(model: &BakedModel, prediction: Option<baked::Prediction>) -> ModelJson {
    let info = &model.info;
    let mut json = ModelJson {
        name: info.name,
        version: info.version,
        model_sha256: info.model_sha256,
        probability: None,
        margin: None,
        contributions: None,
        bias: None,
    };
    if let Some(prediction) = prediction {
        json.probability = Some(prediction.probability);
        json.margin = Some(prediction.margin);
        json.contributions = prediction.contributions;
        json.bias = prediction.bias;
    }
    json
}

/// Returns the vitals as a JSON object without null fields, as the host writes them.
fn present_vitals(vitals: &Vitals) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(vitals) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.retain(|_, value| !value.is_null());
            fields
        }
        // Unreachable, because `Vitals` is a struct of numbers, booleans and enums.
        _ => serde_json::Map::new(),
    }
}

fn news2_json(news2: &alerting::News2) -> News2Json {
    News2Json {
        total: news2.total,
        risk: news2.risk,
        parameters: news2
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p.score))
            .collect(),
        missing: news2.missing.iter().map(|p| p.as_str()).collect(),
    }
}
