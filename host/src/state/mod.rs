//! Per-patient state, keyed by (hospital, patient): the latest value of each vital with
//! its event time, the latest profile and the alert memory.
//!
//! Event time decides everything here: an older value never replaces a newer one, and a
//! vital older than the hospital's maximum reading age is left out of the merged view.

use std::collections::HashMap;

use crate::runtime::bindings::alert_rules::{AlertState, KindState};
use crate::runtime::bindings::types::{Profile, Vitals};

/// One vital's latest value and when it was measured.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timed<T> {
    value: T,
    event_time_ms: i64,
}

/// The latest known value of each vital sign.
#[derive(Debug, Clone, Default)]
pub struct VitalsWindow {
    heart_rate_bpm: Option<Timed<f64>>,
    systolic_bp_mmhg: Option<Timed<f64>>,
    diastolic_bp_mmhg: Option<Timed<f64>>,
    respiratory_rate_per_min: Option<Timed<f64>>,
    spo2_percent: Option<Timed<f64>>,
    temperature_celsius: Option<Timed<f64>>,
    supplemental_oxygen: Option<Timed<bool>>,
    consciousness: Option<Timed<crate::runtime::bindings::types::Consciousness>>,
}

fn update<T: Copy>(slot: &mut Option<Timed<T>>, value: Option<T>, event_time_ms: i64) {
    let Some(value) = value else { return };
    if slot.is_none_or(|current| current.event_time_ms <= event_time_ms) {
        *slot = Some(Timed {
            value,
            event_time_ms,
        });
    }
}

fn fresh<T: Copy>(slot: &Option<Timed<T>>, oldest_ms: i64) -> Option<T> {
    slot.filter(|timed| timed.event_time_ms >= oldest_ms)
        .map(|timed| timed.value)
}

impl VitalsWindow {
    /// Merges one reading's vitals; values older than the stored ones are ignored.
    pub fn record(&mut self, vitals: &Vitals, event_time_ms: i64) {
        update(
            &mut self.heart_rate_bpm,
            vitals.heart_rate_bpm,
            event_time_ms,
        );
        update(
            &mut self.systolic_bp_mmhg,
            vitals.systolic_bp_mmhg,
            event_time_ms,
        );
        update(
            &mut self.diastolic_bp_mmhg,
            vitals.diastolic_bp_mmhg,
            event_time_ms,
        );
        update(
            &mut self.respiratory_rate_per_min,
            vitals.respiratory_rate_per_min,
            event_time_ms,
        );
        update(&mut self.spo2_percent, vitals.spo2_percent, event_time_ms);
        update(
            &mut self.temperature_celsius,
            vitals.temperature_celsius,
            event_time_ms,
        );
        update(
            &mut self.supplemental_oxygen,
            vitals.supplemental_oxygen,
            event_time_ms,
        );
        update(&mut self.consciousness, vitals.consciousness, event_time_ms);
    }

    /// The latest value of each vital measured at or after `oldest_ms`.
    pub fn latest(&self, oldest_ms: i64) -> Vitals {
        Vitals {
            heart_rate_bpm: fresh(&self.heart_rate_bpm, oldest_ms),
            systolic_bp_mmhg: fresh(&self.systolic_bp_mmhg, oldest_ms),
            diastolic_bp_mmhg: fresh(&self.diastolic_bp_mmhg, oldest_ms),
            respiratory_rate_per_min: fresh(&self.respiratory_rate_per_min, oldest_ms),
            spo2_percent: fresh(&self.spo2_percent, oldest_ms),
            temperature_celsius: fresh(&self.temperature_celsius, oldest_ms),
            supplemental_oxygen: fresh(&self.supplemental_oxygen, oldest_ms),
            consciousness: fresh(&self.consciousness, oldest_ms),
        }
    }
}

/// Everything the host remembers about one patient.
#[derive(Debug, Clone)]
pub struct PatientState {
    /// Latest vitals.
    pub window: VitalsWindow,
    /// Latest event time of any reading applied, in milliseconds since the epoch.
    pub latest_event_ms: Option<i64>,
    /// Alert memory for the alert rules component.
    pub alerts: AlertState,
}

impl Default for PatientState {
    fn default() -> Self {
        let empty = KindState {
            last_severity: None,
            last_alert_ms: None,
        };
        PatientState {
            window: VitalsWindow::default(),
            latest_event_ms: None,
            alerts: AlertState {
                news2: empty,
                model: empty,
            },
        }
    }
}

/// Key of per-patient state.
pub type PatientKey = (String, String);

/// State of every patient this instance has seen, and the profiles it has joined.
#[derive(Default)]
pub struct StateStore {
    patients: HashMap<PatientKey, PatientState>,
    profiles: HashMap<PatientKey, Profile>,
}

impl StateStore {
    /// The state of one patient, created empty on first use.
    pub fn patient(&mut self, key: &PatientKey) -> &mut PatientState {
        if !self.patients.contains_key(key) {
            self.patients.insert(key.clone(), PatientState::default());
        }
        self.patients.get_mut(key).expect("inserted above")
    }

    /// Stores the latest profile of a patient, replacing any earlier one.
    pub fn set_profile(&mut self, key: PatientKey, profile: Profile) {
        self.profiles.insert(key, profile);
    }

    /// The latest profile of a patient, if one is known.
    pub fn profile(&self, key: &PatientKey) -> Option<&Profile> {
        self.profiles.get(key)
    }

    /// Number of patients with state.
    pub fn patient_count(&self) -> usize {
        self.patients.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vitals(heart_rate: f64) -> Vitals {
        Vitals {
            heart_rate_bpm: Some(heart_rate),
            systolic_bp_mmhg: None,
            diastolic_bp_mmhg: None,
            respiratory_rate_per_min: None,
            spo2_percent: None,
            temperature_celsius: None,
            supplemental_oxygen: None,
            consciousness: None,
        }
    }

    #[test]
    fn older_value_never_overwrites_newer() {
        let mut window = VitalsWindow::default();
        window.record(&vitals(80.0), 2_000);
        window.record(&vitals(120.0), 1_000);
        assert_eq!(window.latest(0).heart_rate_bpm, Some(80.0));
    }

    #[test]
    fn stale_value_left_out() {
        let mut window = VitalsWindow::default();
        window.record(&vitals(80.0), 1_000);
        assert_eq!(window.latest(1_000).heart_rate_bpm, Some(80.0));
        assert_eq!(window.latest(1_001).heart_rate_bpm, None);
    }

    #[test]
    fn missing_value_keeps_previous() {
        let mut window = VitalsWindow::default();
        window.record(&vitals(80.0), 1_000);
        let mut only_spo2 = vitals(0.0);
        only_spo2.heart_rate_bpm = None;
        only_spo2.spo2_percent = Some(97.0);
        window.record(&only_spo2, 2_000);
        let latest = window.latest(0);
        assert_eq!(latest.heart_rate_bpm, Some(80.0));
        assert_eq!(latest.spo2_percent, Some(97.0));
    }
}
