//! HL7 FHIR R4 vital-sign Observations: one Observation, or a Bundle of them, becomes one
//! reading.
//!
//! Observations are recognised by their LOINC code and read from `valueQuantity` in UCUM
//! units, which are converted to the canonical units and checked against [`ranges`]. A
//! Bundle is one record about one patient, and its event time is that of its latest
//! Observation. Observations with other codes and elements this parser does not read are
//! ignored, except `modifierExtension`, which may change what an Observation means and so
//! rejects it.

mod codes;
mod effective;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::json::{get, invalid_field, render};
use super::ranges;
use super::{Format, InputError};
use crate::types::{Reading, Vitals};
use codes::{CODES, Measurement, VITAL_COUNT, Vital, find_code, read_value};
use effective::effective_time;

/// Observation statuses whose result may be scored. The others (`registered`,
/// `cancelled`, `entered-in-error`, `unknown`) carry no result that may be used.
const SCORED_STATUSES: [&str; 4] = ["final", "amended", "corrected", "preliminary"];

/// An Observation resource and its FHIRPath, such as `Bundle.entry[2].resource`.
struct LocatedObservation<'a> {
    path: String,
    resource: &'a Map<String, Value>,
}

/// Converts one FHIR R4 Observation or Bundle to a reading.
pub(super) fn parse(object: &Map<String, Value>) -> Result<Reading, InputError> {
    let observations = match resource_type("resourceType", object)? {
        "Observation" => vec![LocatedObservation {
            path: "Observation".to_string(),
            resource: object,
        }],
        "Bundle" => bundle_observations(object)?,
        other => {
            return Err(InputError::UnsupportedFormat(format!(
                "unsupported FHIR resource type {}: expected an Observation or a Bundle of \
                 Observations",
                render(&Value::String(other.to_string()))
            )));
        }
    };
    let mut collected = Collected::default();
    for observation in &observations {
        collected.add_observation(&observation.path, observation.resource)?;
    }
    collected.into_reading()
}

/// Reads the `resourceType` of a resource. `field` is its path for error messages.
fn resource_type<'a>(field: &str, resource: &'a Map<String, Value>) -> Result<&'a str, InputError> {
    let value =
        get(resource, "resourceType").ok_or_else(|| InputError::MissingField(field.to_string()))?;
    value
        .as_str()
        .ok_or_else(|| invalid_field(field, value, "a FHIR resource type such as \"Observation\""))
}

/// Returns the Observations of a Bundle. Entries of other resource types carry no vital
/// signs and are skipped.
fn bundle_observations(
    bundle: &Map<String, Value>,
) -> Result<Vec<LocatedObservation<'_>>, InputError> {
    let entries = match get(bundle, "entry") {
        Some(Value::Array(entries)) if !entries.is_empty() => entries,
        Some(Value::Array(_)) | None => {
            return Err(InputError::MissingField("Bundle.entry".to_string()));
        }
        Some(other) => return Err(invalid_field("Bundle.entry", other, "an array of entries")),
    };
    let mut observations = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let entry = as_object(&format!("Bundle.entry[{index}]"), entry)?;
        let path = format!("Bundle.entry[{index}].resource");
        let resource =
            get(entry, "resource").ok_or_else(|| InputError::MissingField(path.clone()))?;
        let resource = as_object(&path, resource)?;
        if resource_type(&format!("{path}.resourceType"), resource)? == "Observation" {
            observations.push(LocatedObservation { path, resource });
        }
    }
    Ok(observations)
}

/// A vital sign's value, or `None` when the record gives a `dataAbsentReason` in its place,
/// with the FHIRPath it came from.
struct Slot {
    value: Option<f64>,
    source: String,
}

/// Vital signs, patient and event time gathered from the Observations of one record.
#[derive(Default)]
struct Collected {
    /// The patient id named by the first Observation, or `None` when it names none, with
    /// that Observation's path.
    patient: Option<(Option<String>, String)>,
    slots: [Option<Slot>; VITAL_COUNT],
    latest_time_ms: Option<i64>,
    observation_count: usize,
}

