//! A simulator of monitored patients for the embedded default and for real clusters.
//!
//! Each patient belongs to a hospital and has a drawn profile and stable baseline vitals
//! with measurement noise. A share of patients deteriorates over minutes of event time
//! in one of two ways: acute deterioration (heart and respiratory rate rise, blood
//! pressure and SpO2 fall, fever), which NEWS2 catches; or rising blood pressure in a
//! high-risk profile, which the models catch. Event time runs `speed` times faster than
//! wall time so that a deterioration shows within a minute.

pub mod profiles;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};

use profiles::{DrawnProfile, ProfileSampler};

/// Message format a simulated hospital sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WireFormat {
    /// cardiowatch's canonical JSON on the vitals topic, with a `hospital-id` header.
    Canonical,
    /// The flat JSON of the Spark system this replaces, on its `heart_data` topic.
    Legacy,
}

/// A simulated hospital.
#[derive(Debug, Clone)]
pub struct SimHospital {
    /// Hospital id.
    pub id: String,
    /// Format its devices send.
    pub format: WireFormat,
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of patients, spread over the hospitals.
    pub patients: usize,
    /// Hospitals.
    pub hospitals: Vec<SimHospital>,
    /// Event-time seconds between two readings of one patient.
    pub interval_s: u64,
    /// Share of patients that deteriorate, 0..=1.
    pub deteriorating_share: f64,
    /// Share of readings replaced by an invalid message, 0..=1.
    pub invalid_share: f64,
    /// Topic of canonical vitals.
    pub vitals_topic: String,
    /// Topic of legacy messages.
    pub legacy_topic: String,
    /// Topic of profiles.
    pub patients_topic: String,
    /// Random seed.
    pub seed: u64,
}

/// How a patient's vitals evolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Course {
    /// Stable around the baseline.
    Stable,
    /// Acute deterioration, caught by NEWS2.
    Acute,
    /// Rising blood pressure in a high-risk profile, caught by the model.
    Hypertensive,
}

/// One message to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMessage {
    /// Topic.
    pub topic: String,
    /// Key: the patient id.
    pub key: String,
    /// JSON payload.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Kafka timestamp in milliseconds since the epoch: the simulated event time of a
    /// reading, so that legacy messages (which carry no time) run on simulated time too.
    /// `None` lets the producer stamp the current time.
    pub timestamp_ms: Option<i64>,
}

struct Patient {
    id: String,
    hospital: usize,
    profile: DrawnProfile,
    course: Course,
    /// Event-time seconds after the start at which deterioration begins.
    onset_s: f64,
    next_reading_ms: i64,
}

/// The simulator state.
pub struct Simulator {
    config: SimConfig,
    patients: Vec<Patient>,
    rng: StdRng,
    start_ms: i64,
    produced_invalid: u64,
}

/// Minutes of event time over which a deterioration reaches its worst.
const RAMP_MINUTES: f64 = 8.0;

