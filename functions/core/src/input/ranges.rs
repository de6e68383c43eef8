//! Plausibility ranges of every numeric input field, in one table.
//!
//! Both input formats check their values here, so a legacy `ap_hi` and a canonical
//! `systolic_bp_mmhg` share one systolic range. Bounds are inclusive. A value outside its
//! range is rejected as implausible, never clamped.

use super::InputError;

/// An inclusive range of plausible values and their unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Smallest plausible value.
    pub min: f64,
    /// Largest plausible value.
    pub max: f64,
    /// Unit of the value and of the bounds, as error messages show it.
    pub unit: &'static str,
}

/// Heart rate.
pub const HEART_RATE_BPM: Range = Range::new(20.0, 300.0, "beats/min");
/// Systolic blood pressure.
pub const SYSTOLIC_BP_MMHG: Range = Range::new(40.0, 300.0, "mmHg");
/// Diastolic blood pressure.
pub const DIASTOLIC_BP_MMHG: Range = Range::new(20.0, 200.0, "mmHg");
/// Respiratory rate.
pub const RESPIRATORY_RATE_PER_MIN: Range = Range::new(2.0, 80.0, "breaths/min");
/// Peripheral oxygen saturation.
pub const SPO2_PERCENT: Range = Range::new(50.0, 100.0, "%");
/// Body temperature.
pub const TEMPERATURE_CELSIUS: Range = Range::new(25.0, 45.0, "°C");
/// Age.
pub const AGE_YEARS: Range = Range::new(0.0, 120.0, "years");
/// Height.
pub const HEIGHT_CM: Range = Range::new(50.0, 250.0, "cm");
/// Weight.
pub const WEIGHT_KG: Range = Range::new(2.0, 400.0, "kg");
/// Cholesterol and glucose categories: 1 normal, 2 above normal, 3 well above normal.
pub const CATEGORY: Range = Range::new(1.0, 3.0, "category");
/// Event time, from 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z.
pub const EVENT_TIME_MS: Range = Range::new(0.0, 7_258_118_400_000.0, "ms since the Unix epoch");

impl Range {
    const fn new(min: f64, max: f64, unit: &'static str) -> Range {
        Range { min, max, unit }
    }

    /// Returns `value` when it lies within the range, else an `Implausible` error that
    /// names `field`. NaN and infinities are never within a range.
    pub fn check(&self, field: &str, value: f64) -> Result<f64, InputError> {
        if (self.min..=self.max).contains(&value) {
            return Ok(value);
        }
        Err(InputError::Implausible {
            field: field.to_string(),
            value,
            min: self.min,
            max: self.max,
            unit: self.unit.to_string(),
        })
    }
}

/// Converts a category code (1, 2 or 3) to `u8`.
///
/// A code with a fractional part is an `InvalidField` error, and a whole number outside
/// [`CATEGORY`] is `Implausible`.
pub fn check_category(field: &str, value: f64) -> Result<u8, InputError> {
    if value.fract() != 0.0 {
        return Err(InputError::InvalidField(format!(
            "invalid {field} {value}: expected a whole category code 1, 2 or 3"
        )));
    }
    let code = CATEGORY.check(field, value)?;
    Ok(code as u8)
}

/// Rejects a diastolic pressure that is not below the systolic pressure of the same
/// reading. Each argument pairs the field name as written in the input with its value.
pub fn check_blood_pressure_order(
    systolic: (&str, f64),
    diastolic: (&str, f64),
) -> Result<(), InputError> {
    let (systolic_field, systolic_value) = systolic;
    let (diastolic_field, diastolic_value) = diastolic;
    if diastolic_value < systolic_value {
        return Ok(());
    }
    Err(InputError::InvalidField(format!(
        "invalid blood pressure: diastolic {diastolic_field} {diastolic_value} is not below \
         systolic {systolic_field} {systolic_value}, check whether the two values are swapped"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_accepts_both_bounds() {
        assert_eq!(HEART_RATE_BPM.check("heart_rate_bpm", 20.0), Ok(20.0));
        assert_eq!(HEART_RATE_BPM.check("heart_rate_bpm", 300.0), Ok(300.0));
    }

    #[test]
    fn check_rejects_value_above_max() {
        let error = HEART_RATE_BPM.check("heart_rate_bpm", 412.0).unwrap_err();
        let expected = "implausible heart_rate_bpm 412: expected 20..=300 beats/min";
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn check_rejects_nan_and_infinity() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let result = SPO2_PERCENT.check("spo2_percent", value);
            assert!(
                matches!(result, Err(InputError::Implausible { .. })),
                "{value}"
            );
        }
    }

    #[test]
    fn category_accepts_codes_one_to_three() {
        for code in [1.0, 2.0, 3.0] {
            assert_eq!(check_category("gluc", code), Ok(code as u8));
        }
    }

    #[test]
    fn category_rejects_fractional_code() {
        let error = check_category("gluc", 1.5).unwrap_err();
        assert!(matches!(error, InputError::InvalidField(_)));
        assert!(error.to_string().contains("gluc 1.5"), "{error}");
    }

    #[test]
    fn category_rejects_code_out_of_range() {
        for code in [0.0, 4.0] {
            let result = check_category("cholesterol", code);
            assert!(
                matches!(result, Err(InputError::Implausible { .. })),
                "{code}"
            );
        }
    }

    #[test]
    fn event_time_max_is_year_2200() {
        let max = chrono::DateTime::parse_from_rfc3339("2200-01-01T00:00:00Z").unwrap();
        assert_eq!(EVENT_TIME_MS.max, max.timestamp_millis() as f64);
    }

    #[test]
    fn blood_pressure_order_rejects_equal_values() {
        let error = check_blood_pressure_order(("ap_hi", 80.0), ("ap_lo", 80.0)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("diastolic ap_lo 80"), "{text}");
        assert!(text.contains("systolic ap_hi 80"), "{text}");
    }

    #[test]
    fn blood_pressure_order_accepts_lower_diastolic() {
        assert_eq!(
            check_blood_pressure_order(("ap_hi", 120.0), ("ap_lo", 80.0)),
            Ok(())
        );
    }
}
