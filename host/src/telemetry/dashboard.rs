//! The live dashboard's state: patients ranked by risk with recent vitals, the alert feed,
//! each hospital's components, and counters. Updated by the consume loop, read by the
//! admin server as snapshots and as a stream of events.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::pipeline::output::{AlertRecord, PredictionRecord};
use crate::stats::Snapshot;

/// Points of vitals history kept per patient, for sparklines.
const HISTORY_POINTS: usize = 40;
/// Alerts kept for the feed.
const ALERT_FEED: usize = 200;
/// Patients listed in a snapshot.
const SNAPSHOT_PATIENTS: usize = 60;

/// One point of a patient's history.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistoryPoint {
    /// Event time, ms since the epoch.
    pub t: i64,
    /// Heart rate, beats/min.
    pub heart_rate_bpm: Option<f64>,
    /// Systolic blood pressure, mmHg.
    pub systolic_bp_mmhg: Option<f64>,
    /// Respiratory rate, breaths/min.
    pub respiratory_rate_per_min: Option<f64>,
    /// SpO2, %.
    pub spo2_percent: Option<f64>,
    /// Model probability.
    pub probability: Option<f64>,
    /// NEWS2 total.
    pub news2: u8,
}

/// A patient as the dashboard shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PatientView {
    /// Hospital id.
    pub hospital: String,
    /// Patient id.
    pub patient_id: String,
    /// Latest model probability, if the model ran.
    pub probability: Option<f64>,
    /// Latest NEWS2 total.
    pub news2: u8,
    /// Latest NEWS2 risk band.
    pub risk: String,
    /// Latest prediction status.
    pub status: String,
    /// Event time of the latest prediction.
    pub last_event_ms: i64,
    /// Severity of the latest alert, if any.
    pub last_alert: Option<String>,
    /// Recent history, oldest first.
    pub history: VecDeque<HistoryPoint>,
}

/// A hospital and its active components.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HospitalView {
    /// Hospital id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Model as `name@version`.
    pub model: String,
    /// sha256 per role.
    pub components: Vec<(String, String)>,
}

/// What the dashboard receives live.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DashboardEvent {
    /// A patient's view changed.
    Patient(Box<PatientView>),
    /// An alert was raised.
    Alert(Box<AlertRecord>),
}

impl DashboardEvent {
    /// Hospital the event belongs to, for token scoping.
    pub fn hospital(&self) -> &str {
        match self {
            DashboardEvent::Patient(patient) => &patient.hospital,
            DashboardEvent::Alert(alert) => &alert.hospital,
        }
    }
}

/// A snapshot for one token's scope.
#[derive(Debug, Clone, Serialize)]
pub struct DashboardSnapshot {
    /// Hospitals in scope.
    pub hospitals: Vec<HospitalView>,
    /// Patients in scope, highest risk first.
    pub patients: Vec<PatientView>,
    /// Recent alerts in scope, newest first.
    pub alerts: Vec<AlertRecord>,
    /// Instance-wide counters (only for the operator scope).
    pub counters: Option<Snapshot>,
    /// Records per second since start (only for the operator scope).
    pub records_per_second: Option<f64>,
}

#[derive(Default)]
struct Inner {
    patients: HashMap<(String, String), PatientView>,
    alerts: VecDeque<AlertRecord>,
    hospitals: Vec<HospitalView>,
}

/// Shared dashboard state.
pub struct Dashboard {
    inner: Mutex<Inner>,
    events: broadcast::Sender<DashboardEvent>,
    started: Instant,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            inner: Mutex::new(Inner::default()),
            events: broadcast::channel(1024).0,
            started: Instant::now(),
        }
    }
}

/// Orders patients by risk: NEWS2 band first, then probability, then NEWS2 total.
fn risk_key(patient: &PatientView) -> (u8, i64, u8) {
    let band = match patient.risk.as_str() {
        "high" => 3,
        "medium" => 2,
        "low_medium" => 1,
        _ => 0,
    };
    let probability = (patient.probability.unwrap_or(0.0) * 1e6) as i64;
    (band, probability, patient.news2)
}