impl Simulator {
    /// Creates `config.patients` patients whose event time starts at `start_ms`.
    pub fn new(config: SimConfig, start_ms: i64) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let sampler = ProfileSampler::new();
        let interval_ms = (config.interval_s * 1000) as i64;
        let patients = (0..config.patients)
            .map(|index| {
                let course = pick_course(&mut rng, config.deteriorating_share);
                let profile = sampler.draw(&mut rng, course == Course::Hypertensive);
                Patient {
                    id: format!("p-{index:05}"),
                    hospital: index % config.hospitals.len().max(1),
                    profile,
                    course,
                    onset_s: rng.random_range(0.0..120.0),
                    next_reading_ms: start_ms + rng.random_range(0..interval_ms.max(1)),
                }
            })
            .collect();
        Simulator {
            config,
            patients,
            rng,
            start_ms,
            produced_invalid: 0,
        }
    }

    /// Number of patients per course: stable, acute, hypertensive.
    pub fn course_counts(&self) -> [usize; 3] {
        let count = |course| self.patients.iter().filter(|p| p.course == course).count();
        [
            count(Course::Stable),
            count(Course::Acute),
            count(Course::Hypertensive),
        ]
    }

    /// Profile messages for the patients topic, for hospitals that send canonical JSON
    /// (legacy messages carry their own profile).
    pub fn profile_messages(&self) -> Vec<SimMessage> {
        self.patients
            .iter()
            .filter(|p| self.config.hospitals[p.hospital].format == WireFormat::Canonical)
            .map(|patient| SimMessage {
                topic: self.config.patients_topic.clone(),
                key: patient.id.clone(),
                payload:
                    json!({ "patient_id": patient.id, "profile": profile_json(&patient.profile) })
                        .to_string()
                        .into_bytes(),
                headers: vec![(
                    "hospital-id".into(),
                    self.config.hospitals[patient.hospital].id.clone(),
                )],
                timestamp_ms: None,
            })
            .collect()
    }

    /// Readings due at or before event time `now_ms`, in time order per patient.
    pub fn readings_until(&mut self, now_ms: i64) -> Vec<SimMessage> {
        let interval_ms = (self.config.interval_s * 1000) as i64;
        let mut messages = Vec::new();
        for index in 0..self.patients.len() {
            while self.patients[index].next_reading_ms <= now_ms {
                let at_ms = self.patients[index].next_reading_ms;
                let message = self.reading(index, at_ms);
                messages.push(message);
                self.patients[index].next_reading_ms += interval_ms.max(1);
            }
        }
        messages
    }

    /// Invalid messages produced so far.
    pub fn invalid_count(&self) -> u64 {
        self.produced_invalid
    }

    fn reading(&mut self, index: usize, at_ms: i64) -> SimMessage {
        let elapsed_s = (at_ms - self.start_ms) as f64 / 1000.0;
        let vitals = self.vitals(index, elapsed_s);
        let patient = &self.patients[index];
        let hospital = &self.config.hospitals[patient.hospital];
        let invalid = self
            .rng
            .random_bool(self.config.invalid_share.clamp(0.0, 1.0));
        let (topic, mut payload, headers) = match hospital.format {
            WireFormat::Canonical => (
                self.config.vitals_topic.clone(),
                json!({ "patient_id": patient.id, "time_ms": at_ms, "vitals": vitals }),
                vec![("hospital-id".to_string(), hospital.id.clone())],
            ),
            WireFormat::Legacy => (
                self.config.legacy_topic.clone(),
                legacy_json(patient, &vitals),
                Vec::new(),
            ),
        };
        let key = patient.id.clone();
        if invalid {
            self.produced_invalid += 1;
            corrupt(&mut payload, hospital.format);
        }
        SimMessage {
            topic,
            key,
            payload: payload.to_string().into_bytes(),
            headers,
            timestamp_ms: Some(at_ms),
        }
    }

    fn vitals(&mut self, index: usize, elapsed_s: f64) -> Value {
        let patient = &self.patients[index];
        let severity = ((elapsed_s - patient.onset_s) / (RAMP_MINUTES * 60.0)).clamp(0.0, 1.0);
        let (course, profile) = (patient.course, patient.profile.clone());
        let noise = |rng: &mut StdRng, sd: f64| Normal::new(0.0, sd).expect("valid sd").sample(rng);
        let acute = if course == Course::Acute {
            severity
        } else {
            0.0
        };
        let rising = if course == Course::Hypertensive {
            severity
        } else {
            0.0
        };
        let rng = &mut self.rng;
        let heart_rate = 74.0 + 60.0 * acute + noise(rng, 3.0);
        let respiratory = 15.0 + 14.0 * acute + noise(rng, 1.0);
        let systolic = (profile.systolic_bp_mmhg.min(135.0) + 50.0 * rising - 45.0 * acute
            + noise(rng, 4.0))
        .clamp(70.0, 230.0);
        let diastolic = (profile.diastolic_bp_mmhg.min(85.0) + 25.0 * rising - 25.0 * acute
            + noise(rng, 3.0))
        .clamp(40.0, systolic - 15.0);
        let spo2 = (97.5 - 9.0 * acute + noise(rng, 0.6)).min(100.0);
        let temperature = 36.8 + 2.0 * acute + noise(rng, 0.15);
        json!({
            "heart_rate_bpm": round(heart_rate, 0),
            "systolic_bp_mmhg": round(systolic, 0),
            "diastolic_bp_mmhg": round(diastolic, 0),
            "respiratory_rate_per_min": round(respiratory, 0),
            "spo2_percent": round(spo2, 0),
            "temperature_celsius": round(temperature, 1),
            "supplemental_oxygen": acute > 0.8,
            "consciousness": if acute > 0.95 { "new_confusion" } else { "alert" },
        })
    }
}

