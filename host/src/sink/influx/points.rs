//! The points written for each prediction and alert: measurements `vitals`,
//! `predictions` and `alerts`, tagged with the hospital and the patient's pseudonym, at
//! the reading's event time. `docs/formats.md` lists every field.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::line_protocol::Line;
use crate::pipeline::output::{AlertRecord, ContributionJson, PredictionRecord, Status};

/// Measurement of the vitals each prediction scored.
pub const VITALS_MEASUREMENT: &str = "vitals";
/// Measurement of predictions.
pub const PREDICTIONS_MEASUREMENT: &str = "predictions";
/// Measurement of alerts.
pub const ALERTS_MEASUREMENT: &str = "alerts";
/// Contributions written per direction (raising and lowering the risk), as in alerts.
pub const TOP_CONTRIBUTIONS: usize = 3;
/// Hex characters kept of a patient id's HMAC: 64 bits, so that a million patients collide
/// with a probability of about 3e-8.
pub const PSEUDONYM_HEX_CHARS: usize = 16;

/// Turns patient ids into the `patient` tag.
#[derive(Clone)]
pub enum PatientTagger {
    /// HMAC-SHA256 of the id under a secret key, its first [`PSEUDONYM_HEX_CHARS`] hex
    /// characters; the key's state is prepared once and cloned per id.
    Keyed(Hmac<Sha256>),
    /// The id itself.
    Raw,
}

impl std::fmt::Debug for PatientTagger {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatientTagger::Keyed(_) => formatter.write_str("PatientTagger::Keyed(<redacted>)"),
            PatientTagger::Raw => formatter.write_str("PatientTagger::Raw"),
        }
    }
}

impl PatientTagger {
    /// A tagger hashing ids with `key`.
    pub fn keyed(key: &[u8]) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
        PatientTagger::Keyed(mac)
    }

    /// The `patient` tag of `patient_id`.
    pub fn tag(&self, patient_id: &str) -> String {
        match self {
            PatientTagger::Keyed(mac) => {
                let mut mac = mac.clone();
                mac.update(patient_id.as_bytes());
                let mut digest = hex::encode(mac.finalize().into_bytes());
                digest.truncate(PSEUDONYM_HEX_CHARS);
                digest
            }
            PatientTagger::Raw => patient_id.to_string(),
        }
    }
}

