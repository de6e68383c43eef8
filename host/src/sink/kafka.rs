//! Turns outcomes into Kafka records: predictions, alerts and dead letters.
//!
//! Every output is keyed by patient id, so a patient's outputs stay in order. A dead
//! letter carries the original key, payload and headers, plus headers naming the error
//! and the source topic, partition and offset.

use rdkafka::message::{Header, OwnedHeaders};

use crate::config::KafkaConfig;
use crate::pipeline::{DeadLetter, InputRecord, Outcome};

/// Header carrying a dead letter's reason.
pub const ERROR_HEADER: &str = "cardiowatch-error";
/// Header carrying a dead letter's category.
pub const ERROR_KIND_HEADER: &str = "cardiowatch-error-kind";
/// Header carrying the source topic of a dead letter.
pub const SOURCE_TOPIC_HEADER: &str = "cardiowatch-source-topic";
/// Header carrying the source partition of a dead letter.
pub const SOURCE_PARTITION_HEADER: &str = "cardiowatch-source-partition";
/// Header carrying the source offset of a dead letter.
pub const SOURCE_OFFSET_HEADER: &str = "cardiowatch-source-offset";

/// One record to produce, owning its bytes so it can be retried.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    /// Destination topic.
    pub topic: String,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl OutputRecord {
    /// Headers in rdkafka's form.
    pub fn owned_headers(&self) -> OwnedHeaders {
        self.headers
            .iter()
            .fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value),
                })
            })
    }
}

/// The records an outcome produces.
pub fn output_records(
    topics: &KafkaConfig,
    input: &InputRecord,
    outcome: &Outcome,
) -> Vec<OutputRecord> {
    match outcome {
        Outcome::Scored {
            patient_id,
            prediction,
            alerts,
        } => {
            let key = Some(patient_id.as_bytes().to_vec());
            let mut records = vec![OutputRecord {
                topic: topics.predictions_topic.clone(),
                key: key.clone(),
                payload: serde_json::to_vec(prediction).expect("prediction serialises"),
                headers: Vec::new(),
            }];
            records.extend(alerts.iter().map(|alert| OutputRecord {
                topic: topics.alerts_topic.clone(),
                key: key.clone(),
                payload: serde_json::to_vec(alert).expect("alert serialises"),
                headers: Vec::new(),
            }));
            records
        }
        Outcome::DeadLetter(dead) => vec![dead_letter(&topics.dead_letter_topic, input, dead)],
    }
}

/// Builds the dead-letter record of `input`.
pub fn dead_letter(topic: &str, input: &InputRecord, dead: &DeadLetter) -> OutputRecord {
    let mut headers: Vec<(String, Vec<u8>)> = input
        .headers
        .iter()
        .map(|(key, value)| (key.clone(), value.clone().unwrap_or_default()))
        .collect();
    headers.push((ERROR_HEADER.into(), dead.reason.clone().into_bytes()));
    headers.push((
        ERROR_KIND_HEADER.into(),
        dead.kind.as_str().as_bytes().to_vec(),
    ));
    headers.push((SOURCE_TOPIC_HEADER.into(), input.topic.clone().into_bytes()));
    headers.push((
        SOURCE_PARTITION_HEADER.into(),
        input.partition.to_string().into_bytes(),
    ));
    headers.push((
        SOURCE_OFFSET_HEADER.into(),
        input.offset.to_string().into_bytes(),
    ));
    OutputRecord {
        topic: topic.to_string(),
        key: input.key.clone(),
        payload: input.payload.clone(),
        headers,
    }
}
