//! LOINC codes of the vital signs read from FHIR, their UCUM units, and the reading of
//! one `valueQuantity` or `dataAbsentReason`.
//!
//! A value is checked against its plausibility range in the unit it was sent in, then
//! converted to the canonical unit, so an error shows the value as the sender wrote it.

use serde_json::{Map, Value};

use super::as_object;
use crate::input::InputError;
use crate::input::json::{get, invalid_field, render};
use crate::input::ranges::{self, Range};

/// Code system URI of LOINC.
pub(super) const LOINC: &str = "http://loinc.org";

/// Code system URI of UCUM, the unit codes of `Quantity.code`.
pub(super) const UCUM: &str = "http://unitsofmeasure.org";

/// A vital sign that an Observation or one of its components carries. The discriminant
/// is the index of its slot in `Collected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Vital {
    HeartRate,
    SystolicBp,
    DiastolicBp,
    RespiratoryRate,
    Spo2,
    Temperature,
}

pub(super) const VITAL_COUNT: usize = 6;

/// Meaning of a LOINC code that cardiowatch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Measurement {
    /// One vital sign in `valueQuantity`.
    Single(Vital),
    /// The blood pressure panel, whose values are in `component`.
    BloodPressurePanel,
}

/// The LOINC codes read, and what each measures.
pub(super) const CODES: [(&str, Measurement); 8] = [
    ("8867-4", Measurement::Single(Vital::HeartRate)),
    ("85354-9", Measurement::BloodPressurePanel),
    ("8480-6", Measurement::Single(Vital::SystolicBp)),
    ("8462-4", Measurement::Single(Vital::DiastolicBp)),
    ("2708-6", Measurement::Single(Vital::Spo2)),
    ("59408-5", Measurement::Single(Vital::Spo2)),
    ("9279-1", Measurement::Single(Vital::RespiratoryRate)),
    ("8310-5", Measurement::Single(Vital::Temperature)),
];

/// A UCUM unit accepted for a vital sign.
struct Unit {
    /// UCUM code as written in `valueQuantity.code`.
    ucum: &'static str,
    /// Plausibility range in this unit, so that an error shows the value as sent.
    range: Range,
    /// Conversion to the canonical unit of the vital sign.
    to_canonical: fn(f64) -> f64,
}

impl Unit {
    const fn canonical(ucum: &'static str, range: Range) -> Unit {
        Unit {
            ucum,
            range,
            to_canonical: identity,
        }
    }
}

/// [`ranges::TEMPERATURE_CELSIUS`] in degrees Fahrenheit: 77 to 113 °F.
const TEMPERATURE_FAHRENHEIT: Range = Range {
    min: ranges::TEMPERATURE_CELSIUS.min * 9.0 / 5.0 + 32.0,
    max: ranges::TEMPERATURE_CELSIUS.max * 9.0 / 5.0 + 32.0,
    unit: "°F",
};

const HEART_RATE_UNITS: [Unit; 2] = [
    Unit::canonical("/min", ranges::HEART_RATE_BPM),
    Unit::canonical("{beats}/min", ranges::HEART_RATE_BPM),
];
const SYSTOLIC_UNITS: [Unit; 1] = [Unit::canonical("mm[Hg]", ranges::SYSTOLIC_BP_MMHG)];
const DIASTOLIC_UNITS: [Unit; 1] = [Unit::canonical("mm[Hg]", ranges::DIASTOLIC_BP_MMHG)];
const RESPIRATORY_RATE_UNITS: [Unit; 2] = [
    Unit::canonical("/min", ranges::RESPIRATORY_RATE_PER_MIN),
    Unit::canonical("{breaths}/min", ranges::RESPIRATORY_RATE_PER_MIN),
];
const SPO2_UNITS: [Unit; 1] = [Unit::canonical("%", ranges::SPO2_PERCENT)];
const TEMPERATURE_UNITS: [Unit; 2] = [
    Unit::canonical("Cel", ranges::TEMPERATURE_CELSIUS),
    Unit {
        ucum: "[degF]",
        range: TEMPERATURE_FAHRENHEIT,
        to_canonical: fahrenheit_to_celsius,
    },
];

fn identity(value: f64) -> f64 {
    value
}

fn fahrenheit_to_celsius(fahrenheit: f64) -> f64 {
    (fahrenheit - 32.0) * 5.0 / 9.0
}

impl Vital {
    pub(super) fn label(self) -> &'static str {
        match self {
            Vital::HeartRate => "heart rate",
            Vital::SystolicBp => "systolic blood pressure",
            Vital::DiastolicBp => "diastolic blood pressure",
            Vital::RespiratoryRate => "respiratory rate",
            Vital::Spo2 => "oxygen saturation",
            Vital::Temperature => "body temperature",
        }
    }

    fn units(self) -> &'static [Unit] {
        match self {
            Vital::HeartRate => &HEART_RATE_UNITS,
            Vital::SystolicBp => &SYSTOLIC_UNITS,
            Vital::DiastolicBp => &DIASTOLIC_UNITS,
            Vital::RespiratoryRate => &RESPIRATORY_RATE_UNITS,
            Vital::Spo2 => &SPO2_UNITS,
            Vital::Temperature => &TEMPERATURE_UNITS,
        }
    }
}

impl Measurement {
    pub(super) fn label(self) -> &'static str {
        match self {
            Measurement::Single(vital) => vital.label(),
            Measurement::BloodPressurePanel => "blood pressure panel",
        }
    }
}

