//! The preprocess component: one raw Kafka record in, one canonical reading out.
//!
//! It exports the WIT `preprocess` interface of the `preprocessor` world.
//! `cardiowatch_core::input::parse` does the work, and this file only converts between the
//! WIT records and the core types, in both directions and without loss.

wit_bindgen::generate!({
    world: "preprocessor",
    path: "../../wit",
});

use cardiowatch::pipeline::types as wit;
use cardiowatch_core::input::{self, InputError, RawMessage};
use cardiowatch_core::types::{Consciousness, Profile, Reading, Sex, Spo2Scale, Vitals};
use exports::cardiowatch::pipeline::preprocess as wit_preprocess;

/// The exported component.
struct Preprocessor;

impl wit_preprocess::Guest for Preprocessor {
    fn parse(
        message: wit_preprocess::RawMessage,
    ) -> Result<wit::Reading, wit_preprocess::InputError> {
        input::parse(&to_raw_message(message))
            .map(to_wit_reading)
            .map_err(to_wit_error)
    }
}

export!(Preprocessor);

fn to_raw_message(message: wit_preprocess::RawMessage) -> RawMessage {
    RawMessage {
        topic: message.topic,
        key: message.key,
        payload: message.payload,
        headers: message
            .headers
            .into_iter()
            .map(|header| (header.key, header.value))
            .collect(),
    }
}

fn to_wit_reading(reading: Reading) -> wit::Reading {
    wit::Reading {
        patient_id: reading.patient_id,
        event_time_ms: reading.event_time_ms,
        vitals: to_wit_vitals(reading.vitals),
        profile: reading.profile.map(to_wit_profile),
        format: reading.format,
    }
}

fn to_wit_vitals(vitals: Vitals) -> wit::Vitals {
    wit::Vitals {
        heart_rate_bpm: vitals.heart_rate_bpm,
        systolic_bp_mmhg: vitals.systolic_bp_mmhg,
        diastolic_bp_mmhg: vitals.diastolic_bp_mmhg,
        respiratory_rate_per_min: vitals.respiratory_rate_per_min,
        spo2_percent: vitals.spo2_percent,
        temperature_celsius: vitals.temperature_celsius,
        supplemental_oxygen: vitals.supplemental_oxygen,
        consciousness: vitals.consciousness.map(to_wit_consciousness),
    }
}

fn to_wit_profile(profile: Profile) -> wit::Profile {
    wit::Profile {
        age_years: profile.age_years,
        sex: profile.sex.map(to_wit_sex),
        height_cm: profile.height_cm,
        weight_kg: profile.weight_kg,
        cholesterol_category: profile.cholesterol_category,
        glucose_category: profile.glucose_category,
        smoker: profile.smoker,
        alcohol: profile.alcohol,
        physically_active: profile.physically_active,
        spo2_scale: profile.spo2_scale.map(to_wit_spo2_scale),
        extra: profile
            .extra
            .into_iter()
            .map(|(name, value)| wit::NamedValue { name, value })
            .collect(),
    }
}

fn to_wit_consciousness(level: Consciousness) -> wit::Consciousness {
    match level {
        Consciousness::Alert => wit::Consciousness::Alert,
        Consciousness::NewConfusion => wit::Consciousness::NewConfusion,
        Consciousness::Voice => wit::Consciousness::Voice,
        Consciousness::Pain => wit::Consciousness::Pain,
        Consciousness::Unresponsive => wit::Consciousness::Unresponsive,
    }
}

fn to_wit_sex(sex: Sex) -> wit::Sex {
    match sex {
        Sex::Female => wit::Sex::Female,
        Sex::Male => wit::Sex::Male,
    }
}

fn to_wit_spo2_scale(scale: Spo2Scale) -> wit::Spo2Scale {
    match scale {
        Spo2Scale::Scale1 => wit::Spo2Scale::Scale1,
        Spo2Scale::Scale2 => wit::Spo2Scale::Scale2,
    }
}

/// Converts an input error case for case. The string cases carry the complete message,
/// and the missing field case carries the field name, as the WIT contract states.
fn to_wit_error(error: InputError) -> wit_preprocess::InputError {
    use wit_preprocess::InputError as WitError;
    match error {
        InputError::Malformed(text) => WitError::Malformed(text),
        InputError::UnsupportedFormat(text) => WitError::UnsupportedFormat(text),
        InputError::MissingField(field) => WitError::MissingField(field),
        InputError::InvalidField(text) => WitError::InvalidField(text),
        InputError::Implausible {
            field,
            value,
            min,
            max,
            unit,
        } => WitError::Implausible(wit_preprocess::ImplausibleValue {
            field,
            value,
            min,
            max,
            unit,
        }),
        InputError::Other(text) => WitError::Other(text),
    }
}
