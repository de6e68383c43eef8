//! A model baked into a component as static data, and scoring of canonical readings with it.
//!
//! `package::generate_rust` (feature `package`) writes one [`BakedModel`] static per build. Every
//! component that carries a model (the score component, the Spin HTTP component) scores
//! through [`BakedModel::score`], so a reading gets the same feature row, probability and
//! contributions whichever component runs it.

use std::sync::OnceLock;

use super::features::FeatureSource;
use super::forest::sigmoid;
use super::{Forest, shap};
use crate::types::{Contribution, Profile, Vitals};

/// One model feature as the manifest declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BakedFeature {
    /// Feature name in the model.
    pub name: &'static str,
    /// Canonical source path, see [`FeatureSource::parse`].
    pub source: &'static str,
    /// Unit the model was trained in.
    pub unit: &'static str,
    /// Whether scoring fails when the value is missing.
    pub required: bool,
}

/// Identity and description of a baked model.
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo {
    /// Model name.
    pub name: &'static str,
    /// Model version.
    pub version: &'static str,
    /// XGBoost objective, `binary:logistic`.
    pub objective: &'static str,
    /// Lowercase hex sha256 of the model JSON file.
    pub model_sha256: &'static str,
    /// XGBoost's `base_score`, as a probability.
    pub base_score: f32,
    /// Features in model order.
    pub features: &'static [BakedFeature],
    /// Held-out metrics from the model's metrics file, sorted by name.
    pub metrics: &'static [(&'static str, f64)],
}

/// A model and its feature map, compiled into the component.
#[derive(Debug)]
pub struct BakedModel {
    /// Identity and feature map.
    pub info: ModelInfo,
    /// The tree ensemble.
    pub forest: Forest<'static>,
    sources: OnceLock<Vec<FeatureSource>>,
}

/// The model's output for one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Probability of the positive class.
    pub probability: f64,
    /// Margin in log-odds.
    pub margin: f64,
    /// The feature row in model order, with `None` for a missing value.
    pub features: Vec<Option<f64>>,
    /// Exact TreeSHAP contributions in model order, when requested.
    pub contributions: Option<Vec<Contribution>>,
    /// TreeSHAP bias (expected margin), when contributions were requested.
    pub bias: Option<f64>,
}

/// Reason a row could not be scored. The cases mirror the WIT `score-error` variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    /// A required feature is missing. The text names it and its source.
    #[error("{0}")]
    MissingFeature(String),
    /// A raw row has the wrong length. The text gives both counts.
    #[error("{0}")]
    WrongFeatureCount(String),
}

impl BakedModel {
    /// Creates a baked model. Generated code calls this in a `static` initialiser.
    pub const fn new(info: ModelInfo, forest: Forest<'static>) -> Self {
        BakedModel {
            info,
            forest,
            sources: OnceLock::new(),
        }
    }

    /// Builds the feature row from a reading's vitals and the patient's profile, then
    /// scores it. With `explain` set it also computes exact TreeSHAP contributions.
    ///
    /// # Errors
    ///
    /// [`ScoreError::MissingFeature`] when a feature marked required has no value.
    pub fn score(
        &self,
        vitals: &Vitals,
        profile: &Profile,
        explain: bool,
    ) -> Result<Prediction, ScoreError> {
        let mut row = Vec::with_capacity(self.info.features.len());
        for (source, feature) in self.sources().iter().zip(self.info.features) {
            let value = source.extract(vitals, profile);
            if value.is_none() && feature.required {
                return Err(ScoreError::MissingFeature(format!(
                    "missing required feature {} (from {source:?}): send it in the reading or \
                     the profile",
                    feature.name
                )));
            }
            row.push(value);
        }
        Ok(self.predict(&row, explain))
    }

    /// Scores a raw feature row given in model order.
    ///
    /// # Errors
    ///
    /// [`ScoreError::WrongFeatureCount`] when the row's length differs from the model's.
    pub fn predict_features(
        &self,
        features: &[Option<f64>],
        explain: bool,
    ) -> Result<Prediction, ScoreError> {
        if features.len() != self.info.features.len() {
            return Err(ScoreError::WrongFeatureCount(format!(
                "got {} features, the model takes {} in the order of its metadata",
                features.len(),
                self.info.features.len()
            )));
        }
        Ok(self.predict(features, explain))
    }

    /// Scores one row. Values are cast to `f32` first, as XGBoost does with its input.
    fn predict(&self, values: &[Option<f64>], explain: bool) -> Prediction {
        let row: Vec<f32> = values
            .iter()
            .map(|value| value.map_or(f32::NAN, |v| v as f32))
            .collect();
        let margin = self.forest.predict_margin(&row);
        let mut prediction = Prediction {
            probability: f64::from(sigmoid(margin)),
            margin: f64::from(margin),
            features: values.to_vec(),
            contributions: None,
            bias: None,
        };
        if explain {
            let phi = shap::contributions(&self.forest, &row);
            let contributions = self
                .info
                .features
                .iter()
                .zip(values)
                .zip(&phi)
                .map(|((feature, value), share)| Contribution {
                    feature: feature.name.into(),
                    value: *value,
                    contribution: f64::from(*share),
                })
                .collect();
            prediction.contributions = Some(contributions);
            prediction.bias = phi.last().map(|bias| f64::from(*bias));
        }
        prediction
    }