impl Collected {
    /// Adds one Observation at FHIRPath `path`. Only Observations with a code in
    /// [`CODES`] are checked beyond their subject.
    fn add_observation(
        &mut self,
        path: &str,
        observation: &Map<String, Value>,
    ) -> Result<(), InputError> {
        self.observation_count += 1;
        self.check_patient(path, observation)?;
        // NOTE: the WIT `reading` record has no field for Observations with unknown codes,
        // so they are dropped here and the host cannot count or report them yet.
        let Some((code, measurement)) = find_code(path, observation)? else {
            return Ok(());
        };
        check_status(path, observation)?;
        check_modifier_extension(path, observation)?;
        if let Some(time_ms) = effective_time(path, observation)? {
            self.latest_time_ms = Some(self.latest_time_ms.map_or(time_ms, |t| t.max(time_ms)));
        }
        match measurement {
            Measurement::Single(vital) => {
                let (value, source) = read_value(path, observation, code, vital)?;
                self.store(vital, value, source)
            }
            Measurement::BloodPressurePanel => self.add_panel(path, observation, code),
        }
    }

    /// Checks that this Observation names the same patient as the first one.
    fn check_patient(
        &mut self,
        path: &str,
        observation: &Map<String, Value>,
    ) -> Result<(), InputError> {
        let patient = patient_id(path, observation)?;
        let Some((first, first_path)) = &self.patient else {
            self.patient = Some((patient, path.to_string()));
            return Ok(());
        };
        if *first == patient {
            return Ok(());
        }
        Err(InputError::InvalidField(format!(
            "invalid subject in {path}: it names {} but {first_path} names {}, and every \
             Observation of a Bundle must name the same patient",
            describe_patient(&patient),
            describe_patient(first)
        )))
    }

    /// Adds the systolic and diastolic components of a blood pressure panel. Components
    /// with other codes are ignored.
    fn add_panel(
        &mut self,
        path: &str,
        panel: &Map<String, Value>,
        code: &str,
    ) -> Result<(), InputError> {
        let components = match get(panel, "component") {
            Some(Value::Array(components)) => components.as_slice(),
            Some(other) => {
                return Err(invalid_field(
                    &format!("{path}.component"),
                    other,
                    "an array",
                ));
            }
            None => &[],
        };
        let mut found = false;
        for (index, component) in components.iter().enumerate() {
            let component_path = format!("{path}.component[{index}]");
            let component = as_object(&component_path, component)?;
            check_modifier_extension(&component_path, component)?;
            let Some((
                component_code,
                Measurement::Single(vital @ (Vital::SystolicBp | Vital::DiastolicBp)),
            )) = find_code(&component_path, component)?
            else {
                continue;
            };
            let (value, source) = read_value(&component_path, component, component_code, vital)?;
            self.store(vital, value, source)?;
            found = true;
        }
        if found {
            return Ok(());
        }
        if get(panel, "dataAbsentReason").is_none() {
            return Err(InputError::InvalidField(format!(
                "invalid {path} ({code} blood pressure panel): expected a component with code \
                 8480-6 or 8462-4, or a dataAbsentReason"
            )));
        }
        let source = format!("{path}.dataAbsentReason ({code} blood pressure panel)");
        self.store(Vital::SystolicBp, None, source.clone())?;
        self.store(Vital::DiastolicBp, None, source)
    }

    /// Records one vital sign, rejecting a second value for the same one.
    fn store(
        &mut self,
        vital: Vital,
        value: Option<f64>,
        source: String,
    ) -> Result<(), InputError> {
        let slot = &mut self.slots[vital as usize];
        if let Some(first) = slot {
            return Err(InputError::InvalidField(format!(
                "duplicate {} in {source}: {} already gives it, and a record carries one value \
                 per vital sign",
                vital.label(),
                first.source
            )));
        }
        *slot = Some(Slot { value, source });
        Ok(())
    }

    fn value(&self, vital: Vital) -> Option<f64> {
        self.slots[vital as usize]
            .as_ref()
            .and_then(|slot| slot.value)
    }

    fn into_reading(self) -> Result<Reading, InputError> {
        if self.slots.iter().all(Option::is_none) {
            return Err(self.no_vital_sign());
        }
        let vitals = Vitals {
            heart_rate_bpm: self.value(Vital::HeartRate),
            systolic_bp_mmhg: self.value(Vital::SystolicBp),
            diastolic_bp_mmhg: self.value(Vital::DiastolicBp),
            respiratory_rate_per_min: self.value(Vital::RespiratoryRate),
            spo2_percent: self.value(Vital::Spo2),
            temperature_celsius: self.value(Vital::Temperature),
            supplemental_oxygen: None,
            consciousness: None,
        };
        let systolic = &self.slots[Vital::SystolicBp as usize];
        let diastolic = &self.slots[Vital::DiastolicBp as usize];
        if let (Some(systolic), Some(diastolic)) = (systolic, diastolic)
            && let (Some(systolic_value), Some(diastolic_value)) = (systolic.value, diastolic.value)
        {
            ranges::check_blood_pressure_order(
                (&systolic.source, systolic_value),
                (&diastolic.source, diastolic_value),
            )?;
        }
        Ok(Reading {
            patient_id: self.patient.and_then(|(patient, _)| patient),
            event_time_ms: self.latest_time_ms,
            vitals,
            profile: None,
            format: Format::FhirR4.name().to_string(),
        })
    }