/// The points of one prediction: its `vitals` (when any vital was scored) and the
/// `predictions` point itself.
pub fn prediction_points(record: &PredictionRecord, patient: &str) -> Vec<String> {
    [
        vitals_point(record, patient),
        Some(prediction_point(record, patient)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The `vitals` point: every vital present, as a number.
fn vitals_point(record: &PredictionRecord, patient: &str) -> Option<String> {
    // The vitals' fields are private to the output module; their JSON form names each
    // with its unit, so it also picks up vitals added later.
    let Ok(Value::Object(vitals)) = serde_json::to_value(&record.vitals) else {
        return None;
    };
    let mut line = Line::new(VITALS_MEASUREMENT);
    line.tag("hospital", &record.hospital)
        .tag("patient", patient);
    for (name, value) in &vitals {
        match value {
            Value::Number(number) => {
                if let Some(number) = number.as_f64() {
                    line.float(name, number);
                }
            }
            Value::Bool(flag) => {
                line.integer(name, i64::from(*flag));
            }
            Value::String(level) if name == "consciousness" => {
                if let Some(level) = acvpu_level(level) {
                    line.integer("consciousness_acvpu", level);
                }
            }
            _ => {}
        }
    }
    line.finish(record.event_time_ms)
}

/// Position of a consciousness level on the ACVPU scale, from 0 (alert) to 4
/// (unresponsive).
fn acvpu_level(name: &str) -> Option<i64> {
    match name {
        "alert" => Some(0),
        "new_confusion" => Some(1),
        "voice" => Some(2),
        "pain" => Some(3),
        "unresponsive" => Some(4),
        _ => None,
    }
}

fn prediction_point(record: &PredictionRecord, patient: &str) -> String {
    let mut line = Line::new(PREDICTIONS_MEASUREMENT);
    line.tag("hospital", &record.hospital)
        .tag("patient", patient);
    if let Some(model) = &record.model {
        line.float("probability", model.probability);
    }
    line.integer("news2", i64::from(record.news2.total))
        .string("model_version", &record.components.model)
        .string("status", status_name(record.status));
    let contributions = record
        .model
        .as_ref()
        .and_then(|model| model.contributions.as_deref());
    if let Some(contributions) = contributions {
        let (positive, negative) = top_contributions(contributions);
        add_top_fields(&mut line, "pos", &positive);
        add_top_fields(&mut line, "neg", &negative);
    }
    line.finish(record.event_time_ms)
        .expect("a prediction point always has news2")
}

/// The `alerts` point of one alert. `kind` is a tag, so that a NEWS2 and a model alert
/// raised by the same reading, which share a timestamp, are separate points.
pub fn alert_point(record: &AlertRecord, patient: &str) -> String {
    let mut line = Line::new(ALERTS_MEASUREMENT);
    line.tag("hospital", &record.hospital)
        .tag("kind", record.kind)
        .tag("patient", patient);
    line.string("severity", record.severity)
        .string("reason", &record.reason);
    if let Some(probability) = record.probability {
        line.float("probability", probability);
    }
    line.integer("news2", i64::from(record.news2_total));
    line.finish(record.event_time_ms)
        .expect("an alert point always has severity")
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Scored => "scored",
        Status::News2Only => "news2_only",
        Status::Late => "late",
    }
}

/// Fields `top1_pos_feature`, `top1_pos_value` ... for `direction` `pos` or `neg`; the
/// value is the contribution in log-odds.
fn add_top_fields(line: &mut Line, direction: &str, top: &[&ContributionJson]) {
    for (index, contribution) in top.iter().enumerate() {
        let rank = index + 1;
        line.string(
            &format!("top{rank}_{direction}_feature"),
            &contribution.feature,
        );
        line.float(
            &format!("top{rank}_{direction}_value"),
            contribution.contribution,
        );
    }
}

/// The strongest contributions raising and lowering the risk, by the rule the alert
/// rules use for `top_positive` and `top_negative`: zero and NaN are skipped, the
/// strongest come first and ties keep the model's feature order.
fn top_contributions(
    contributions: &[ContributionJson],
) -> (Vec<&ContributionJson>, Vec<&ContributionJson>) {
    let mut positive: Vec<&ContributionJson> = contributions
        .iter()
        .filter(|item| item.contribution > 0.0)
        .collect();
    let mut negative: Vec<&ContributionJson> = contributions
        .iter()
        .filter(|item| item.contribution < 0.0)
        .collect();
    positive.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    negative.sort_by(|a, b| a.contribution.total_cmp(&b.contribution));
    positive.truncate(TOP_CONTRIBUTIONS);
    negative.truncate(TOP_CONTRIBUTIONS);
    (positive, negative)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::pipeline::output::{
        ComponentStamp, ComponentStamps, ModelJson, News2Json, PREDICTION_SCHEMA, SourceRef,
        VitalsJson,
    };
    use crate::runtime::bindings::types::{Consciousness, Vitals};

    /// Event time of the test records: 2026-12-04T10:15:00Z.
    pub const EVENT_TIME_MS: i64 = 1_796_379_300_000;

    fn contribution(feature: &str, contribution: f64) -> ContributionJson {
        ContributionJson {
            feature: feature.to_string(),
            value: Some(1.0),
            contribution,
        }
    }

    /// A scored prediction at st-marys with two vitals and, if given, contributions.
    pub fn prediction(contributions: Option<Vec<ContributionJson>>) -> PredictionRecord {
        let vitals = Vitals {
            heart_rate_bpm: Some(96.0),
            systolic_bp_mmhg: Some(172.5),
            diastolic_bp_mmhg: None,
            respiratory_rate_per_min: None,
            spo2_percent: None,
            temperature_celsius: None,
            supplemental_oxygen: Some(true),
            consciousness: Some(Consciousness::Voice),
        };
        let stamp = ComponentStamp {
            sha256: "0".repeat(64),
        };
        PredictionRecord {
            schema: PREDICTION_SCHEMA,
            hospital: "st-marys".to_string(),
            patient_id: "p-00012".to_string(),
            event_time_ms: EVENT_TIME_MS,
            status: Status::Scored,
            status_reason: None,
            model: Some(ModelJson {
                probability: 0.8125,
                margin: 1.4657,
                contributions,
                bias: None,
            }),
            news2: News2Json {
                total: 4,
                risk: "low_medium",
                parameters: Default::default(),
                missing: Vec::new(),
            },
            vitals: VitalsJson::from(&vitals),
            alerts: 0,
            source: SourceRef {
                topic: "vitals".to_string(),
                partition: 0,
                offset: 1,
                format: None,
            },
            components: ComponentStamps {
                preprocess: stamp.clone(),
                score: stamp.clone(),
                alert_rules: stamp,
                model: "cardio-xgb@1.0.0".to_string(),
                model_sha256: "1".repeat(64),
            },
        }
    }

    #[test]
    fn keyed_tag_is_truncated_hmac_sha256() {
        // RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?" under the
        // key "Jefe" is 5bdcc146bf60754e6a042426089575c7...
        let tagger = PatientTagger::keyed(b"Jefe");
        assert_eq!(
            tagger.tag("what do ya want for nothing?"),
            "5bdcc146bf60754e"
        );
    }

    #[test]
    fn keyed_tag_is_stable() {
        let first = PatientTagger::keyed(b"0123456789abcdef");
        let second = PatientTagger::keyed(b"0123456789abcdef");
        assert_eq!(first.tag("p-00012"), first.tag("p-00012"));
        assert_eq!(first.tag("p-00012"), second.tag("p-00012"));
        assert_eq!(first.tag("p-00012").len(), PSEUDONYM_HEX_CHARS);
    }

    #[test]
    fn keyed_tag_differs_per_key_and_id() {
        let tagger = PatientTagger::keyed(b"0123456789abcdef");
        let other_key = PatientTagger::keyed(b"0123456789abcdeg");
        assert_ne!(tagger.tag("p-00012"), other_key.tag("p-00012"));
        assert_ne!(tagger.tag("p-00012"), tagger.tag("p-00013"));
    }

    #[test]
    fn raw_tag_is_the_id() {
        assert_eq!(PatientTagger::Raw.tag("p-00012"), "p-00012");
    }

    #[test]
    fn prediction_without_contributions() {
        let points = prediction_points(&prediction(None), "abc");
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[0],
            "vitals,hospital=st-marys,patient=abc consciousness_acvpu=2i,heart_rate_bpm=96,\
             supplemental_oxygen=1i,systolic_bp_mmhg=172.5 1796379300000"
        );
        assert_eq!(
            points[1],
            "predictions,hospital=st-marys,patient=abc probability=0.8125,news2=4i,\
             model_version=\"cardio-xgb@1.0.0\",status=\"scored\" 1796379300000"
        );
    }

    #[test]
    fn prediction_with_contributions_writes_top_three_each_way() {
        let contributions = vec![
            contribution("age_years", 0.1),
            contribution("bmi", -0.4),
            contribution("systolic_bp_mmhg", 0.9),
            contribution("smoker", 0.0),
            contribution("cholesterol_category", 0.5),
            contribution("physically_active", -0.1),
            contribution("glucose_category", 0.3),
        ];
        let points = prediction_points(&prediction(Some(contributions)), "abc");
        let expected = "predictions,hospital=st-marys,patient=abc probability=0.8125,news2=4i,\
            model_version=\"cardio-xgb@1.0.0\",status=\"scored\",\
            top1_pos_feature=\"systolic_bp_mmhg\",top1_pos_value=0.9,\
            top2_pos_feature=\"cholesterol_category\",top2_pos_value=0.5,\
            top3_pos_feature=\"glucose_category\",top3_pos_value=0.3,\
            top1_neg_feature=\"bmi\",top1_neg_value=-0.4,\
            top2_neg_feature=\"physically_active\",top2_neg_value=-0.1 1796379300000";
        assert_eq!(points[1], expected);
    }

    #[test]
    fn news2_only_prediction_has_no_probability() {
        let mut record = prediction(None);
        record.status = Status::News2Only;
        record.model = None;
        let points = prediction_points(&record, "abc");
        assert!(!points[1].contains("probability"), "{}", points[1]);
        assert!(points[1].contains("status=\"news2_only\""), "{}", points[1]);
    }

    #[test]
    fn prediction_without_vitals_has_no_vitals_point() {
        let mut record = prediction(None);
        record.vitals = VitalsJson::default();
        let points = prediction_points(&record, "abc");
        assert_eq!(points.len(), 1);
        assert!(points[0].starts_with("predictions,"), "{}", points[0]);
    }

    #[test]
    fn alert_point_tags_kind() {
        let prediction = prediction(None);
        let alert = AlertRecord {
            schema: crate::pipeline::output::ALERT_SCHEMA,
            hospital: prediction.hospital.clone(),
            patient_id: prediction.patient_id.clone(),
            event_time_ms: EVENT_TIME_MS,
            kind: "news2",
            severity: "emergency",
            reason: "NEWS2 7 (high clinical risk): \"spo2\" 3".to_string(),
            escalation: false,
            news2_total: 7,
            probability: None,
            top_positive: Vec::new(),
            top_negative: Vec::new(),
            source: prediction.source.clone(),
            components: prediction.components.clone(),
        };
        assert_eq!(
            alert_point(&alert, "abc"),
            "alerts,hospital=st-marys,kind=news2,patient=abc severity=\"emergency\",\
             reason=\"NEWS2 7 (high clinical risk): \\\"spo2\\\" 3\",news2=7i 1796379300000"
        );
    }
}