    /// Feature sources parsed once. `package::load` validated every path before the
    /// model was baked, so parsing cannot fail here.
    fn sources(&self) -> &[FeatureSource] {
        self.sources.get_or_init(|| {
            self.info
                .features
                .iter()
                .map(|feature| FeatureSource::parse(feature.source).expect("validated at build"))
                .collect()
        })
    }
}

/// Checks that at least `min_share` (0 to 1) of a row's features are present. A model fed
/// mostly missing values returns little more than its training prior, so the pipeline
/// reports NEWS2 only for such a row.
///
/// # Errors
///
/// The reason, with both counts and the fix, when too few features are present.
pub fn check_features_present(features: &[Option<f64>], min_share: f64) -> Result<(), String> {
    let total = features.len();
    let present = features.iter().filter(|value| value.is_some()).count();
    if total > 0 && (present as f64) < min_share * total as f64 {
        return Err(format!(
            "only {present} of {total} model features present, below min_features_present \
             {min_share}: send the missing profile fields or vitals"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xgb::{Node, TreeSpan};

    /// One stump on feature 0 (heart rate): 1.0 below 100 beats/min, -1.0 at or above,
    /// and the right branch for a missing value.
    static NODES: [Node; 3] = [
        Node {
            left: 1,
            right: 2,
            feature: 0,
            value: 100.0,
            cover: 2.0,
            default_left: false,
            is_leaf: false,
        },
        Node {
            left: 0,
            right: 0,
            feature: 0,
            value: 1.0,
            cover: 1.0,
            default_left: false,
            is_leaf: true,
        },
        Node {
            left: 0,
            right: 0,
            feature: 0,
            value: -1.0,
            cover: 1.0,
            default_left: false,
            is_leaf: true,
        },
    ];
    static TREES: [TreeSpan; 1] = [TreeSpan {
        start: 0,
        len: 3,
        max_depth: 1,
        mean_value: 0.0,
    }];
    static FEATURES: [BakedFeature; 2] = [
        BakedFeature {
            name: "hr",
            source: "vitals.heart_rate_bpm",
            unit: "beats/min",
            required: false,
        },
        BakedFeature {
            name: "age",
            source: "profile.age_years",
            unit: "years",
            required: true,
        },
    ];
    static MODEL: BakedModel = BakedModel::new(
        ModelInfo {
            name: "stump",
            version: "1",
            objective: "binary:logistic",
            model_sha256: "",
            base_score: 0.5,
            features: &FEATURES,
            metrics: &[],
        },
        Forest {
            nodes: &NODES,
            trees: &TREES,
            num_features: 2,
            base_margin: 0.0,
        },
    );

    fn profile(age: Option<f64>) -> Profile {
        Profile {
            age_years: age,
            ..Profile::default()
        }
    }

    #[test]
    fn score_follows_split() {
        let vitals = Vitals {
            heart_rate_bpm: Some(80.0),
            ..Vitals::default()
        };
        let prediction = MODEL.score(&vitals, &profile(Some(60.0)), false).unwrap();
        assert_eq!(prediction.margin, 1.0);
        assert_eq!(prediction.probability, f64::from(sigmoid(1.0)));
        assert_eq!(prediction.features, vec![Some(80.0), Some(60.0)]);
        assert!(prediction.contributions.is_none());
    }

    #[test]
    fn missing_value_takes_default_branch() {
        let prediction = MODEL
            .score(&Vitals::default(), &profile(Some(60.0)), false)
            .unwrap();
        assert_eq!(prediction.margin, -1.0);
    }

    #[test]
    fn missing_required_feature_is_rejected() {
        let error = MODEL
            .score(&Vitals::default(), &profile(None), false)
            .unwrap_err();
        assert!(matches!(error, ScoreError::MissingFeature(_)), "{error}");
        assert!(error.to_string().contains("feature age"), "{error}");
    }

    #[test]
    fn contributions_sum_to_margin() {
        let vitals = Vitals {
            heart_rate_bpm: Some(120.0),
            ..Vitals::default()
        };
        let prediction = MODEL.score(&vitals, &profile(Some(60.0)), true).unwrap();
        let contributions = prediction.contributions.unwrap();
        assert_eq!(contributions.len(), 2);
        assert_eq!(contributions[0].feature, "hr");
        let sum: f64 =
            contributions.iter().map(|c| c.contribution).sum::<f64>() + prediction.bias.unwrap();
        assert!((sum - prediction.margin).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn features_present_share_is_checked() {
        assert!(check_features_present(&[Some(1.0), None], 0.5).is_ok());
        let error = check_features_present(&[Some(1.0), None, None], 0.5).unwrap_err();
        assert!(
            error.starts_with("only 1 of 3 model features present"),
            "{error}"
        );
        assert!(check_features_present(&[], 0.5).is_ok());
    }

    #[test]
    fn raw_row_length_is_checked() {
        let error = MODEL.predict_features(&[Some(1.0)], false).unwrap_err();
        assert!(matches!(error, ScoreError::WrongFeatureCount(_)), "{error}");
    }
}
