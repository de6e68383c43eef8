//! One record in, one outcome out: route, preprocess, join state, score, alert.
//!
//! Every vitals record yields exactly one prediction (with its alerts) or one dead
//! letter; nothing is dropped. A guest's typed error and a trap both end as a dead letter
//! with the reason, and a trap also resets that hospital's instances.

pub mod output;
mod scoring;

pub(crate) use scoring::wit_thresholds;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::HospitalConfig;
use crate::runtime::bindings::preprocess::{Header, InputError, RawMessage};
use crate::runtime::bindings::types::Reading;
use crate::runtime::{ComponentSet, Instances, Role, Runtime, RuntimeError};
use crate::state::{PatientKey, StateStore};
use output::{AlertRecord, PredictionRecord, SourceRef};

/// Kafka header naming the hospital of a record.
pub const HOSPITAL_HEADER: &str = "hospital-id";

/// One input record with its Kafka coordinates.
#[derive(Debug, Clone, Default)]
pub struct InputRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Message key.
    pub key: Option<Vec<u8>>,
    /// Payload.
    pub payload: Vec<u8>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Kafka message timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

/// Why a record became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// The record names no configured hospital.
    UnknownHospital,
    /// Preprocess rejected the record, or it lacks a patient id or event time.
    InvalidInput,
    /// A component trapped, timed out or ran out of memory.
    ComponentFailure,
    /// The alert rules rejected the hospital's thresholds.
    RuleFailure,
}

impl DeadLetterKind {
    /// Name as written in the `cardiowatch-error-kind` header.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::UnknownHospital => "unknown_hospital",
            DeadLetterKind::InvalidInput => "invalid_input",
            DeadLetterKind::ComponentFailure => "component_failure",
            DeadLetterKind::RuleFailure => "rule_failure",
        }
    }
}

/// A record that could not be processed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Category.
    pub kind: DeadLetterKind,
    /// Human-readable reason naming the value and the fix.
    pub reason: String,
    /// Hospital, when routing got that far.
    pub hospital: Option<String>,
}

/// The outcome of one vitals record.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A prediction and the alerts it raised.
    Scored {
        /// Patient id, the key of every output record.
        patient_id: String,
        /// The prediction.
        prediction: Box<PredictionRecord>,
        /// Alerts, possibly none.
        alerts: Vec<AlertRecord>,
        /// What the hospital's shadow score component made of the same reading.
        shadow: Option<Box<output::ShadowRecord>>,
    },
    /// A dead letter.
    DeadLetter(DeadLetter),
}

/// Outcome of one record on the patients topic.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileOutcome {
    /// The profile was stored.
    Stored,
    /// The record was rejected.
    DeadLetter(DeadLetter),
}

/// A hospital's configuration with its live instances.
pub struct Hospital {
    /// Configuration, including thresholds.
    pub config: HospitalConfig,
    instances: Instances,
    /// A candidate score component run beside the active one, in its own store.
    shadow: Option<Instances>,
    /// Role of the component that failed on the record being processed.
    failed_role: Option<Role>,
    /// Records in a row on which a component failed.
    consecutive_failures: u32,
}

/// A request to quarantine a component that failed on too many records in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRequest {
    /// Hospital.
    pub hospital: String,
    /// Role of the failing component.
    pub role: Role,
    /// Its sha256.
    pub sha256: String,
    /// The number of failures and the last reason.
    pub reason: String,
}

