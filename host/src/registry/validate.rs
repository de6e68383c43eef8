//! Checks a component before it goes live for a hospital.
//!
//! In order, each failing with its own [`Rejection`]: the size limit, the WebAssembly
//! header (a component, not a core module), compilation, the imports against what the
//! role's world allows, the exports of the role's world, and a self-test. The self-test
//! runs the candidate inside the set it would join (the hospital's other two active
//! components), under the same deadline, memory and output limits as live traffic:
//!
//! - score: its metadata, then a fixed sweep of inputs from healthy to deteriorating,
//!   with and without explanations. Every probability must be finite and within 0 to 1,
//!   equal the logistic of the margin, not depend on whether contributions were asked
//!   for, and the contributions plus the bias must add up to the margin.
//! - preprocess: sample messages with expected outcomes, the hospital's own when it has
//!   set them, else a canonical reading that must parse and a broken body that must be
//!   rejected with a typed error.
//! - alert rules: the hospital's thresholds with a healthy patient (no alert), a NEWS2
//!   emergency (an alert) and a model probability of 0.99 (a model alert).

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Thresholds;
use crate::runtime::bindings::alert_rules::{AlertInput, AlertKind, AlertState, KindState};
use crate::runtime::bindings::preprocess::{Header, RawMessage};
use crate::runtime::bindings::score::ScoreInput;
use crate::runtime::bindings::types::{Consciousness, Profile, Sex, Vitals};
use crate::runtime::{
    ComponentSet, Instances, LoadStage, LoadedComponent, Role, Runtime, RuntimeError,
};

/// Interface prefixes a component may import: the pipeline's own types, and the WASI
/// interfaces a Rust guest's standard library links, which the host provides with
/// nothing behind them. Sockets, HTTP and anything else are refused even where
/// wasmtime could link them.
const ALLOWED_IMPORTS: [&str; 6] = [
    "cardiowatch:pipeline/types",
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// The reason an uploaded component was not deployed.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Over the size limit.
    #[error(
        "the component is {size} bytes, over the limit of {limit} bytes: strip debug info \
         (`strip = true` in the release profile) or raise `max_component_bytes`"
    )]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not WebAssembly, a core module, or a component wasmtime cannot compile.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// Imports an interface its world does not allow.
    #[error(
        "the {role} component imports {name}, which components may not use: only the \
         pipeline's types and WASI cli, io, clocks, random and filesystem are linked, with \
         nothing granted"
    )]
    ForbiddenImport {
        /// Its role.
        role: Role,
        /// The import.
        name: String,
    },
    /// Does not export the role's world.
    #[error(
        "wrong world for a {role} component: {error}: build it from wit/cardiowatch.wit's \
         `{world}` world",
        world = world_of(*.role)
    )]
    WrongWorld {
        /// The error wasmtime reported.
        #[source]
        error: RuntimeError,
        /// Its role.
        role: Role,
    },
    /// Failed its self-test.
    #[error("self-test of the {role} component failed: {message}")]
    SelfTest {
        /// Its role.
        role: Role,
        /// The case and what went wrong.
        message: String,
    },
}

fn world_of(role: Role) -> &'static str {
    match role {
        Role::Preprocess => "preprocessor",
        Role::Score => "scorer",
        Role::AlertRules => "alerter",
    }
}

/// A sample message for a preprocess self-test and the outcome it must have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Topic the message is presented as coming from. Default `vitals`.
    #[serde(default = "default_sample_topic")]
    pub topic: String,
    /// Message key.
    #[serde(default)]
    pub key: Option<String>,
    /// Headers as name and value.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The payload, as text.
    pub payload: String,
    /// Whether preprocess must accept (`true`) or reject it with a typed error (`false`).
    pub accept: bool,
}

fn default_sample_topic() -> String {
    "vitals".into()
}

