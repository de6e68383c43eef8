//! Per-call time of each component through the host, and of one whole record through
//! the pipeline. Needs the built components (`./dev components`); run with `./dev bench`.

use std::path::Path;
use std::sync::Arc;

use cardiowatch::config::{KafkaConfig, load_hospitals};
use cardiowatch::pipeline::{Hospital, InputRecord, Pipeline, load_component_set};
use cardiowatch::runtime::bindings::alert_rules::{AlertInput, AlertState, KindState, Thresholds};
use cardiowatch::runtime::bindings::preprocess::{Header, RawMessage};
use cardiowatch::runtime::bindings::score::ScoreInput;
use cardiowatch::runtime::bindings::types::Reading;
use cardiowatch::runtime::{ComponentSet, Instances, Limits, Runtime};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn canonical_message() -> serde_json::Value {
    json!({"patient_id": "p-1", "time_ms": 1_796_379_300_000i64,
        "vitals": {"heart_rate_bpm": 92, "systolic_bp_mmhg": 148, "diastolic_bp_mmhg": 92,
            "respiratory_rate_per_min": 19, "spo2_percent": 95, "temperature_celsius": 37.4,
            "supplemental_oxygen": false, "consciousness": "alert"},
        "profile": {"age_years": 58, "sex": "male", "height_cm": 175, "weight_kg": 88,
            "cholesterol_category": 2, "glucose_category": 1, "smoker": true, "alcohol": false,
            "physically_active": false, "extra": {"chest_pain_type": 4, "serum_cholesterol_mg_dl": 250,
            "fasting_glucose_over_120": 0, "resting_ecg": 2, "max_exercise_heart_rate_bpm": 140,
            "exercise_angina": 1, "st_depression_mm": 1.5, "st_slope": 2, "major_vessels": 1, "thal": 7}}})
}

fn sets(runtime: &Runtime) -> Vec<(String, Arc<ComponentSet>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hospitals");
    load_hospitals(&dir)
        .expect("hospitals/ loads")
        .into_iter()
        .map(|config| {
            (
                config.id.clone(),
                load_component_set(runtime, &config).expect("run ./dev components"),
            )
        })
        .collect()
}

fn bench_components(c: &mut Criterion) {
    let runtime = Runtime::new(Limits::default()).unwrap();
    let message = RawMessage {
        topic: "vitals".into(),
        key: None,
        payload: canonical_message().to_string().into_bytes(),
        headers: vec![Header {
            key: "hospital-id".into(),
            value: Some(b"st-marys".to_vec()),
        }],
    };
    for (hospital, set) in sets(&runtime).into_iter().filter(|(id, _)| id != "legacy") {
        let mut instances = Instances::new(&runtime, set.clone()).unwrap();
        let reading: Reading = instances.parse(&message).unwrap().unwrap();
        let input = ScoreInput {
            vitals: reading.vitals,
            profile: reading.profile.clone().unwrap(),
        };
        let model = &set.model.name;
        if hospital == "st-marys" {
            c.bench_function("preprocess/parse canonical", |b| {
                b.iter(|| instances.parse(&message).unwrap().unwrap())
            });
            let alert = alert_input(&reading);
            c.bench_function("alert-rules/evaluate", |b| {
                b.iter(|| instances.evaluate(&alert).unwrap().unwrap())
            });
        }
        c.bench_function(&format!("score/{model} score"), |b| {
            b.iter(|| instances.score(&input, false).unwrap().unwrap())
        });
        c.bench_function(&format!("score/{model} score+explain"), |b| {
            b.iter(|| instances.score(&input, true).unwrap().unwrap())
        });
    }
}

fn alert_input(reading: &Reading) -> AlertInput {
    let empty = KindState {
        last_severity: None,
        last_alert_ms: None,
    };
    AlertInput {
        vitals: reading.vitals,
        spo2_scale2: false,
        model: None,
        event_time_ms: 1_796_379_300_000,
        thresholds: Thresholds {
            model_probability: 0.7,
            model_urgent_probability: 0.85,
            model_hysteresis: 0.05,
            news2_urgent: 5,
            news2_emergency: 7,
            news2_single_parameter: true,
            suppression_window_ms: 1_800_000,
        },
        state: AlertState {
            news2: empty,
            model: empty,
        },
    }
}

fn bench_pipeline(c: &mut Criterion) {
    let runtime = Runtime::new(Limits::default()).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hospitals");
    let hospitals = load_hospitals(&dir)
        .unwrap()
        .into_iter()
        .map(|config| {
            let set = load_component_set(&runtime, &config).unwrap();
            Hospital::new(&runtime, config, set).unwrap()
        })
        .collect();
    let mut pipeline = Pipeline::new(hospitals, KafkaConfig::default().topic_hospitals);
    let mut offset = 0i64;
    let payload = canonical_message();
    c.bench_function("pipeline/process canonical record", |b| {
        b.iter(|| {
            offset += 1;
            let mut body = payload.clone();
            body["time_ms"] = json!(1_796_379_300_000i64 + offset * 1000);
            let record = InputRecord {
                topic: "vitals".into(),
                offset,
                payload: body.to_string().into_bytes(),
                headers: vec![("hospital-id".into(), Some(b"st-marys".to_vec()))],
                ..InputRecord::default()
            };
            pipeline.process(&record)
        })
    });
}

criterion_group!(benches, bench_components, bench_pipeline);
criterion_main!(benches);