impl Hospital {
    /// Instantiates a hospital's component set.
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] if instantiation traps.
    pub fn new(
        runtime: &Runtime,
        config: HospitalConfig,
        set: Arc<ComponentSet>,
    ) -> Result<Self, RuntimeError> {
        let instances = Instances::new(runtime, set)?.with_hospital(&config.id);
        Ok(Hospital {
            config,
            instances,
            shadow: None,
            failed_role: None,
            consecutive_failures: 0,
        })
    }

    /// The component set in use.
    pub fn components(&self) -> &Arc<ComponentSet> {
        self.instances.set()
    }

    /// Runs `set`, which differs from the active set in its score component, beside the
    /// active one on every reading; its results never reach the live outputs.
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] if instantiation traps.
    pub fn with_shadow(
        mut self,
        runtime: &Runtime,
        set: Arc<ComponentSet>,
    ) -> Result<Self, RuntimeError> {
        let id = self.config.id.clone();
        self.shadow = Some(Instances::new(runtime, set)?.with_hospital(&format!("{id}/shadow")));
        Ok(self)
    }
}

/// Loads the three components named in a hospital's config.
///
/// # Errors
///
/// [`RuntimeError`] naming the file that failed.
pub fn load_component_set(
    runtime: &Runtime,
    config: &HospitalConfig,
) -> Result<Arc<ComponentSet>, RuntimeError> {
    let paths = &config.components;
    let preprocess = runtime.load(Role::Preprocess, &paths.preprocess)?;
    let score = runtime.load(Role::Score, &paths.score)?;
    let alert_rules = runtime.load(Role::AlertRules, &paths.alert_rules)?;
    ComponentSet::new(runtime, [preprocess, score, alert_rules])
}

/// The per-instance pipeline: hospitals, routing and patient state.
pub struct Pipeline {
    hospitals: HashMap<String, Hospital>,
    topic_hospitals: BTreeMap<String, String>,
    state: StateStore,
    quarantine_after: u32,
    quarantine_requests: Vec<QuarantineRequest>,
}

impl Pipeline {
    /// Creates a pipeline over `hospitals`; `topic_hospitals` maps a topic to the
    /// hospital of records that carry no `hospital-id` header.
    pub fn new(hospitals: Vec<Hospital>, topic_hospitals: BTreeMap<String, String>) -> Self {
        let hospitals = hospitals
            .into_iter()
            .map(|h| (h.config.id.clone(), h))
            .collect();
        Pipeline {
            hospitals,
            topic_hospitals,
            state: StateStore::default(),
            quarantine_after: 0,
            quarantine_requests: Vec::new(),
        }
    }

    /// Requests a quarantine after `failures` records in a row on which one hospital's
    /// components failed; 0 never does.
    pub fn with_quarantine_after(mut self, failures: u32) -> Self {
        self.quarantine_after = failures;
        self
    }

    /// Swaps in a hospital's new version between two records; patient state is kept.
    pub fn activate(&mut self, hospital: Hospital) {
        self.hospitals.insert(hospital.config.id.clone(), hospital);
    }

    /// Quarantine requests raised since the last call.
    pub fn take_quarantine_requests(&mut self) -> Vec<QuarantineRequest> {
        std::mem::take(&mut self.quarantine_requests)
    }

    /// Hospitals by id.
    pub fn hospitals(&self) -> impl Iterator<Item = &Hospital> {
        self.hospitals.values()
    }

    /// Number of patients with state.
    pub fn patient_count(&self) -> usize {
        self.state.patient_count()
    }

    /// Processes one vitals record.
    pub fn process(&mut self, record: &InputRecord) -> Outcome {
        let outcome = match self.try_process(record) {
            Ok(outcome) => outcome,
            Err(dead) => Outcome::DeadLetter(dead),
        };
        self.count_failures(&outcome);
        outcome
    }

    /// Counts records in a row on which a hospital's components failed.
    fn count_failures(&mut self, outcome: &Outcome) {
        let Outcome::DeadLetter(DeadLetter {
            hospital: Some(id), ..
        }) = outcome
        else {
            if let Outcome::Scored { prediction, .. } = outcome
                && let Some(hospital) = self.hospitals.get_mut(&prediction.hospital)
            {
                hospital.consecutive_failures = 0;
            }
            return;
        };
        let Some(hospital) = self.hospitals.get_mut(id) else {
            return;
        };
        let Some(role) = hospital.failed_role.take() else {
            hospital.consecutive_failures = 0;
            return;
        };
        hospital.consecutive_failures += 1;
        if self.quarantine_after > 0 && hospital.consecutive_failures == self.quarantine_after {
            let sha256 = hospital.components().info(role).sha256.clone();
            let reason = match outcome {
                Outcome::DeadLetter(dead) => dead.reason.clone(),
                Outcome::Scored { .. } => String::new(),
            };
            self.quarantine_requests.push(QuarantineRequest {
                hospital: id.clone(),
                role,
                sha256,
                reason: format!(
                    "failed on {} records in a row; last: {reason}",
                    self.quarantine_after
                ),
            });
        }
    }