/// Returns the samples used when a hospital has set none.
pub fn default_samples() -> Vec<Sample> {
    vec![
        Sample {
            topic: "vitals".into(),
            key: Some("self-test".into()),
            headers: Vec::new(),
            payload: r#"{"schema":"cardiowatch.reading/1","patient_id":"self-test","time_ms":1700000000000,"vitals":{"heart_rate_bpm":88,"systolic_bp_mmhg":132,"diastolic_bp_mmhg":84,"respiratory_rate_per_min":18,"spo2_percent":96,"temperature_celsius":37.2}}"#.into(),
            accept: true,
        },
        Sample {
            topic: "vitals".into(),
            key: Some("self-test".into()),
            headers: Vec::new(),
            payload: "{not json".into(),
            accept: false,
        },
    ]
}

/// A candidate that passed every check.
pub struct Checked {
    /// The compiled component.
    pub component: LoadedComponent,
    /// The set it was tested in, with the candidate in its role.
    pub set: Arc<ComponentSet>,
}

/// Runs every check on `bytes` as the `role` component of a hospital whose other
/// components are `current` and whose thresholds and samples are given.
///
/// # Errors
///
/// The first check that failed.
pub fn check(
    runtime: &Runtime,
    role: Role,
    bytes: &[u8],
    max_bytes: usize,
    current: &ComponentSet,
    thresholds: &Thresholds,
    samples: &[Sample],
) -> Result<Checked, Rejection> {
    if bytes.len() > max_bytes {
        return Err(Rejection::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    check_header(bytes)?;
    let name = Path::new("upload.wasm");
    let component = match runtime.load_bytes(role, name, bytes) {
        Ok(component) => component,
        Err(RuntimeError::Invalid {
            stage: LoadStage::Compile,
            message,
            ..
        }) => return Err(Rejection::NotAComponent(message)),
        Err(error) => {
            // A link failure means an import the host has no implementation for: name
            // it when the import check can.
            if let Ok(imports) = compile_imports(runtime, role, bytes) {
                forbidden_import(role, &imports)?;
            }
            return Err(Rejection::WrongWorld { error, role });
        }
    };
    forbidden_import(role, &component.imports)?;
    let mut members: Vec<LoadedComponent> = Role::ALL
        .iter()
        .map(|&each| current.loaded(each).clone())
        .collect();
    members[role_index(role)] = component.clone();
    let members: [LoadedComponent; 3] = members.try_into().ok().expect("three roles");
    let self_test = |message: String| Rejection::SelfTest { role, message };
    let set = ComponentSet::new(runtime, members).map_err(|e| self_test(e.to_string()))?;
    let mut instances =
        Instances::new(runtime, set.clone()).map_err(|e| self_test(e.to_string()))?;
    match role {
        Role::Score => self_test_score(&mut instances, &set),
        Role::Preprocess => self_test_preprocess(&mut instances, samples),
        Role::AlertRules => self_test_alert_rules(&mut instances, thresholds),
    }
    .map_err(self_test)?;
    Ok(Checked { component, set })
}

fn role_index(role: Role) -> usize {
    Role::ALL
        .iter()
        .position(|&each| each == role)
        .expect("every role is listed")
}

/// Imports of bytes that compile but did not link, for naming the offending import.
fn compile_imports(runtime: &Runtime, role: Role, bytes: &[u8]) -> Result<Vec<String>, ()> {
    runtime.imports_of(bytes).map_err(|_| {
        tracing::debug!(%role, "the upload did not compile");
    })
}

fn forbidden_import(role: Role, imports: &[String]) -> Result<(), Rejection> {
    match imports.iter().find(|name| {
        !ALLOWED_IMPORTS
            .iter()
            .any(|prefix| name.starts_with(prefix))
    }) {
        Some(name) => Err(Rejection::ForbiddenImport {
            role,
            name: name.clone(),
        }),
        None => Ok(()),
    }
}

/// The first eight bytes of a component: the magic, then layer 1 and version 0x0d.
fn check_header(bytes: &[u8]) -> Result<(), Rejection> {
    let shown = |bytes: &[u8]| hex::encode(&bytes[..bytes.len().min(8)]);
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(Rejection::NotAComponent(format!(
            "the upload does not start with the WebAssembly magic bytes (it starts with \
             0x{}): send the .wasm file itself",
            shown(bytes)
        )));
    }
    if bytes[6..8] == [0, 0] {
        return Err(Rejection::NotAComponent(
            "the upload is a core WebAssembly module, not a component: build it for \
             wasm32-wasip2, or wrap it with `wasm-tools component new`"
                .into(),
        ));
    }
    Ok(())
}

fn healthy_vitals() -> Vitals {
    Vitals {
        heart_rate_bpm: Some(72.0),
        systolic_bp_mmhg: Some(122.0),
        diastolic_bp_mmhg: Some(78.0),
        respiratory_rate_per_min: Some(15.0),
        spo2_percent: Some(98.0),
        temperature_celsius: Some(36.8),
        supplemental_oxygen: Some(false),
        consciousness: Some(Consciousness::Alert),
    }
}

fn emergency_vitals() -> Vitals {
    Vitals {
        heart_rate_bpm: Some(135.0),
        systolic_bp_mmhg: Some(88.0),
        diastolic_bp_mmhg: Some(50.0),
        respiratory_rate_per_min: Some(28.0),
        spo2_percent: Some(89.0),
        temperature_celsius: Some(39.3),
        supplemental_oxygen: Some(true),
        consciousness: Some(Consciousness::Voice),
    }
}

/// Builds a sweep of inputs from healthy to deteriorating, with some values missing.
fn score_cases() -> Vec<ScoreInput> {
    let (healthy, sick) = (healthy_vitals(), emergency_vitals());
    let mix = |a: Option<f64>, b: Option<f64>, t: f64| Some(a? + (b? - a?) * t);
    (0..12)
        .map(|i| {
            let t = f64::from(i) / 11.0;
            let mut vitals = Vitals {
                heart_rate_bpm: mix(healthy.heart_rate_bpm, sick.heart_rate_bpm, t),
                systolic_bp_mmhg: mix(healthy.systolic_bp_mmhg, sick.systolic_bp_mmhg, t),
                diastolic_bp_mmhg: mix(healthy.diastolic_bp_mmhg, sick.diastolic_bp_mmhg, t),
                respiratory_rate_per_min: mix(
                    healthy.respiratory_rate_per_min,
                    sick.respiratory_rate_per_min,
                    t,
                ),
                spo2_percent: mix(healthy.spo2_percent, sick.spo2_percent, t),
                temperature_celsius: mix(healthy.temperature_celsius, sick.temperature_celsius, t),
                supplemental_oxygen: Some(i > 8),
                consciousness: Some(Consciousness::Alert),
            };
            if i % 4 == 3 {
                vitals.temperature_celsius = None;
                vitals.spo2_percent = None;
            }
            let profile = Profile {
                age_years: Some(30.0 + 4.0 * f64::from(i)),
                sex: Some(if i % 2 == 0 { Sex::Female } else { Sex::Male }),
                height_cm: Some(160.0 + f64::from(i)),
                weight_kg: Some(60.0 + 3.0 * f64::from(i)),
                cholesterol_category: Some(1 + (i % 3) as u8),
                glucose_category: Some(1 + (i / 4) as u8),
                smoker: Some(i % 3 == 0),
                alcohol: Some(i % 5 == 0),
                physically_active: Some(i % 2 == 1),
                spo2_scale: None,
                extra: Vec::new(),
            };
            ScoreInput { vitals, profile }
        })
        .collect()
}

fn self_test_score(instances: &mut Instances, set: &ComponentSet) -> Result<(), String> {
    let model = &set.model;
    if model.features.is_empty() {
        return Err(format!(
            "model {}@{} declares no features",
            model.name, model.version
        ));
    }
    for (case, input) in score_cases().iter().enumerate() {
        let explained = call_score(instances, input, true, case)?;
        let plain = call_score(instances, input, false, case)?;
        let p = explained.probability;
        if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
            return Err(format!("case {case}: probability {p} is not within 0 to 1"));
        }
        if explained.features.len() != model.features.len() {
            return Err(format!(
                "case {case}: {} feature values for a model of {} features",
                explained.features.len(),
                model.features.len()
            ));
        }
        let logistic = 1.0 / (1.0 + (-explained.margin).exp());
        if (logistic - p).abs() > 1e-6 {
            return Err(format!(
                "case {case}: probability {p} is not the logistic of the margin {} ({logistic})",
                explained.margin
            ));
        }
        if (plain.probability - p).abs() > 1e-9 {
            return Err(format!(
                "case {case}: probability {} without contributions but {p} with them",
                plain.probability
            ));
        }
        let Some(contributions) = &explained.contributions else {
            return Err(format!(
                "case {case}: no contributions although they were asked for"
            ));
        };
        let total = contributions.iter().map(|c| c.contribution).sum::<f64>()
            + explained.bias.unwrap_or(0.0);
        let tolerance = 1e-3 * (1.0 + explained.margin.abs());
        if (total - explained.margin).abs() > tolerance {
            return Err(format!(
                "case {case}: contributions and bias add up to {total}, not to the margin {}",
                explained.margin
            ));
        }
    }
    Ok(())
}

