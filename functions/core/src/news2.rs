//! NEWS2, the National Early Warning Score 2 of the Royal College of Physicians (2017).
//!
//! Takes bedside vitals and the patient's SpO2 scale, and returns each parameter's score
//! (0 to 3), the aggregate, the clinical risk band and the parameters that were not
//! measured. Values are rounded to the chart's resolution before banding, ties away from
//! zero: whole units for every parameter except temperature, which uses 0.1 °C.

use serde::{Deserialize, Serialize};

use crate::types::{Consciousness, Spo2Scale, Vitals};

/// Aggregate score at or above which the clinical risk is high.
const HIGH_RISK_TOTAL: u8 = 7;
/// Aggregate score at or above which the clinical risk is medium.
const MEDIUM_RISK_TOTAL: u8 = 5;
/// Score of a single parameter that puts an otherwise low aggregate into low-medium risk.
const RED_SCORE: u8 = 3;

/// NEWS2 clinical risk band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClinicalRisk {
    /// Aggregate 0 to 4 and no single parameter scoring 3.
    Low,
    /// Aggregate 0 to 4 with a single parameter scoring 3.
    LowMedium,
    /// Aggregate 5 or 6.
    Medium,
    /// Aggregate 7 or more.
    High,
}

impl ClinicalRisk {
    /// Band name as staff read it, for example `low-medium`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClinicalRisk::Low => "low",
            ClinicalRisk::LowMedium => "low-medium",
            ClinicalRisk::Medium => "medium",
            ClinicalRisk::High => "high",
        }
    }
}

/// One NEWS2 parameter, in the order of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// Respiration rate, breaths per minute.
    RespirationRate,
    /// Oxygen saturation on the patient's SpO2 scale, percent.
    Spo2,
    /// Air or supplemental oxygen.
    AirOrOxygen,
    /// Systolic blood pressure, mmHg.
    SystolicBp,
    /// Pulse, beats per minute.
    Pulse,
    /// Level of consciousness (ACVPU).
    Consciousness,
    /// Temperature, degrees Celsius.
    Temperature,
}

impl Parameter {
    /// Every parameter, in the order of the chart.
    pub const ALL: [Parameter; 7] = [
        Parameter::RespirationRate,
        Parameter::Spo2,
        Parameter::AirOrOxygen,
        Parameter::SystolicBp,
        Parameter::Pulse,
        Parameter::Consciousness,
        Parameter::Temperature,
    ];

    /// Parameter name in snake_case, for example `respiration_rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Parameter::RespirationRate => "respiration_rate",
            Parameter::Spo2 => "spo2",
            Parameter::AirOrOxygen => "air_or_oxygen",
            Parameter::SystolicBp => "systolic_bp",
            Parameter::Pulse => "pulse",
            Parameter::Consciousness => "consciousness",
            Parameter::Temperature => "temperature",
        }
    }
}

/// One measured parameter's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterScore {
    /// Which parameter.
    pub name: Parameter,
    /// Score, 0 to 3.
    pub score: u8,
}

/// A NEWS2 result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct News2 {
    /// Aggregate score, 0 to 20.
    pub total: u8,
    /// Clinical risk band.
    pub risk: ClinicalRisk,
    /// Scores of the measured parameters, in the order of the chart.
    pub parameters: Vec<ParameterScore>,
    /// Parameters that were not measured and so scored 0, in the order of the chart.
    pub missing: Vec<Parameter>,
}

impl News2 {
    /// Returns true when at least one measured parameter scored 3.
    pub fn has_red_score(&self) -> bool {
        self.parameters.iter().any(|p| p.score >= RED_SCORE)
    }
}

