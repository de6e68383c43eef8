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

/// Maximum key length a dead letter keeps, in bytes. A longer key is cut and its length
/// recorded in a header.
pub const MAX_DEAD_LETTER_KEY_BYTES: usize = 1024;
/// Maximum payload length a dead letter keeps, in bytes, well below Kafka's default 1 MiB record limit so
/// that the added headers cannot make it undeliverable.
pub const MAX_DEAD_LETTER_PAYLOAD_BYTES: usize = 512 << 10;
/// Header naming the original length of a cut key.
pub const KEY_TRUNCATED_HEADER: &str = "cardiowatch-key-truncated-from";
/// Header naming the original length of a cut payload.
pub const PAYLOAD_TRUNCATED_HEADER: &str = "cardiowatch-payload-truncated-from";

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
            shadow,
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
            records.extend(shadow.iter().map(|shadow| OutputRecord {
                topic: topics.shadow_topic.clone(),
                key: key.clone(),
                payload: serde_json::to_vec(shadow).expect("shadow record serialises"),
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
    let mut key = input.key.clone();
    if let Some(bytes) = key.as_mut().filter(|k| k.len() > MAX_DEAD_LETTER_KEY_BYTES) {
        headers.push((
            KEY_TRUNCATED_HEADER.into(),
            bytes.len().to_string().into_bytes(),
        ));
        bytes.truncate(MAX_DEAD_LETTER_KEY_BYTES);
    }
    let mut payload = input.payload.clone();
    if payload.len() > MAX_DEAD_LETTER_PAYLOAD_BYTES {
        headers.push((
            PAYLOAD_TRUNCATED_HEADER.into(),
            payload.len().to_string().into_bytes(),
        ));
        payload.truncate(MAX_DEAD_LETTER_PAYLOAD_BYTES);
    }
    OutputRecord {
        topic: topic.to_string(),
        key,
        payload,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DeadLetterKind;

    #[test]
    fn dead_letter_cuts_oversized_key_and_payload() {
        let input = InputRecord {
            topic: "vitals".into(),
            key: Some(vec![b'k'; 900_000]),
            payload: vec![b'p'; 1_000_000],
            ..InputRecord::default()
        };
        let dead = DeadLetter {
            kind: DeadLetterKind::InvalidInput,
            reason: "invalid patient id".into(),
            hospital: None,
        };
        let record = dead_letter("dead-letters", &input, &dead);
        assert_eq!(
            record.key.as_ref().unwrap().len(),
            MAX_DEAD_LETTER_KEY_BYTES
        );
        assert_eq!(record.payload.len(), MAX_DEAD_LETTER_PAYLOAD_BYTES);
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header(KEY_TRUNCATED_HEADER), Some(b"900000".to_vec()));
        assert_eq!(header(PAYLOAD_TRUNCATED_HEADER), Some(b"1000000".to_vec()));
    }
}