    fn no_vital_sign(&self) -> InputError {
        let codes: Vec<String> = CODES
            .iter()
            .map(|(code, measurement)| format!("{code} ({})", measurement.label()))
            .collect();
        let found = match self.observation_count {
            0 => "the Bundle has no Observation".to_string(),
            1 => "its Observation has no LOINC code that cardiowatch reads".to_string(),
            count => {
                format!("none of its {count} Observations has a LOINC code that cardiowatch reads")
            }
        };
        InputError::InvalidField(format!(
            "no vital sign in the FHIR record: {found}, expected one of {}",
            codes.join(", ")
        ))
    }
}

/// Reads the patient id of `subject.reference`, or `None` when there is no subject.
fn patient_id(path: &str, observation: &Map<String, Value>) -> Result<Option<String>, InputError> {
    let Some(subject) = get(observation, "subject") else {
        return Ok(None);
    };
    let field = format!("{path}.subject.reference");
    let expected = "a Patient reference such as \"Patient/123\"";
    let reference = as_object(&format!("{path}.subject"), subject)?
        .get("reference")
        .filter(|value| !value.is_null())
        .ok_or_else(|| {
            InputError::InvalidField(format!(
                "missing {field}: expected {expected}, because a subject given only by \
                 identifier or display cannot be matched to a patient"
            ))
        })?;
    let text = reference
        .as_str()
        .ok_or_else(|| invalid_field(&field, reference, expected))?;
    patient_from_reference(text)
        .map(Some)
        .ok_or_else(|| invalid_field(&field, reference, expected))
}

/// Extracts the id from `Patient/<id>`, an absolute URL ending in `/Patient/<id>`, or
/// either with a `/_history/<version>` suffix.
fn patient_from_reference(reference: &str) -> Option<String> {
    let unversioned = match reference.find("/_history/") {
        Some(index) => &reference[..index],
        None => reference,
    };
    let mut parts = unversioned.rsplitn(3, '/');
    let id = parts.next()?;
    let resource_type = parts.next()?;
    (resource_type == "Patient" && is_fhir_id(id)).then(|| id.to_string())
}

/// Accepts a FHIR `id`: 1 to 64 ASCII letters, digits, `-` and `.`.
fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

fn describe_patient(patient: &Option<String>) -> String {
    match patient {
        Some(id) => format!("patient {}", render(&Value::String(id.clone()))),
        None => "no patient".to_string(),
    }
}

fn check_status(path: &str, observation: &Map<String, Value>) -> Result<(), InputError> {
    let field = format!("{path}.status");
    let value =
        get(observation, "status").ok_or_else(|| InputError::MissingField(field.clone()))?;
    if value
        .as_str()
        .is_some_and(|status| SCORED_STATUSES.contains(&status))
    {
        return Ok(());
    }
    Err(invalid_field(
        &field,
        value,
        "final, amended, corrected or preliminary, because an Observation with another status \
         has no result that may be scored",
    ))
}

/// Rejects an element with modifier extensions, because they may change its meaning in
/// ways this parser does not know.
fn check_modifier_extension(path: &str, element: &Map<String, Value>) -> Result<(), InputError> {
    match get(element, "modifierExtension") {
        Some(Value::Array(extensions)) if extensions.is_empty() => Ok(()),
        None => Ok(()),
        Some(_) => Err(InputError::InvalidField(format!(
            "unsupported {path}.modifierExtension: a modifier extension may change what the \
             Observation means, and cardiowatch reads none, so it cannot score the Observation"
        ))),
    }
}

fn as_object<'a>(field: &str, value: &'a Value) -> Result<&'a Map<String, Value>, InputError> {
    value
        .as_object()
        .ok_or_else(|| invalid_field(field, value, "a JSON object"))
}
