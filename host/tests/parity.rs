//! Parity of the score components, run through the host, with XGBoost's own output.
//!
//! `models/<name>/golden.json` holds feature rows with the probability and the
//! `pred_contribs` that the real `xgboost` package computed (`models/golden.py`).

mod common;

use cardiowatch::runtime::Instances;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    feature_names: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    features: Vec<Option<f64>>,
    probability: f64,
    contributions: Vec<f64>,
}

fn check_parity(hospital: &str, model_dir: &str) {
    let runtime = common::runtime();
    let (_, set) = common::component_set(&runtime, hospital);
    let names: Vec<String> = set.model.features.iter().map(|f| f.name.clone()).collect();
    let mut instances = Instances::new(&runtime, set).unwrap();
    let path = common::repo_root()
        .join("models")
        .join(model_dir)
        .join("golden.json");
    let golden: Golden = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        names, golden.feature_names,
        "component features differ from the golden file"
    );
    assert!(
        golden.cases.len() >= 1000,
        "only {} golden cases",
        golden.cases.len()
    );

    let mut worst_probability = 0f64;
    let mut worst_contribution = 0f64;
    for (index, case) in golden.cases.iter().enumerate() {
        let prediction = instances
            .predict_features(&case.features, true)
            .unwrap()
            .unwrap();
        let error = (prediction.probability - case.probability).abs();
        worst_probability = worst_probability.max(error);
        assert!(
            error <= 1e-6,
            "case {index}: probability {} != {}",
            prediction.probability,
            case.probability
        );

        let mut actual: Vec<f64> = prediction
            .contributions
            .unwrap()
            .iter()
            .map(|c| c.contribution)
            .collect();
        actual.push(prediction.bias.unwrap());
        assert_eq!(
            actual.len(),
            case.contributions.len(),
            "case {index}: contribution count"
        );
        for (feature, (got, expected)) in actual.iter().zip(&case.contributions).enumerate() {
            let error = (got - expected).abs() / expected.abs().max(1.0);
            worst_contribution = worst_contribution.max(error);
            assert!(
                error <= 1e-5,
                "case {index} feature {feature}: contribution {got} != {expected}"
            );
        }
    }
    println!(
        "{model_dir}: {} cases, worst probability error {worst_probability:e}, worst contribution error {worst_contribution:e}",
        golden.cases.len()
    );
}

#[test]
fn cardio_component_matches_xgboost() {
    check_parity("st-marys", "cardio");
}

#[test]
fn uci_component_matches_xgboost() {
    check_parity("northgate", "uci");
}

#[test]
fn metadata_names_model_and_sha256() {
    let runtime = common::runtime();
    let (_, set) = common::component_set(&runtime, "st-marys");
    let model_bytes = std::fs::read(common::repo_root().join("models/cardio/model.json")).unwrap();
    assert_eq!(set.model.name, "cardio-xgb");
    assert_eq!(set.model.objective, "binary:logistic");
    assert_eq!(
        set.model.model_sha256,
        cardiowatch_core::package::hex_sha256(&model_bytes)
    );
    assert!(
        set.model
            .metrics
            .iter()
            .any(|m| m.name == "roc_auc" && m.value > 0.75)
    );
    let bmi = set.model.features.iter().find(|f| f.name == "bmi").unwrap();
    assert_eq!(bmi.source, "profile.bmi");
}