impl Dashboard {
    /// Subscribes to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<DashboardEvent> {
        self.events.subscribe()
    }

    /// Replaces the hospital list.
    pub fn set_hospitals(&self, hospitals: Vec<HospitalView>) {
        self.inner.lock().expect("dashboard lock").hospitals = hospitals;
    }

    /// Applies one prediction.
    pub fn record_prediction(&self, prediction: &PredictionRecord) {
        let view = {
            let mut inner = self.inner.lock().expect("dashboard lock");
            let key = (prediction.hospital.clone(), prediction.patient_id.clone());
            let entry = inner.patients.entry(key).or_insert_with(|| PatientView {
                hospital: prediction.hospital.clone(),
                patient_id: prediction.patient_id.clone(),
                probability: None,
                news2: 0,
                risk: "low".into(),
                status: String::new(),
                last_event_ms: 0,
                last_alert: None,
                history: VecDeque::new(),
            });
            apply_prediction(entry, prediction);
            entry.clone()
        };
        let _ = self.events.send(DashboardEvent::Patient(Box::new(view)));
    }

    /// Applies one alert.
    pub fn record_alert(&self, alert: &AlertRecord) {
        {
            let mut inner = self.inner.lock().expect("dashboard lock");
            let key = (alert.hospital.clone(), alert.patient_id.clone());
            if let Some(patient) = inner.patients.get_mut(&key) {
                patient.last_alert = Some(alert.severity.to_string());
            }
            inner.alerts.push_front(alert.clone());
            inner.alerts.truncate(ALERT_FEED);
        }
        let _ = self
            .events
            .send(DashboardEvent::Alert(Box::new(alert.clone())));
    }

    /// A snapshot for `scope`: one hospital, or every hospital when `None`.
    pub fn snapshot(&self, scope: Option<&str>, counters: Snapshot) -> DashboardSnapshot {
        let inner = self.inner.lock().expect("dashboard lock");
        let in_scope = |hospital: &str| scope.is_none_or(|only| only == hospital);
        let mut patients: Vec<PatientView> = inner
            .patients
            .values()
            .filter(|p| in_scope(&p.hospital))
            .cloned()
            .collect();
        patients.sort_by(|a, b| {
            risk_key(b)
                .cmp(&risk_key(a))
                .then(a.patient_id.cmp(&b.patient_id))
        });
        patients.truncate(SNAPSHOT_PATIENTS);
        let operator = scope.is_none();
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        DashboardSnapshot {
            hospitals: inner
                .hospitals
                .iter()
                .filter(|h| in_scope(&h.id))
                .cloned()
                .collect(),
            patients,
            alerts: inner
                .alerts
                .iter()
                .filter(|a| in_scope(&a.hospital))
                .take(50)
                .cloned()
                .collect(),
            counters: operator.then_some(counters),
            records_per_second: operator.then(|| counters.messages as f64 / seconds),
        }
    }
}

fn apply_prediction(patient: &mut PatientView, prediction: &PredictionRecord) {
    if prediction.event_time_ms < patient.last_event_ms {
        return;
    }
    patient.probability = prediction
        .model
        .as_ref()
        .map(|m| m.probability)
        .or(patient.probability);
    patient.news2 = prediction.news2.total;
    patient.risk = prediction.news2.risk.to_string();
    patient.status = serde_json::to_value(prediction.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    patient.last_event_ms = prediction.event_time_ms;
    let vitals = serde_json::to_value(&prediction.vitals).unwrap_or_default();
    let number = |name: &str| vitals.get(name).and_then(serde_json::Value::as_f64);
    patient.history.push_back(HistoryPoint {
        t: prediction.event_time_ms,
        heart_rate_bpm: number("heart_rate_bpm"),
        systolic_bp_mmhg: number("systolic_bp_mmhg"),
        respiratory_rate_per_min: number("respiratory_rate_per_min"),
        spo2_percent: number("spo2_percent"),
        probability: prediction.model.as_ref().map(|m| m.probability),
        news2: prediction.news2.total,
    });
    while patient.history.len() > HISTORY_POINTS {
        patient.history.pop_front();
    }
}