/// Finds the LOINC coding of `code.coding` that [`CODES`] lists. Returns `None` when
/// there is none.
pub(super) fn find_code(
    path: &str,
    element: &Map<String, Value>,
) -> Result<Option<(&'static str, Measurement)>, InputError> {
    let field = format!("{path}.code");
    let code = get(element, "code").ok_or_else(|| InputError::MissingField(field.clone()))?;
    let codings = match as_object(&field, code)?.get("coding") {
        Some(Value::Array(codings)) => codings.as_slice(),
        Some(Value::Null) | None => &[],
        Some(other) => return Err(invalid_field(&format!("{field}.coding"), other, "an array")),
    };
    let mut found: Option<(&'static str, Measurement)> = None;
    for coding in codings {
        let system = coding.get("system").and_then(Value::as_str);
        let value = coding.get("code").and_then(Value::as_str);
        let Some(known) = CODES
            .iter()
            .find(|(known, _)| system == Some(LOINC) && value == Some(*known))
        else {
            continue;
        };
        match found {
            Some((first, measurement)) if measurement != known.1 => {
                return Err(InputError::InvalidField(format!(
                    "invalid {field}: LOINC codes {first} ({}) and {} ({}) name different vital \
                     signs, expected codings of one vital sign",
                    measurement.label(),
                    known.0,
                    known.1.label()
                )));
            }
            Some(_) => {}
            None => found = Some(*known),
        }
    }
    Ok(found)
}

/// Reads the value of an Observation or component at `path` whose code is `code`:
/// `valueQuantity` converted to the canonical unit, or `None` for a `dataAbsentReason`.
/// Also returns the FHIRPath of what was read, with the code, for later messages.
pub(super) fn read_value(
    path: &str,
    element: &Map<String, Value>,
    code: &str,
    vital: Vital,
) -> Result<(Option<f64>, String), InputError> {
    let about = format!("({code} {})", vital.label());
    let quantity = get(element, "valueQuantity");
    let absent = get(element, "dataAbsentReason");
    match (quantity, absent) {
        (Some(_), Some(_)) => Err(InputError::InvalidField(format!(
            "invalid {path} {about}: it has both valueQuantity and dataAbsentReason, expected \
             one of them"
        ))),
        (Some(quantity), None) => {
            let name = format!("{path}.valueQuantity {about}");
            read_quantity(&name, quantity, vital).map(|value| (Some(value), name))
        }
        (None, Some(_)) => Ok((None, format!("{path}.dataAbsentReason {about}"))),
        (None, None) => {
            let other_value = element.keys().find(|key| {
                key.len() > 5 && key.starts_with("value") && key.as_bytes()[5].is_ascii_uppercase()
            });
            let found = match other_value {
                Some(key) => format!("{key}, expected valueQuantity"),
                None => "no value, expected valueQuantity or dataAbsentReason".to_string(),
            };
            Err(InputError::InvalidField(format!(
                "invalid {path} {about}: it has {found}"
            )))
        }
    }
}

/// Reads a `valueQuantity` in one of the vital sign's UCUM units, checks its range in that
/// unit and converts it to the canonical unit. `name` is its FHIRPath with the code.
fn read_quantity(name: &str, quantity: &Value, vital: Vital) -> Result<f64, InputError> {
    let quantity = as_object(name, quantity)?;
    let unit = find_unit(name, quantity, vital)?;
    if let Some(comparator) = get(quantity, "comparator") {
        return Err(InputError::InvalidField(format!(
            "invalid comparator {} in {name}: expected an exact value without comparator",
            render(comparator)
        )));
    }
    let value = get(quantity, "value").ok_or_else(|| {
        InputError::InvalidField(format!(
            "missing value in {name}: expected a number, or a dataAbsentReason in place of \
             valueQuantity"
        ))
    })?;
    let number = value.as_f64().ok_or_else(|| {
        invalid_field(
            &format!("value in {name}"),
            value,
            &format!("a number in {}", unit.ucum),
        )
    })?;
    let number = unit.range.check(name, number)?;
    Ok((unit.to_canonical)(number))
}

/// Finds the UCUM unit of a quantity among those accepted for `vital`.
fn find_unit(
    name: &str,
    quantity: &Map<String, Value>,
    vital: Vital,
) -> Result<&'static Unit, InputError> {
    let units = vital.units();
    let accepted: Vec<&str> = units.iter().map(|unit| unit.ucum).collect();
    let expected = format!("UCUM code {}", accepted.join(" or "));
    let Some(code) = get(quantity, "code") else {
        let shown = get(quantity, "unit").map_or("none".to_string(), render);
        return Err(InputError::InvalidField(format!(
            "missing unit code in {name} with unit {shown}: expected {expected}"
        )));
    };
    let unit = units
        .iter()
        .find(|unit| code.as_str() == Some(unit.ucum))
        .ok_or_else(|| {
            InputError::InvalidField(format!(
                "invalid unit {} in {name}: expected {expected}",
                render(code)
            ))
        })?;
    let system = get(quantity, "system");
    if system.and_then(Value::as_str) != Some(UCUM) {
        let shown = system.map_or("none".to_string(), render);
        return Err(InputError::InvalidField(format!(
            "invalid unit system {shown} for unit {} in {name}: expected {UCUM}",
            render(code)
        )));
    }
    Ok(unit)
}