    fn try_process(&mut self, record: &InputRecord) -> Result<Outcome, DeadLetter> {
        let hospital_id = self.route(record)?;
        let hospital = self
            .hospitals
            .get_mut(&hospital_id)
            .expect("route checks the id");
        let reading = parse(hospital, record, &hospital_id)?;
        let dead = |reason: String| DeadLetter {
            kind: DeadLetterKind::InvalidInput,
            reason,
            hospital: Some(hospital_id.clone()),
        };
        let patient_id = patient_id(record, &reading).ok_or_else(|| {
            dead("missing patient id: set the Kafka message key or patient_id in the body".into())
        })?;
        check_patient_id(&patient_id).map_err(dead)?;
        let event_time_ms = reading
            .event_time_ms
            .or(record.timestamp_ms)
            .ok_or_else(|| {
                dead("missing event time: send a time in the body or a Kafka timestamp".into())
            })?;
        check_clock_skew(event_time_ms, record.timestamp_ms).map_err(dead)?;
        let key: PatientKey = (hospital_id.clone(), patient_id.clone());
        if let Some(profile) = reading.profile.clone() {
            self.state.set_profile(key.clone(), profile);
        }
        let source = SourceRef {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            format: Some(reading.format.clone()),
        };
        let context = scoring::Context {
            key,
            event_time_ms,
            source,
        };
        scoring::score_reading(hospital, &mut self.state, &context, &reading)
    }

    /// Processes one record of the patients topic: stores the profile it carries.
    pub fn apply_profile(&mut self, record: &InputRecord) -> ProfileOutcome {
        let result = (|| {
            let hospital_id = self.route(record)?;
            let hospital = self
                .hospitals
                .get_mut(&hospital_id)
                .expect("route checks the id");
            let reading = parse(hospital, record, &hospital_id)?;
            let invalid = |reason: &str| DeadLetter {
                kind: DeadLetterKind::InvalidInput,
                reason: reason.to_string(),
                hospital: Some(hospital_id.clone()),
            };
            let patient_id = patient_id(record, &reading)
                .ok_or_else(|| invalid("missing patient id: set the message key or patient_id"))?;
            let profile = reading
                .profile
                .ok_or_else(|| invalid("missing profile: a patients record must carry one"))?;
            self.state.set_profile((hospital_id, patient_id), profile);
            Ok(())
        })();
        match result {
            Ok(()) => ProfileOutcome::Stored,
            Err(dead) => ProfileOutcome::DeadLetter(dead),
        }
    }

    /// Finds the hospital of a record: its `hospital-id` header, else its topic's default.
    fn route(&self, record: &InputRecord) -> Result<String, DeadLetter> {
        let header = record
            .headers
            .iter()
            .find(|(name, _)| name == HOSPITAL_HEADER)
            .and_then(|(_, value)| value.as_deref())
            .map(|value| String::from_utf8_lossy(value).into_owned());
        let id = header.or_else(|| self.topic_hospitals.get(&record.topic).cloned());
        let unknown = |reason: String| DeadLetter {
            kind: DeadLetterKind::UnknownHospital,
            reason,
            hospital: None,
        };
        let Some(id) = id else {
            return Err(unknown(format!(
                "missing hospital: set the {HOSPITAL_HEADER} header or map topic {:?} to a hospital",
                record.topic
            )));
        };
        if !self.hospitals.contains_key(&id) {
            let mut known: Vec<&str> = self.hospitals.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(unknown(format!(
                "unknown hospital {id:?}: expected one of {}",
                known.join(", ")
            )));
        }
        Ok(id)
    }
}