/// Scores vitals on the NEWS2 chart.
///
/// A missing parameter scores 0 and is listed in `missing`, so a reading with few vitals
/// never scores higher than its measurements justify. A non-finite value (NaN or
/// infinite) counts as missing. On scale 2, an SpO2 of 93 % or more scores as on air
/// when the oxygen status is missing, and `air_or_oxygen` is then listed in `missing`.
pub fn news2(vitals: &Vitals, scale: Spo2Scale) -> News2 {
    let mut parameters = Vec::with_capacity(Parameter::ALL.len());
    let mut missing = Vec::new();
    for parameter in Parameter::ALL {
        match score_parameter(parameter, vitals, scale) {
            Some(score) => parameters.push(ParameterScore {
                name: parameter,
                score,
            }),
            None => missing.push(parameter),
        }
    }
    let total = parameters.iter().map(|p| p.score).sum();
    let has_red_score = parameters.iter().any(|p| p.score >= RED_SCORE);
    News2 {
        total,
        risk: clinical_risk(total, has_red_score),
        parameters,
        missing,
    }
}

/// Maps an aggregate score and the presence of a single score of 3 to the risk band.
pub fn clinical_risk(total: u8, has_red_score: bool) -> ClinicalRisk {
    if total >= HIGH_RISK_TOTAL {
        ClinicalRisk::High
    } else if total >= MEDIUM_RISK_TOTAL {
        ClinicalRisk::Medium
    } else if has_red_score {
        ClinicalRisk::LowMedium
    } else {
        ClinicalRisk::Low
    }
}

/// Scores one parameter, or returns `None` when it was not measured.
fn score_parameter(parameter: Parameter, vitals: &Vitals, scale: Spo2Scale) -> Option<u8> {
    match parameter {
        Parameter::RespirationRate => finite(vitals.respiratory_rate_per_min)
            .map(|rate| score_respiration_rate(round_whole(rate))),
        Parameter::Spo2 => finite(vitals.spo2_percent).map(|spo2| {
            let oxygen = vitals.supplemental_oxygen.unwrap_or(false);
            score_spo2(round_whole(spo2), scale, oxygen)
        }),
        Parameter::AirOrOxygen => vitals.supplemental_oxygen.map(score_air_or_oxygen),
        Parameter::SystolicBp => {
            finite(vitals.systolic_bp_mmhg).map(|bp| score_systolic_bp(round_whole(bp)))
        }
        Parameter::Pulse => {
            finite(vitals.heart_rate_bpm).map(|pulse| score_pulse(round_whole(pulse)))
        }
        Parameter::Consciousness => vitals.consciousness.map(score_consciousness),
        Parameter::Temperature => finite(vitals.temperature_celsius)
            .map(|celsius| score_temperature(round_tenths(celsius))),
    }
}

/// Drops NaN and infinite values, which no chart band can place.
fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// Rounds to a whole number, ties away from zero: 90.4 becomes 90 and 90.5 becomes 91.
/// Values beyond the range of `i64` saturate, which lands them in the outermost band.
fn round_whole(value: f64) -> i64 {
    value.round() as i64
}

/// Rounds to tenths, ties away from zero, and returns the number of tenths.
///
/// The product `value * 10.0` is itself rounded to the nearest `f64`, so decimal ties
/// that binary cannot store exactly, such as 35.05, still round up to 35.1 as written.
/// The tests check this at every temperature boundary of the chart.
fn round_tenths(value: f64) -> i64 {
    (value * 10.0).round() as i64
}

fn score_respiration_rate(per_min: i64) -> u8 {
    match per_min {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        25.. => 3,
    }
}

fn score_spo2(percent: i64, scale: Spo2Scale, supplemental_oxygen: bool) -> u8 {
    match scale {
        Spo2Scale::Scale1 => score_spo2_scale1(percent),
        Spo2Scale::Scale2 => score_spo2_scale2(percent, supplemental_oxygen),
    }
}

fn score_spo2_scale1(percent: i64) -> u8 {
    match percent {
        ..=91 => 3,
        92..=93 => 2,
        94..=95 => 1,
        96.. => 0,
    }
}

