//! Canonical records shared by every role: vitals, profile, readings and contributions.
//!
//! They mirror the records of the WIT package `cardiowatch:pipeline` field for field, so
//! that components convert between the two without loss. Units are in the field names.

use serde::{Deserialize, Serialize};

/// Level of consciousness on the ACVPU scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consciousness {
    /// A: alert.
    Alert,
    /// C: new confusion.
    NewConfusion,
    /// V: responds to voice.
    Voice,
    /// P: responds to pain.
    Pain,
    /// U: unresponsive.
    Unresponsive,
}

/// Which NEWS2 oxygen saturation scale applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Spo2Scale {
    /// Scale 1, the default.
    #[default]
    Scale1,
    /// Scale 2, for hypercapnic respiratory failure with a target of 88 to 92 %.
    Scale2,
}

/// Biological sex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

/// Bedside vital signs; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vitals {
    /// Heart rate, beats per minute.
    pub heart_rate_bpm: Option<f64>,
    /// Systolic blood pressure, mmHg.
    pub systolic_bp_mmhg: Option<f64>,
    /// Diastolic blood pressure, mmHg.
    pub diastolic_bp_mmhg: Option<f64>,
    /// Respiratory rate, breaths per minute.
    pub respiratory_rate_per_min: Option<f64>,
    /// Oxygen saturation, percent.
    pub spo2_percent: Option<f64>,
    /// Body temperature, degrees Celsius.
    pub temperature_celsius: Option<f64>,
    /// Whether the patient receives supplemental oxygen.
    pub supplemental_oxygen: Option<bool>,
    /// Level of consciousness.
    pub consciousness: Option<Consciousness>,
}

impl Vitals {
    /// Returns true when no vital sign is present.
    pub fn is_empty(&self) -> bool {
        *self == Vitals::default()
    }
}

/// Patient profile: attributes that rarely change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Age, years.
    pub age_years: Option<f64>,
    /// Biological sex.
    pub sex: Option<Sex>,
    /// Height, centimetres.
    pub height_cm: Option<f64>,
    /// Weight, kilograms.
    pub weight_kg: Option<f64>,
    /// Cholesterol category: 1 normal, 2 above normal, 3 well above normal.
    pub cholesterol_category: Option<u8>,
    /// Glucose category: 1 normal, 2 above normal, 3 well above normal.
    pub glucose_category: Option<u8>,
    /// Smoker.
    pub smoker: Option<bool>,
    /// Regular alcohol intake.
    pub alcohol: Option<bool>,
    /// Physically active.
    pub physically_active: Option<bool>,
    /// NEWS2 SpO2 scale; scale 1 when absent.
    pub spo2_scale: Option<Spo2Scale>,
    /// Further numeric attributes, unit in the name, sorted by name.
    pub extra: Vec<(String, f64)>,
}

impl Profile {
    /// Body mass index in kg/m², when height and weight are both known.
    pub fn bmi(&self) -> Option<f64> {
        let height_m = self.height_cm? / 100.0;
        let weight = self.weight_kg?;
        (height_m > 0.0).then(|| weight / (height_m * height_m))
    }

    /// Looks up an extra attribute by name.
    pub fn extra_value(&self, name: &str) -> Option<f64> {
        self.extra
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }
}

/// One canonical reading, as preprocess produces it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Patient id from the body, if any.
    pub patient_id: Option<String>,
    /// Event time, milliseconds since the Unix epoch, if the body carries one.
    pub event_time_ms: Option<i64>,
    /// Vital signs.
    pub vitals: Vitals,
    /// Profile carried in the message, if any.
    pub profile: Option<Profile>,
    /// Recognised input format.
    pub format: String,
}

/// One feature's share of a prediction, in log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Model feature name.
    pub feature: String,
    /// Feature value; `None` when missing.
    pub value: Option<f64>,
    /// Contribution to the margin.
    pub contribution: f64,
}