fn pick_course(rng: &mut StdRng, share: f64) -> Course {
    if !rng.random_bool(share.clamp(0.0, 1.0)) {
        Course::Stable
    } else if rng.random_bool(0.5) {
        Course::Acute
    } else {
        Course::Hypertensive
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Canonical JSON of a profile.
pub fn profile_json(profile: &DrawnProfile) -> Value {
    let extra: serde_json::Map<String, Value> = profile
        .extras
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    json!({
        "age_years": round(profile.age_years, 1),
        "sex": if profile.male { "male" } else { "female" },
        "height_cm": profile.height_cm,
        "weight_kg": profile.weight_kg,
        "cholesterol_category": profile.cholesterol_category,
        "glucose_category": profile.glucose_category,
        "smoker": profile.smoker,
        "alcohol": profile.alcohol,
        "physically_active": profile.physically_active,
        "extra": extra,
    })
}

/// The legacy flat JSON: age in whole years, gender 0 = female and 1 = male.
fn legacy_json(patient: &Patient, vitals: &Value) -> Value {
    let profile = &patient.profile;
    let numeric_id: u64 = patient.id.trim_start_matches("p-").parse().unwrap_or(0);
    json!({
        "id": numeric_id,
        "age": profile.age_years.floor(),
        "gender": u8::from(profile.male),
        "height": profile.height_cm,
        "weight": profile.weight_kg,
        "ap_hi": vitals["systolic_bp_mmhg"],
        "ap_lo": vitals["diastolic_bp_mmhg"],
        "cholesterol": profile.cholesterol_category,
        "gluc": profile.glucose_category,
        "smoke": u8::from(profile.smoker),
        "alco": u8::from(profile.alcohol),
        "active": u8::from(profile.physically_active),
    })
}

/// Makes a message invalid the way a faulty device would: an impossible heart rate or
/// blood pressure.
fn corrupt(payload: &mut Value, format: WireFormat) {
    match format {
        WireFormat::Canonical => payload["vitals"]["heart_rate_bpm"] = json!(412),
        WireFormat::Legacy => payload["ap_hi"] = json!(16020),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(deteriorating_share: f64) -> SimConfig {
        SimConfig {
            patients: 40,
            hospitals: vec![
                SimHospital {
                    id: "a".into(),
                    format: WireFormat::Canonical,
                },
                SimHospital {
                    id: "legacy".into(),
                    format: WireFormat::Legacy,
                },
            ],
            interval_s: 60,
            deteriorating_share,
            invalid_share: 0.0,
            vitals_topic: "vitals".into(),
            legacy_topic: "heart_data".into(),
            patients_topic: "patients".into(),
            seed: 3,
        }
    }

    #[test]
    fn each_patient_reads_once_per_interval() {
        let mut simulator = Simulator::new(config(0.0), 0);
        let messages = simulator.readings_until(59_999);
        assert_eq!(messages.len(), 40);
        assert!(simulator.readings_until(59_999).is_empty());
    }

    #[test]
    fn profiles_only_for_canonical_hospitals() {
        let simulator = Simulator::new(config(0.0), 0);
        assert_eq!(simulator.profile_messages().len(), 20);
    }

    #[test]
    fn acute_patients_reach_abnormal_vitals() {
        let mut simulator = Simulator::new(config(1.0), 0);
        let late = simulator.readings_until(30 * 60_000);
        let acute_ids: Vec<String> = simulator
            .patients
            .iter()
            .filter(|p| {
                p.course == Course::Acute
                    && simulator.config.hospitals[p.hospital].format == WireFormat::Canonical
            })
            .map(|p| p.id.clone())
            .collect();
        assert!(!acute_ids.is_empty());
        let last = late.iter().rev().find(|m| m.key == acute_ids[0]).unwrap();
        let body: Value = serde_json::from_slice(&last.payload).unwrap();
        assert!(
            body["vitals"]["heart_rate_bpm"].as_f64().unwrap() > 115.0,
            "{body}"
        );
        assert!(
            body["vitals"]["respiratory_rate_per_min"].as_f64().unwrap() > 24.0,
            "{body}"
        );
    }

    #[test]
    fn legacy_message_uses_legacy_units() {
        let mut simulator = Simulator::new(config(0.0), 0);
        let messages = simulator.readings_until(59_999);
        let legacy = messages.iter().find(|m| m.topic == "heart_data").unwrap();
        let body: Value = serde_json::from_slice(&legacy.payload).unwrap();
        let gender = body["gender"].as_u64().unwrap();
        assert!(gender <= 1, "gender {gender}");
        let age = body["age"].as_f64().unwrap();
        assert!((29.0..=65.0).contains(&age), "age {age} should be in years");
        assert!(legacy.headers.is_empty());
    }
}