fn parse(hospital: &mut Hospital, record: &InputRecord, id: &str) -> Result<Reading, DeadLetter> {
    let message = RawMessage {
        topic: record.topic.clone(),
        key: record.key.clone(),
        payload: record.payload.clone(),
        headers: record
            .headers
            .iter()
            .map(|(key, value)| Header {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    };
    match hospital.instances.parse(&message) {
        Ok(Ok(reading)) => Ok(reading),
        Ok(Err(error)) => Err(DeadLetter {
            kind: DeadLetterKind::InvalidInput,
            reason: describe_input_error(&error),
            hospital: Some(id.to_string()),
        }),
        Err(trap) => Err(component_failure(hospital, trap)),
    }
}

fn component_failure(hospital: &mut Hospital, error: RuntimeError) -> DeadLetter {
    tracing::warn!(hospital = %hospital.config.id, %error, "component failed on a record");
    hospital.failed_role = match &error {
        RuntimeError::Trap { role, .. }
        | RuntimeError::OutputTooLarge { role, .. }
        | RuntimeError::Invalid { role, .. } => Some(*role),
        RuntimeError::Read { .. } => None,
    };
    DeadLetter {
        kind: DeadLetterKind::ComponentFailure,
        reason: error.to_string(),
        hospital: Some(hospital.config.id.clone()),
    }
}

/// Longest accepted patient id, in bytes.
pub const MAX_PATIENT_ID_BYTES: usize = 128;

/// How far an event time may lie ahead of its Kafka timestamp. A reading from the future
/// would make every later reading of the patient look late and silence its alerts.
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60_000;

fn check_patient_id(id: &str) -> Result<(), String> {
    if id.len() > MAX_PATIENT_ID_BYTES || id.chars().any(char::is_control) {
        let shown: String = id.chars().take(32).filter(|c| !c.is_control()).collect();
        return Err(format!(
            "invalid patient id starting {shown:?} ({} bytes): expected at most \
             {MAX_PATIENT_ID_BYTES} bytes without control characters",
            id.len()
        ));
    }
    Ok(())
}

fn check_clock_skew(event_time_ms: i64, kafka_timestamp_ms: Option<i64>) -> Result<(), String> {
    let Some(kafka_ms) = kafka_timestamp_ms.filter(|ms| *ms > 0) else {
        return Ok(());
    };
    let ahead_ms = event_time_ms.saturating_sub(kafka_ms);
    if ahead_ms > MAX_FUTURE_SKEW_MS {
        return Err(format!(
            "invalid event time {event_time_ms}: {} s ahead of the Kafka timestamp {kafka_ms}, \
             more than the {} s allowed: check the device clock",
            ahead_ms / 1000,
            MAX_FUTURE_SKEW_MS / 1000
        ));
    }
    Ok(())
}

/// Patient id from the message key, else from the body.
fn patient_id(record: &InputRecord, reading: &Reading) -> Option<String> {
    let from_key = record
        .key
        .as_deref()
        .and_then(|key| std::str::from_utf8(key).ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_string);
    from_key.or_else(|| reading.patient_id.clone().filter(|id| !id.is_empty()))
}

/// Renders a preprocess error as one line naming the field, the value and the fix.
pub fn describe_input_error(error: &InputError) -> String {
    match error {
        InputError::Malformed(text)
        | InputError::UnsupportedFormat(text)
        | InputError::InvalidField(text)
        | InputError::Other(text) => text.clone(),
        InputError::MissingField(field) => format!("missing required field {field}"),
        InputError::Implausible(value) => format!(
            "implausible {} {}: expected {}..={} {}",
            value.field, value.value, value.min, value.max, value.unit
        ),
    }
}