fn call_score(
    instances: &mut Instances,
    input: &ScoreInput,
    explain: bool,
    case: usize,
) -> Result<crate::runtime::bindings::score::Prediction, String> {
    match instances.score(input, explain) {
        Ok(Ok(prediction)) => Ok(prediction),
        Ok(Err(error)) => Err(format!(
            "case {case}: the model refused a full input: {error:?}"
        )),
        Err(error) => Err(format!("case {case}: {error}")),
    }
}

fn self_test_preprocess(instances: &mut Instances, samples: &[Sample]) -> Result<(), String> {
    let defaults;
    let samples = if samples.is_empty() {
        defaults = default_samples();
        &defaults
    } else {
        samples
    };
    for (case, sample) in samples.iter().enumerate() {
        let message = RawMessage {
            topic: sample.topic.clone(),
            key: sample.key.clone().map(String::into_bytes),
            payload: sample.payload.clone().into_bytes(),
            headers: sample
                .headers
                .iter()
                .map(|(key, value)| Header {
                    key: key.clone(),
                    value: Some(value.clone().into_bytes()),
                })
                .collect(),
        };
        match (instances.parse(&message), sample.accept) {
            (Err(error), _) => return Err(format!("sample {case}: {error}")),
            (Ok(Ok(_)), true) | (Ok(Err(_)), false) => {}
            (Ok(Ok(_)), false) => {
                return Err(format!("sample {case} must be rejected but was accepted"));
            }
            (Ok(Err(error)), true) => {
                return Err(format!(
                    "sample {case} must be accepted but was rejected: {}",
                    crate::pipeline::describe_input_error(&error)
                ));
            }
        }
    }
    Ok(())
}

