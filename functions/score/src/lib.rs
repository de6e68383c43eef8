//! Score component: the XGBoost model chosen at build time, as static data.
//!
//! Takes a patient's latest vitals and profile (or a raw feature vector), builds the
//! feature row from the manifest's feature map, and returns the probability, the margin
//! and, on request, exact TreeSHAP contributions. A model is a component: rebuilding with
//! another `CARDIOWATCH_MODEL_MANIFEST` makes another component with its own sha256.

use cardiowatch_core::types as core;
use cardiowatch_core::xgb::baked;

wit_bindgen::generate!({ world: "scorer", path: "../../wit" });

use cardiowatch::pipeline::types::{Consciousness, Contribution, Profile, Sex, Vitals};
use exports::cardiowatch::pipeline::score::{
    FeatureInfo, Guest, Metric, ModelMetadata, Prediction, ScoreError, ScoreInput,
};

#[allow(dead_code, clippy::all)]
mod model {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

use model::MODEL;

struct Component;

impl Guest for Component {
    fn metadata() -> ModelMetadata {
        let info = &MODEL.info;
        ModelMetadata {
            name: info.name.into(),
            version: info.version.into(),
            objective: info.objective.into(),
            features: info
                .features
                .iter()
                .map(|feature| FeatureInfo {
                    name: feature.name.into(),
                    source: feature.source.into(),
                    unit: feature.unit.into(),
                })
                .collect(),
            metrics: info
                .metrics
                .iter()
                .map(|(name, value)| Metric {
                    name: (*name).into(),
                    value: *value,
                })
                .collect(),
            model_sha256: info.model_sha256.into(),
            num_trees: MODEL.forest.trees.len() as u32,
            base_score: f64::from(info.base_score),
        }
    }

    fn score(input: ScoreInput, explain: bool) -> Result<Prediction, ScoreError> {
        let vitals = vitals_from_wit(&input.vitals);
        let profile = profile_from_wit(&input.profile);
        MODEL
            .score(&vitals, &profile, explain)
            .map(prediction_to_wit)
            .map_err(score_error_to_wit)
    }

    fn predict_features(
        features: Vec<Option<f64>>,
        explain: bool,
    ) -> Result<Prediction, ScoreError> {
        MODEL
            .predict_features(&features, explain)
            .map(prediction_to_wit)
            .map_err(score_error_to_wit)
    }
}

fn prediction_to_wit(prediction: baked::Prediction) -> Prediction {
    Prediction {
        probability: prediction.probability,
        margin: prediction.margin,
        features: prediction.features,
        contributions: prediction.contributions.map(|items| {
            items
                .into_iter()
                .map(|item| Contribution {
                    feature: item.feature,
                    value: item.value,
                    contribution: item.contribution,
                })
                .collect()
        }),
        bias: prediction.bias,
    }
}

fn score_error_to_wit(error: baked::ScoreError) -> ScoreError {
    match error {
        baked::ScoreError::MissingFeature(text) => ScoreError::MissingFeature(text),
        baked::ScoreError::WrongFeatureCount(text) => ScoreError::WrongFeatureCount(text),
    }
}

fn vitals_from_wit(vitals: &Vitals) -> core::Vitals {
    core::Vitals {
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

fn consciousness_from_wit(level: Consciousness) -> core::Consciousness {
    match level {
        Consciousness::Alert => core::Consciousness::Alert,
        Consciousness::NewConfusion => core::Consciousness::NewConfusion,
        Consciousness::Voice => core::Consciousness::Voice,
        Consciousness::Pain => core::Consciousness::Pain,
        Consciousness::Unresponsive => core::Consciousness::Unresponsive,
    }
}

/// Converts the fields a model can use; the SpO2 scale matters only to NEWS2.
fn profile_from_wit(profile: &Profile) -> core::Profile {
    core::Profile {
        age_years: profile.age_years,
        sex: profile.sex.map(|sex| match sex {
            Sex::Female => core::Sex::Female,
            Sex::Male => core::Sex::Male,
        }),
        height_cm: profile.height_cm,
        weight_kg: profile.weight_kg,
        cholesterol_category: profile.cholesterol_category,
        glucose_category: profile.glucose_category,
        smoker: profile.smoker,
        alcohol: profile.alcohol,
        physically_active: profile.physically_active,
        spo2_scale: None,
        extra: profile
            .extra
            .iter()
            .map(|item| (item.name.clone(), item.value))
            .collect(),
    }
}

export!(Component);
