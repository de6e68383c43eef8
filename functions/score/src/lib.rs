//! Score component: the XGBoost model chosen at build time, as static data.
//!
//! Takes a patient's latest vitals and profile (or a raw feature vector), builds the
//! feature row from the manifest's feature map, and returns the probability, the margin
//! and, on request, exact TreeSHAP contributions. A model is a component: rebuilding with
//! another `CARDIOWATCH_MODEL_MANIFEST` makes another component with its own sha256.

use std::sync::OnceLock;

use cardiowatch_core::types as core;
use cardiowatch_core::xgb::features::FeatureSource;
use cardiowatch_core::xgb::{Forest, Node, TreeSpan, forest::sigmoid, shap};

wit_bindgen::generate!({ world: "scorer", path: "../../wit" });

use cardiowatch::pipeline::types::{Consciousness, Contribution, Profile, Sex, Vitals};
use exports::cardiowatch::pipeline::score::{
    FeatureInfo, Guest, Metric, ModelMetadata, Prediction, ScoreError, ScoreInput,
};

#[allow(dead_code, clippy::all)]
mod model {
    use super::{Node, TreeSpan};
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

static FOREST: Forest<'static> = Forest {
    nodes: &model::NODES,
    trees: &model::TREES,
    num_features: model::NUM_FEATURES,
    base_margin: model::BASE_MARGIN,
};

/// Feature sources parsed once; the build script has already validated every path.
fn sources() -> &'static [FeatureSource] {
    static SOURCES: OnceLock<Vec<FeatureSource>> = OnceLock::new();
    SOURCES.get_or_init(|| {
        model::FEATURES
            .iter()
            .map(|(_, source, _, _)| FeatureSource::parse(source).expect("validated at build"))
            .collect()
    })
}

struct Component;

impl Guest for Component {
    fn metadata() -> ModelMetadata {
        ModelMetadata {
            name: model::NAME.into(),
            version: model::VERSION.into(),
            objective: model::OBJECTIVE.into(),
            features: model::FEATURES
                .iter()
                .map(|(name, source, unit, _)| FeatureInfo {
                    name: (*name).into(),
                    source: (*source).into(),
                    unit: (*unit).into(),
                })
                .collect(),
            metrics: model::METRICS
                .iter()
                .map(|(name, value)| Metric {
                    name: (*name).into(),
                    value: *value,
                })
                .collect(),
            model_sha256: model::MODEL_SHA256.into(),
            num_trees: model::TREES.len() as u32,
            base_score: f64::from(model::BASE_SCORE),
        }
    }

    fn score(input: ScoreInput, explain: bool) -> Result<Prediction, ScoreError> {
        let vitals = vitals_from_wit(&input.vitals);
        let profile = profile_from_wit(&input.profile);
        let mut row = Vec::with_capacity(sources().len());
        for (source, (name, _, _, required)) in sources().iter().zip(model::FEATURES.iter()) {
            let value = source.extract(&vitals, &profile);
            if value.is_none() && *required {
                return Err(ScoreError::MissingFeature(format!(
                    "missing required feature {name} (from {source:?}): send it in the reading or the profile"
                )));
            }
            row.push(value);
        }
        Ok(predict(&row, explain))
    }

    fn predict_features(
        features: Vec<Option<f64>>,
        explain: bool,
    ) -> Result<Prediction, ScoreError> {
        if features.len() != model::FEATURES.len() {
            return Err(ScoreError::WrongFeatureCount(format!(
                "got {} features, the model takes {} in the order of its metadata",
                features.len(),
                model::FEATURES.len()
            )));
        }
        Ok(predict(&features, explain))
    }
}

/// Scores one row; values are cast to `f32` first, as XGBoost does with its input.
fn predict(values: &[Option<f64>], explain: bool) -> Prediction {
    let row: Vec<f32> = values
        .iter()
        .map(|value| value.map_or(f32::NAN, |v| v as f32))
        .collect();
    let margin = FOREST.predict_margin(&row);
    let mut prediction = Prediction {
        probability: f64::from(sigmoid(margin)),
        margin: f64::from(margin),
        features: values.to_vec(),
        contributions: None,
        bias: None,
    };
    if explain {
        let phi = shap::contributions(&FOREST, &row);
        let contributions = model::FEATURES
            .iter()
            .zip(values)
            .zip(&phi)
            .map(|(((name, _, _, _), value), share)| Contribution {
                feature: (*name).into(),
                value: *value,
                contribution: f64::from(*share),
            })
            .collect();
        prediction.contributions = Some(contributions);
        prediction.bias = phi.last().map(|bias| f64::from(*bias));
    }
    prediction
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
