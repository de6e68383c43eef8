//! The `cardiowatch` binary's offline commands: `score`, `model inspect`, `model predict`
//! and the validation step of `model package`.

mod common;

use std::process::{Command, Output};

use serde_json::Value;

fn cardiowatch(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cardiowatch"));
    command.args(args).current_dir(common::repo_root());
    if stdin.is_some() {
        command.stdin(std::process::Stdio::piped());
    }
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("the binary runs");
    if let Some(text) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn score_prints_prediction_for_legacy_message() {
    let message = r#"{"id": 7, "age": 62, "gender": 1, "height": 170, "weight": 90, "ap_hi": 170,
        "ap_lo": 100, "cholesterol": 3, "gluc": 1, "smoke": 0, "alco": 0, "active": 0}"#;
    let output = cardiowatch(
        &["score", "--hospital", "legacy", "--topic", "heart_data"],
        Some(message),
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let probability = result["prediction"]["model"]["probability"]
        .as_f64()
        .unwrap();
    assert!(probability > 0.8, "probability {probability}");
    assert_eq!(result["prediction"]["status"], "scored");
    let alerts = result["alerts"].as_array().unwrap();
    assert!(alerts.iter().any(|a| a["kind"] == "model"), "{alerts:?}");
}

#[test]
fn score_reports_dead_letter_reason() {
    let message = r#"{"patient_id": "p1", "vitals": {"spo2_percent": 140}}"#;
    let output = cardiowatch(&["score", "--hospital", "st-marys"], Some(message));
    assert!(!output.status.success());
    let error = text(&output.stderr);
    assert!(error.contains("spo2_percent 140"), "{error}");
    assert!(error.contains("dead-letter"), "{error}");
}

#[test]
fn inspect_manifest_prints_importance_and_tree() {
    let output = cardiowatch(
        &[
            "model",
            "inspect",
            "models/cardio/manifest.toml",
            "--tree",
            "3",
        ],
        None,
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("model cardio-xgb@1.0.0"), "{stdout}");
    assert!(stdout.contains("feature importance"), "{stdout}");
    assert!(stdout.contains("tree 3:"), "{stdout}");
    assert!(stdout.contains("└── "), "the tree is drawn: {stdout}");
}

#[test]
fn inspect_component_prints_metadata() {
    let component = common::component("score-uci.wasm");
    let output = cardiowatch(&["model", "inspect", component.to_str().unwrap()], None);
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("model uci-cleveland-xgb@1.0.0"), "{stdout}");
    assert!(stdout.contains("metric roc_auc"), "{stdout}");
}

#[test]
fn predict_matches_golden_probabilities() {
    let golden: Value = serde_json::from_slice(
        &std::fs::read(common::repo_root().join("models/uci/golden.json")).unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = golden["feature_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let cases = &golden["cases"].as_array().unwrap()[..50];
    let mut csv = names.join(",") + "\n";
    for case in cases {
        let cells: Vec<String> = case["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().map(|x| format!("{x:?}")).unwrap_or_default())
            .collect();
        csv.push_str(&(cells.join(",") + "\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    std::fs::write(&path, csv).unwrap();
    let component = common::component("score-uci.wasm");
    let output = cardiowatch(
        &[
            "model",
            "predict",
            component.to_str().unwrap(),
            path.to_str().unwrap(),
            "--explain",
        ],
        None,
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let mut lines = stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("probability,margin,contribution_age_years"),
        "{header}"
    );
    for (line, case) in lines.zip(cases) {
        let probability: f64 = line.split(',').next().unwrap().parse().unwrap();
        let expected = case["probability"].as_f64().unwrap();
        assert!(
            (probability - expected).abs() <= 1e-6,
            "{probability} != {expected}"
        );
    }
}

#[test]
fn package_rejects_multiclass_model() {
    let dir = tempfile::tempdir().unwrap();
    let cardio = common::repo_root().join("models/cardio");
    let model = std::fs::read_to_string(cardio.join("model.json")).unwrap();
    let multiclass = model.replacen(r#""num_class":"0""#, r#""num_class":"3""#, 1);
    assert_ne!(model, multiclass, "the fixture edit must apply");
    std::fs::write(dir.path().join("model.json"), multiclass).unwrap();
    let manifest = std::fs::read_to_string(cardio.join("manifest.toml")).unwrap();
    std::fs::write(
        dir.path().join("manifest.toml"),
        manifest.replace("metrics = \"metrics.json\"", ""),
    )
    .unwrap();
    let manifest_path = dir.path().join("manifest.toml");
    let output = cardiowatch(
        &[
            "model",
            "package",
            "--manifest",
            manifest_path.to_str().unwrap(),
            "--out",
            "/dev/null",
        ],
        None,
    );
    assert!(!output.status.success());
    let error = text(&output.stderr);
    assert!(
        error.contains("multi-class model with num_class 3"),
        "{error}"
    );
}

#[test]
fn package_rejects_wrong_feature_order() {
    let dir = tempfile::tempdir().unwrap();
    let cardio = common::repo_root().join("models/cardio");
    std::fs::copy(cardio.join("model.json"), dir.path().join("model.json")).unwrap();
    let manifest = std::fs::read_to_string(cardio.join("manifest.toml"))
        .unwrap()
        .replace("metrics = \"metrics.json\"", "")
        .replacen("name = \"age_years\"", "name = \"age_days\"", 1);
    std::fs::write(dir.path().join("manifest.toml"), manifest).unwrap();
    let manifest_path = dir.path().join("manifest.toml");
    let output = cardiowatch(
        &[
            "model",
            "package",
            "--manifest",
            manifest_path.to_str().unwrap(),
            "--out",
            "/dev/null",
        ],
        None,
    );
    assert!(!output.status.success());
    let error = text(&output.stderr);
    assert!(
        error.contains("\"age_days\" in the manifest but \"age_years\" in the model"),
        "{error}"
    );
}