fn self_test_alert_rules(instances: &mut Instances, thresholds: &Thresholds) -> Result<(), String> {
    let quiet = KindState {
        last_severity: None,
        last_alert_ms: None,
    };
    let cases: [(&str, Vitals, Option<f64>, Option<AlertKind>); 3] = [
        ("a healthy patient", healthy_vitals(), Some(0.05), None),
        (
            "a NEWS2 emergency",
            emergency_vitals(),
            None,
            Some(AlertKind::News2),
        ),
        (
            "a model probability of 0.99",
            healthy_vitals(),
            Some(0.99),
            Some(AlertKind::Model),
        ),
    ];
    // Event times end in different digits, so that behaviour keyed on the clock is seen.
    for (case, (name, vitals, probability, expected)) in cases.into_iter().enumerate() {
        let input = AlertInput {
            vitals,
            spo2_scale2: false,
            model: probability.map(|probability| {
                crate::runtime::bindings::alert_rules::ModelOutput {
                    probability,
                    contributions: None,
                }
            }),
            event_time_ms: 1_700_000_000_000 + case as i64 * 60_001,
            thresholds: crate::pipeline::wit_thresholds(thresholds),
            state: AlertState {
                news2: quiet,
                model: quiet,
            },
        };
        let outcome = match instances.evaluate(&input) {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => return Err(format!("{name}: the rules refused it: {error:?}")),
            Err(error) => return Err(format!("{name}: {error}")),
        };
        match expected {
            None if !outcome.alerts.is_empty() => {
                return Err(format!("{name} raised {} alerts", outcome.alerts.len()));
            }
            Some(kind) if !outcome.alerts.iter().any(|alert| alert.kind == kind) => {
                return Err(format!("{name} raised no {kind:?} alert"));
            }
            _ => {}
        }
    }
    Ok(())
}
