//! Feature maps: which canonical field, in which unit, feeds each model feature.
//!
//! A source is written as a dotted path: `vitals.<field>`, `profile.<field>`,
//! `profile.extra.<name>` or the derived `profile.bmi`. Booleans become 1 or 0, sex
//! becomes `1` for male and `0` for female, and an absent value becomes missing (NaN),
//! which the model routes down each split's default branch.

use crate::types::{Profile, Sex, Vitals};

/// Where a model feature's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureSource {
    /// A vital sign, by canonical field name.
    Vital(VitalField),
    /// A typed profile field, by canonical field name.
    Profile(ProfileField),
    /// Body mass index derived from height and weight, kg/m².
    Bmi,
    /// A named extra profile attribute.
    Extra(String),
}

/// Vital sign fields a model may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum VitalField {
    HeartRateBpm,
    SystolicBpMmhg,
    DiastolicBpMmhg,
    RespiratoryRatePerMin,
    Spo2Percent,
    TemperatureCelsius,
    SupplementalOxygen,
}

/// Profile fields a model may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ProfileField {
    AgeYears,
    SexMale,
    HeightCm,
    WeightKg,
    CholesterolCategory,
    GlucoseCategory,
    Smoker,
    Alcohol,
    PhysicallyActive,
}

const VITALS: [(&str, VitalField); 7] = [
    ("heart_rate_bpm", VitalField::HeartRateBpm),
    ("systolic_bp_mmhg", VitalField::SystolicBpMmhg),
    ("diastolic_bp_mmhg", VitalField::DiastolicBpMmhg),
    (
        "respiratory_rate_per_min",
        VitalField::RespiratoryRatePerMin,
    ),
    ("spo2_percent", VitalField::Spo2Percent),
    ("temperature_celsius", VitalField::TemperatureCelsius),
    ("supplemental_oxygen", VitalField::SupplementalOxygen),
];

const PROFILE: [(&str, ProfileField); 9] = [
    ("age_years", ProfileField::AgeYears),
    ("sex_male", ProfileField::SexMale),
    ("height_cm", ProfileField::HeightCm),
    ("weight_kg", ProfileField::WeightKg),
    ("cholesterol_category", ProfileField::CholesterolCategory),
    ("glucose_category", ProfileField::GlucoseCategory),
    ("smoker", ProfileField::Smoker),
    ("alcohol", ProfileField::Alcohol),
    ("physically_active", ProfileField::PhysicallyActive),
];

/// Why a feature source could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("unknown feature source {path:?}: expected one of {expected}")]
pub struct UnknownSource {
    path: String,
    expected: String,
}

impl FeatureSource {
    /// Parses a dotted source path such as `vitals.heart_rate_bpm`.
    ///
    /// # Errors
    ///
    /// [`UnknownSource`] listing every accepted path.
    pub fn parse(path: &str) -> Result<Self, UnknownSource> {
        if path == "profile.bmi" {
            return Ok(FeatureSource::Bmi);
        }
        if let Some(name) = path.strip_prefix("profile.extra.") {
            if is_snake_case(name) {
                return Ok(FeatureSource::Extra(name.to_string()));
            }
        } else if let Some(name) = path.strip_prefix("vitals.") {
            if let Some((_, field)) = VITALS.iter().find(|(key, _)| *key == name) {
                return Ok(FeatureSource::Vital(*field));
            }
        } else if let Some(name) = path.strip_prefix("profile.")
            && let Some((_, field)) = PROFILE.iter().find(|(key, _)| *key == name)
        {
            return Ok(FeatureSource::Profile(*field));
        }
        Err(UnknownSource {
            path: path.to_string(),
            expected: Self::accepted().join(", "),
        })
    }

    /// Every accepted source path, `profile.extra.<name>` standing for all extras.
    pub fn accepted() -> Vec<String> {
        let vitals = VITALS.iter().map(|(name, _)| format!("vitals.{name}"));
        let profile = PROFILE.iter().map(|(name, _)| format!("profile.{name}"));
        let derived = [
            "profile.bmi".to_string(),
            "profile.extra.<name>".to_string(),
        ];
        vitals.chain(profile).chain(derived).collect()
    }

