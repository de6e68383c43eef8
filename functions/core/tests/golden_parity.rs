//! Native parity of the evaluator and TreeSHAP against numbers XGBoost itself produced.
//!
//! Reads every `models/<name>/golden.json` beside a `model.json`; the host's tests repeat
//! the same check through the compiled score components. `CARDIOWATCH_GOLDEN_DIR` adds
//! one more directory holding such a pair, for ad-hoc checks of other models.

use std::path::{Path, PathBuf};

use cardiowatch_core::xgb::{forest::sigmoid, json::parse_model, shap::contributions};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    features: Vec<Option<f64>>,
    margin: f64,
    probability: f64,
    contributions: Vec<f64>,
}

fn model_dirs() -> Vec<PathBuf> {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&models)
        .map(|entries| {
            entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .collect()
        })
        .unwrap_or_default();
    if let Ok(extra) = std::env::var("CARDIOWATCH_GOLDEN_DIR") {
        dirs.push(PathBuf::from(extra));
    }
    dirs.retain(|dir| dir.join("golden.json").exists() && dir.join("model.json").exists());
    dirs.sort();
    dirs
}

/// Checks one contribution: absolute 1e-5, or relative 1e-5 for magnitudes above 1.
fn contribution_matches(expected: f64, actual: f64) -> bool {
    (expected - actual).abs() <= 1e-5 * expected.abs().max(1.0)
}

#[test]
fn golden_cases_match_xgboost() {
    let dirs = model_dirs();
    assert!(!dirs.is_empty(), "no models/<name>/golden.json found");
    for dir in dirs {
        let model = parse_model(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
        let golden: Golden =
            serde_json::from_slice(&std::fs::read(dir.join("golden.json")).unwrap()).unwrap();
        let forest = model.forest();
        for (index, case) in golden.cases.iter().enumerate() {
            let row: Vec<f32> = case
                .features
                .iter()
                .map(|value| value.map_or(f32::NAN, |v| v as f32))
                .collect();
            let margin = forest.predict_margin(&row);
            let probability = f64::from(sigmoid(margin));
            let where_ = format!("{} case {index}", dir.display());
            assert!(
                (probability - case.probability).abs() <= 1e-6,
                "{where_}: probability {probability} != {}",
                case.probability
            );
            assert!(
                (f64::from(margin) - case.margin).abs() <= 1e-5,
                "{where_}: margin {margin}"
            );
            let phi = contributions(&forest, &row);
            assert_eq!(
                phi.len(),
                case.contributions.len(),
                "{where_}: contribution count"
            );
            for (feature, (&actual, &expected)) in phi.iter().zip(&case.contributions).enumerate() {
                assert!(
                    contribution_matches(expected, f64::from(actual)),
                    "{where_} feature {feature}: contribution {actual} != {expected}"
                );
            }
        }
    }
}