/// Scale 2 bands low saturations as scale 1 shifted down by 8 points to a target of 88 to
/// 92 %, and scores saturations above the target only when the patient is on oxygen.
fn score_spo2_scale2(percent: i64, supplemental_oxygen: bool) -> u8 {
    match (percent, supplemental_oxygen) {
        (..=83, _) => 3,
        (84..=85, _) => 2,
        (86..=87, _) => 1,
        (88..=92, _) => 0,
        (93.., false) => 0,
        (93..=94, true) => 1,
        (95..=96, true) => 2,
        (97.., true) => 3,
    }
}

fn score_air_or_oxygen(supplemental_oxygen: bool) -> u8 {
    if supplemental_oxygen { 2 } else { 0 }
}

fn score_systolic_bp(mmhg: i64) -> u8 {
    match mmhg {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        220.. => 3,
    }
}

fn score_pulse(per_min: i64) -> u8 {
    match per_min {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        131.. => 3,
    }
}

fn score_consciousness(level: Consciousness) -> u8 {
    match level {
        Consciousness::Alert => 0,
        Consciousness::NewConfusion
        | Consciousness::Voice
        | Consciousness::Pain
        | Consciousness::Unresponsive => 3,
    }
}

/// Scores a temperature given in tenths of a degree Celsius.
fn score_temperature(tenths_celsius: i64) -> u8 {
    match tenths_celsius {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        391.. => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A setter of one vital sign, for tables of cases.
    type SetVital = fn(&mut Vitals, f64);

    /// Vitals that score 0 on every parameter of scale 1.
    fn normal_vitals() -> Vitals {
        Vitals {
            heart_rate_bpm: Some(70.0),
            systolic_bp_mmhg: Some(120.0),
            diastolic_bp_mmhg: Some(80.0),
            respiratory_rate_per_min: Some(16.0),
            spo2_percent: Some(98.0),
            temperature_celsius: Some(37.0),
            supplemental_oxygen: Some(false),
            consciousness: Some(Consciousness::Alert),
        }
    }

    fn score_of(result: &News2, parameter: Parameter) -> Option<u8> {
        result
            .parameters
            .iter()
            .find(|p| p.name == parameter)
            .map(|p| p.score)
    }

    /// Scores one parameter after replacing it in otherwise normal vitals.
    fn score_with(edit: impl Fn(&mut Vitals), scale: Spo2Scale, parameter: Parameter) -> u8 {
        let mut vitals = normal_vitals();
        edit(&mut vitals);
        score_of(&news2(&vitals, scale), parameter).expect("parameter was measured")
    }

    #[test]
    fn respiration_rate_band_boundaries() {
        let cases = [
            (8.0, 3),
            (9.0, 1),
            (11.0, 1),
            (12.0, 0),
            (20.0, 0),
            (21.0, 2),
        ];
        let more = [(24.0, 2), (25.0, 3), (0.0, 3), (40.0, 3)];
        for (rate, expected) in cases.into_iter().chain(more) {
            let edit = |v: &mut Vitals| v.respiratory_rate_per_min = Some(rate);
            let score = score_with(edit, Spo2Scale::Scale1, Parameter::RespirationRate);
            assert_eq!(score, expected, "respiration rate {rate}");
        }
    }

    #[test]
    fn spo2_scale1_band_boundaries() {
        let cases = [
            (91.0, 3),
            (92.0, 2),
            (93.0, 2),
            (94.0, 1),
            (95.0, 1),
            (96.0, 0),
        ];
        let more = [(100.0, 0), (70.0, 3)];
        for oxygen in [false, true] {
            for (spo2, expected) in cases.into_iter().chain(more) {
                let edit = |v: &mut Vitals| {
                    v.spo2_percent = Some(spo2);
                    v.supplemental_oxygen = Some(oxygen);
                };
                let score = score_with(edit, Spo2Scale::Scale1, Parameter::Spo2);
                assert_eq!(score, expected, "scale 1 spo2 {spo2} oxygen {oxygen}");
            }
        }
    }

    #[test]
    fn spo2_scale2_band_boundaries_on_air() {
        let cases = [
            (83.0, 3),
            (84.0, 2),
            (85.0, 2),
            (86.0, 1),
            (87.0, 1),
            (88.0, 0),
        ];
        let more = [
            (92.0, 0),
            (93.0, 0),
            (94.0, 0),
            (96.0, 0),
            (97.0, 0),
            (100.0, 0),
        ];
        for (spo2, expected) in cases.into_iter().chain(more) {
            let edit = |v: &mut Vitals| {
                v.spo2_percent = Some(spo2);
                v.supplemental_oxygen = Some(false);
            };
            let score = score_with(edit, Spo2Scale::Scale2, Parameter::Spo2);
            assert_eq!(score, expected, "scale 2 spo2 {spo2} on air");
        }
    }

    #[test]
    fn spo2_scale2_band_boundaries_on_oxygen() {
        let cases = [
            (83.0, 3),
            (84.0, 2),
            (85.0, 2),
            (86.0, 1),
            (87.0, 1),
            (88.0, 0),
        ];
        let more = [
            (92.0, 0),
            (93.0, 1),
            (94.0, 1),
            (95.0, 2),
            (96.0, 2),
            (97.0, 3),
        ];
        for (spo2, expected) in cases.into_iter().chain(more).chain([(100.0, 3)]) {
            let edit = |v: &mut Vitals| {
                v.spo2_percent = Some(spo2);
                v.supplemental_oxygen = Some(true);
            };
            let score = score_with(edit, Spo2Scale::Scale2, Parameter::Spo2);
            assert_eq!(score, expected, "scale 2 spo2 {spo2} on oxygen");
        }
    }

    #[test]
    fn spo2_scale2_unknown_oxygen_scores_as_air() {
        let vitals = Vitals {
            spo2_percent: Some(97.0),
            ..Vitals::default()
        };
        let result = news2(&vitals, Spo2Scale::Scale2);
        assert_eq!(score_of(&result, Parameter::Spo2), Some(0));
        assert!(result.missing.contains(&Parameter::AirOrOxygen));
    }

    #[test]
    fn air_or_oxygen_scores() {
        for (oxygen, expected) in [(false, 0), (true, 2)] {
            let edit = |v: &mut Vitals| v.supplemental_oxygen = Some(oxygen);
            let score = score_with(edit, Spo2Scale::Scale1, Parameter::AirOrOxygen);
            assert_eq!(score, expected, "supplemental oxygen {oxygen}");
        }
    }

    #[test]
    fn systolic_bp_band_boundaries() {
        let cases = [(90.0, 3), (91.0, 2), (100.0, 2), (101.0, 1), (110.0, 1)];
        let more = [(111.0, 0), (219.0, 0), (220.0, 3), (50.0, 3), (280.0, 3)];
        for (bp, expected) in cases.into_iter().chain(more) {
            let edit = |v: &mut Vitals| v.systolic_bp_mmhg = Some(bp);
            let score = score_with(edit, Spo2Scale::Scale1, Parameter::SystolicBp);
            assert_eq!(score, expected, "systolic bp {bp}");
        }
    }

    #[test]
    fn pulse_band_boundaries() {
        let cases = [
            (40.0, 3),
            (41.0, 1),
            (50.0, 1),
            (51.0, 0),
            (90.0, 0),
            (91.0, 1),
        ];
        let more = [
            (110.0, 1),
            (111.0, 2),
            (130.0, 2),
            (131.0, 3),
            (20.0, 3),
            (220.0, 3),
        ];
        for (pulse, expected) in cases.into_iter().chain(more) {
            let edit = |v: &mut Vitals| v.heart_rate_bpm = Some(pulse);
            let score = score_with(edit, Spo2Scale::Scale1, Parameter::Pulse);
            assert_eq!(score, expected, "pulse {pulse}");
        }
    }

    #[test]
    fn consciousness_acvpu_levels() {
        let cases = [
            (Consciousness::Alert, 0),
            (Consciousness::NewConfusion, 3),
            (Consciousness::Voice, 3),
            (Consciousness::Pain, 3),
            (Consciousness::Unresponsive, 3),
        ];
        for (level, expected) in cases {
            let edit = |v: &mut Vitals| v.consciousness = Some(level);
            let score = score_with(edit, Spo2Scale::Scale1, Parameter::Consciousness);
            assert_eq!(score, expected, "consciousness {level:?}");
        }
    }

    #[test]
    fn temperature_band_boundaries() {
        let cases = [
            (35.0, 3),
            (35.1, 1),
            (36.0, 1),
            (36.1, 0),
            (38.0, 0),
            (38.1, 1),
        ];
        let more = [(39.0, 1), (39.1, 2), (30.0, 3), (42.0, 2)];
        for (celsius, expected) in cases.into_iter().chain(more) {
            let edit = |v: &mut Vitals| v.temperature_celsius = Some(celsius);
            let score = score_with(edit, Spo2Scale::Scale1, Parameter::Temperature);
            assert_eq!(score, expected, "temperature {celsius}");
        }
    }

    #[test]
    fn fractional_values_round_half_away_from_zero() {
        let cases: [(SetVital, Parameter, f64, u8); 8] = [
            (|v, x| v.heart_rate_bpm = Some(x), Parameter::Pulse, 90.4, 0),
            (|v, x| v.heart_rate_bpm = Some(x), Parameter::Pulse, 90.5, 1),
            (
                |v, x| v.respiratory_rate_per_min = Some(x),
                Parameter::RespirationRate,
                20.49,
                0,
            ),
            (
                |v, x| v.respiratory_rate_per_min = Some(x),
                Parameter::RespirationRate,
                20.5,
                2,
            ),
            (|v, x| v.spo2_percent = Some(x), Parameter::Spo2, 95.5, 0),
            (|v, x| v.spo2_percent = Some(x), Parameter::Spo2, 95.4, 1),
            (
                |v, x| v.systolic_bp_mmhg = Some(x),
                Parameter::SystolicBp,
                90.5,
                2,
            ),
            (
                |v, x| v.systolic_bp_mmhg = Some(x),
                Parameter::SystolicBp,
                219.5,
                3,
            ),
        ];
        for (set, parameter, value, expected) in cases {
            let score = score_with(|v| set(v, value), Spo2Scale::Scale1, parameter);
            assert_eq!(score, expected, "{} {value}", parameter.as_str());
        }
    }

    #[test]
    fn temperature_rounds_to_tenths() {
        let cases = [(35.04, 3), (35.05, 1), (36.04, 1), (36.05, 0), (38.04, 0)];
        let more = [(38.05, 1), (39.04, 1), (39.05, 2), (36.96, 0)];
        for (celsius, expected) in cases.into_iter().chain(more) {
            let edit = |v: &mut Vitals| v.temperature_celsius = Some(celsius);
            let score = score_with(edit, Spo2Scale::Scale1, Parameter::Temperature);
            assert_eq!(score, expected, "temperature {celsius}");
        }
    }

    #[test]
    fn normal_vitals_score_zero_low_risk() {
        let result = news2(&normal_vitals(), Spo2Scale::Scale1);
        assert_eq!(result.total, 0);
        assert_eq!(result.risk, ClinicalRisk::Low);
        assert_eq!(result.parameters.len(), 7);
        assert!(result.missing.is_empty());
    }

    #[test]
    fn parameters_follow_chart_order() {
        let result = news2(&normal_vitals(), Spo2Scale::Scale1);
        let names: Vec<Parameter> = result.parameters.iter().map(|p| p.name).collect();
        assert_eq!(names, Parameter::ALL);
    }

    #[test]
    fn aggregate_sums_every_parameter() {
        let vitals = Vitals {
            heart_rate_bpm: Some(115.0),               // 2
            systolic_bp_mmhg: Some(105.0),             // 1
            diastolic_bp_mmhg: Some(60.0),             // not scored
            respiratory_rate_per_min: Some(22.0),      // 2
            spo2_percent: Some(93.0),                  // 2 on scale 1
            temperature_celsius: Some(38.5),           // 1
            supplemental_oxygen: Some(true),           // 2
            consciousness: Some(Consciousness::Voice), // 3
        };
        let result = news2(&vitals, Spo2Scale::Scale1);
        assert_eq!(result.total, 13);
        assert_eq!(result.risk, ClinicalRisk::High);
    }

    #[test]
    fn maximum_aggregate_is_twenty() {
        let vitals = Vitals {
            heart_rate_bpm: Some(150.0),
            systolic_bp_mmhg: Some(80.0),
            diastolic_bp_mmhg: None,
            respiratory_rate_per_min: Some(30.0),
            spo2_percent: Some(85.0),
            temperature_celsius: Some(34.0),
            supplemental_oxygen: Some(true),
            consciousness: Some(Consciousness::Unresponsive),
        };
        assert_eq!(news2(&vitals, Spo2Scale::Scale1).total, 20);
    }

    #[test]
    fn missing_parameters_score_zero_and_are_listed() {
        let vitals = Vitals {
            heart_rate_bpm: Some(135.0),
            ..Vitals::default()
        };
        let result = news2(&vitals, Spo2Scale::Scale1);
        assert_eq!(result.total, 3);
        assert_eq!(
            result.parameters,
            vec![ParameterScore {
                name: Parameter::Pulse,
                score: 3
            }]
        );
        assert_eq!(result.missing.len(), 6);
        assert!(!result.missing.contains(&Parameter::Pulse));
    }

    #[test]
    fn empty_vitals_score_zero_all_missing() {
        let result = news2(&Vitals::default(), Spo2Scale::Scale1);
        assert_eq!(result.total, 0);
        assert_eq!(result.risk, ClinicalRisk::Low);
        assert!(result.parameters.is_empty());
        assert_eq!(result.missing, Parameter::ALL);
    }

    #[test]
    fn non_finite_values_count_as_missing() {
        let mut vitals = normal_vitals();
        vitals.heart_rate_bpm = Some(f64::NAN);
        vitals.temperature_celsius = Some(f64::INFINITY);
        let result = news2(&vitals, Spo2Scale::Scale1);
        assert_eq!(
            result.missing,
            vec![Parameter::Pulse, Parameter::Temperature]
        );
        assert_eq!(result.total, 0);
    }

    #[test]
    fn risk_band_boundaries() {
        let cases = [
            (0, false, ClinicalRisk::Low),
            (4, false, ClinicalRisk::Low),
            (3, true, ClinicalRisk::LowMedium),
            (4, true, ClinicalRisk::LowMedium),
            (5, false, ClinicalRisk::Medium),
            (5, true, ClinicalRisk::Medium),
            (6, true, ClinicalRisk::Medium),
            (7, false, ClinicalRisk::High),
            (7, true, ClinicalRisk::High),
            (20, true, ClinicalRisk::High),
        ];
        for (total, red, expected) in cases {
            assert_eq!(
                clinical_risk(total, red),
                expected,
                "total {total} red {red}"
            );
        }
    }

    #[test]
    fn single_red_parameter_is_low_medium() {
        let mut vitals = normal_vitals();
        vitals.consciousness = Some(Consciousness::NewConfusion);
        let result = news2(&vitals, Spo2Scale::Scale1);
        assert_eq!(result.total, 3);
        assert_eq!(result.risk, ClinicalRisk::LowMedium);
        assert!(result.has_red_score());
    }

    #[test]
    fn aggregate_five_and_seven_bands() {
        let mut vitals = normal_vitals();
        vitals.heart_rate_bpm = Some(115.0); // 2
        vitals.respiratory_rate_per_min = Some(22.0); // 2
        vitals.temperature_celsius = Some(38.5); // 1
        let medium = news2(&vitals, Spo2Scale::Scale1);
        assert_eq!(medium.total, 5);
        assert_eq!(medium.risk, ClinicalRisk::Medium);
        vitals.supplemental_oxygen = Some(true); // 2
        let high = news2(&vitals, Spo2Scale::Scale1);
        assert_eq!(high.total, 7);
        assert_eq!(high.risk, ClinicalRisk::High);
    }
}