    /// Reads this feature's value from a patient's vitals and profile.
    pub fn extract(&self, vitals: &Vitals, profile: &Profile) -> Option<f64> {
        match self {
            FeatureSource::Vital(field) => vital_value(*field, vitals),
            FeatureSource::Profile(field) => profile_value(*field, profile),
            FeatureSource::Bmi => profile.bmi(),
            FeatureSource::Extra(name) => profile.extra_value(name),
        }
    }
}

fn is_snake_case(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn flag(value: Option<bool>) -> Option<f64> {
    value.map(|set| if set { 1.0 } else { 0.0 })
}

fn vital_value(field: VitalField, vitals: &Vitals) -> Option<f64> {
    match field {
        VitalField::HeartRateBpm => vitals.heart_rate_bpm,
        VitalField::SystolicBpMmhg => vitals.systolic_bp_mmhg,
        VitalField::DiastolicBpMmhg => vitals.diastolic_bp_mmhg,
        VitalField::RespiratoryRatePerMin => vitals.respiratory_rate_per_min,
        VitalField::Spo2Percent => vitals.spo2_percent,
        VitalField::TemperatureCelsius => vitals.temperature_celsius,
        VitalField::SupplementalOxygen => flag(vitals.supplemental_oxygen),
    }
}

fn profile_value(field: ProfileField, profile: &Profile) -> Option<f64> {
    match field {
        ProfileField::AgeYears => profile.age_years,
        ProfileField::SexMale => profile
            .sex
            .map(|sex| if sex == Sex::Male { 1.0 } else { 0.0 }),
        ProfileField::HeightCm => profile.height_cm,
        ProfileField::WeightKg => profile.weight_kg,
        ProfileField::CholesterolCategory => profile.cholesterol_category.map(f64::from),
        ProfileField::GlucoseCategory => profile.glucose_category.map(f64::from),
        ProfileField::Smoker => flag(profile.smoker),
        ProfileField::Alcohol => flag(profile.alcohol),
        ProfileField::PhysicallyActive => flag(profile.physically_active),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            FeatureSource::parse("vitals.heart_rate_bpm").unwrap(),
            FeatureSource::Vital(VitalField::HeartRateBpm)
        );
        assert_eq!(
            FeatureSource::parse("profile.sex_male").unwrap(),
            FeatureSource::Profile(ProfileField::SexMale)
        );
        assert_eq!(
            FeatureSource::parse("profile.bmi").unwrap(),
            FeatureSource::Bmi
        );
        assert_eq!(
            FeatureSource::parse("profile.extra.st_depression_mm").unwrap(),
            FeatureSource::Extra("st_depression_mm".into())
        );
    }

    #[test]
    fn unknown_source_lists_accepted() {
        let error = FeatureSource::parse("vitals.pulse")
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"vitals.pulse\""), "{error}");
        assert!(error.contains("vitals.heart_rate_bpm"), "{error}");
    }

    #[test]
    fn extracts_derived_and_coded_values() {
        let profile = Profile {
            sex: Some(Sex::Male),
            height_cm: Some(200.0),
            weight_kg: Some(100.0),
            smoker: Some(false),
            extra: vec![("thal".into(), 7.0)],
            ..Profile::default()
        };
        let vitals = Vitals {
            supplemental_oxygen: Some(true),
            ..Vitals::default()
        };
        let value = |path: &str| {
            FeatureSource::parse(path)
                .unwrap()
                .extract(&vitals, &profile)
        };
        assert_eq!(value("profile.sex_male"), Some(1.0));
        assert_eq!(value("profile.bmi"), Some(25.0));
        assert_eq!(value("profile.smoker"), Some(0.0));
        assert_eq!(value("profile.extra.thal"), Some(7.0));
        assert_eq!(value("vitals.supplemental_oxygen"), Some(1.0));
        assert_eq!(value("vitals.heart_rate_bpm"), None);
        assert_eq!(value("profile.age_years"), None);
    }
}
