//! Approximate sizes of what components return, so the host can reject an output far
//! larger than any honest one before it travels further. Each count is the bytes of the
//! strings plus 8 bytes per number, which is close to the JSON the host later writes.

use super::bindings::alert_rules::{Alert, AlertOutcome, RuleError};
use super::bindings::preprocess::InputError;
use super::bindings::score::{Prediction, ScoreError};
use super::bindings::types::{Contribution, Reading};

const NUMBER: usize = 8;

fn contributions(items: &[Contribution]) -> usize {
    items
        .iter()
        .map(|item| item.feature.len() + 2 * NUMBER)
        .sum()
}

/// Size of a parse result.
pub fn parse(result: &Result<Reading, InputError>) -> usize {
    match result {
        Ok(reading) => {
            let extra = reading.profile.as_ref().map_or(0, |profile| {
                profile
                    .extra
                    .iter()
                    .map(|item| item.name.len() + NUMBER)
                    .sum()
            });
            reading.patient_id.as_ref().map_or(0, String::len)
                + reading.format.len()
                + extra
                + 32 * NUMBER
        }
        Err(InputError::Implausible(value)) => value.field.len() + value.unit.len() + 3 * NUMBER,
        Err(
            InputError::Malformed(text)
            | InputError::UnsupportedFormat(text)
            | InputError::MissingField(text)
            | InputError::InvalidField(text)
            | InputError::Other(text),
        ) => text.len(),
    }
}

/// Size of a score result.
pub fn score(result: &Result<Prediction, ScoreError>) -> usize {
    match result {
        Ok(prediction) => {
            let explained = prediction.contributions.as_deref().map_or(0, contributions);
            prediction.features.len() * NUMBER + explained + 4 * NUMBER
        }
        Err(
            ScoreError::MissingFeature(text)
            | ScoreError::WrongFeatureCount(text)
            | ScoreError::Other(text),
        ) => text.len(),
    }
}

fn alert(alert: &Alert) -> usize {
    alert.reason.len() + contributions(&alert.top_positive) + contributions(&alert.top_negative)
}

/// Size of an alert rules result.
pub fn evaluate(result: &Result<AlertOutcome, RuleError>) -> usize {
    match result {
        Ok(outcome) => {
            let news2 = &outcome.news2;
            let parameters: usize = news2.parameters.iter().map(|p| p.name.len() + 1).sum();
            let missing: usize = news2.missing.iter().map(String::len).sum();
            let alerts: usize = outcome.alerts.iter().map(alert).sum();
            parameters + missing + alerts + 8 * NUMBER
        }
        Err(RuleError::InvalidThresholds(text) | RuleError::Other(text)) => text.len(),
    }
}
