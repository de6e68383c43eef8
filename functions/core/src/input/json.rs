//! JSON helpers shared by the input formats.
//!
//! They turn a payload into a JSON object, read typed values out of it, and render
//! rejected values briefly for error messages.

use serde_json::{Map, Value};

use super::InputError;

/// Maximum length of a rejected value as an error message shows it, in characters.
const MAX_RENDERED_CHARS: usize = 40;

/// Magnitude up to which every integer has an exact `f64` representation (2^53).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Parses a payload that must contain exactly one JSON object.
pub(super) fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, InputError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Malformed(
            "empty payload: expected one JSON object".to_string(),
        ));
    }
    let value: Value = serde_json::from_slice(payload)
        .map_err(|error| InputError::Malformed(format!("invalid JSON payload: {error}")))?;
    // serde_json keeps the last of repeated keys, which would silently drop a value.
    serde_json::from_slice::<UniqueKeys>(payload).map_err(|error| {
        let message = error.to_string();
        let detail = message.split(" at line").next().unwrap_or(&message);
        InputError::InvalidField(format!("{detail}: send each field once"))
    })?;
    match value {
        Value::Object(object) => Ok(object),
        other => Err(InputError::Malformed(format!(
            "invalid payload: expected one JSON object, found {}",
            describe_kind(&other)
        ))),
    }
}

/// A JSON document walked only to reject an object that repeats a key.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                let shown = render(&Value::String(key));
                return Err(serde::de::Error::custom(format!(
                    "invalid object: duplicate key {shown}"
                )));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

/// Returns the value of `key`, treating an explicit JSON `null` as absent.
pub(super) fn get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

/// Reads a JSON number. `expected` completes "expected ..." in the error message.
pub(super) fn as_number(field: &str, value: &Value, expected: &str) -> Result<f64, InputError> {
    value
        .as_f64()
        .ok_or_else(|| invalid_field(field, value, expected))
}

/// Reads a JSON number without a fractional part, such as `63` or `63.0`.
pub(super) fn as_integer(field: &str, value: &Value, expected: &str) -> Result<i64, InputError> {
    if let Some(integer) = value.as_i64() {
        return Ok(integer);
    }
    let number = as_number(field, value, expected)?;
    if number.fract() != 0.0 || number.abs() > MAX_EXACT_INTEGER {
        return Err(invalid_field(field, value, expected));
    }
    Ok(number as i64)
}

/// Reads a JSON boolean.
pub(super) fn as_bool(field: &str, value: &Value) -> Result<bool, InputError> {
    value
        .as_bool()
        .ok_or_else(|| invalid_field(field, value, "true or false"))
}

/// Reads a JSON string that must be one of the names in `table`.
pub(super) fn as_enum<T: Copy>(
    field: &str,
    value: &Value,
    table: &[(&str, T)],
) -> Result<T, InputError> {
    let name = value.as_str().unwrap_or_default();
    match table.iter().find(|(candidate, _)| *candidate == name) {
        Some((_, variant)) => Ok(*variant),
        None => {
            let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
            let expected = format!("one of {}", names.join(", "));
            Err(invalid_field(field, value, &expected))
        }
    }
}

/// Builds the `InvalidField` error "invalid FIELD VALUE: expected EXPECTED".
pub(super) fn invalid_field(field: &str, value: &Value, expected: &str) -> InputError {
    InputError::InvalidField(format!(
        "invalid {field} {}: expected {expected}",
        render(value)
    ))
}

/// Renders a value as compact JSON, cut to [`MAX_RENDERED_CHARS`] characters.
pub(super) fn render(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= MAX_RENDERED_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_RENDERED_CHARS).collect();
    cut.push('…');
    cut
}

/// Names the kind of a JSON value with its article, as in "found an array".
fn describe_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_object_rejects_duplicate_keys() {
        for payload in [
            r#"{"vitals": {"heart_rate_bpm": 40}, "vitals": {"spo2_percent": 99}}"#,
            r#"{"vitals": {"heart_rate_bpm": 40, "heart_rate_bpm": 80}}"#,
            r#"{"entry": [{"resource": {"status": "final", "status": "cancelled"}}]}"#,
        ] {
            let error = parse_object(payload.as_bytes()).unwrap_err();
            assert!(
                matches!(error, InputError::InvalidField(_)),
                "{payload}: {error}"
            );
            assert!(
                error.to_string().contains("duplicate key"),
                "{payload}: {error}"
            );
        }
    }

    #[test]
    fn parse_object_accepts_same_key_in_sibling_objects() {
        let payload = r#"{"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}]}"#;
        assert!(parse_object(payload.as_bytes()).is_ok());
    }

    #[test]
    fn parse_object_rejects_empty_payload() {
        for payload in [&b""[..], b"  \n"] {
            let error = parse_object(payload).unwrap_err();
            assert!(matches!(error, InputError::Malformed(_)), "{error}");
            assert!(error.to_string().starts_with("empty payload"), "{error}");
        }
    }

    #[test]
    fn parse_object_rejects_invalid_json() {
        let error = parse_object(b"{\"age\": ").unwrap_err();
        assert!(matches!(error, InputError::Malformed(_)), "{error}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn parse_object_rejects_non_utf8() {
        let error = parse_object(&[b'"', 0xff, b'"']).unwrap_err();
        assert!(matches!(error, InputError::Malformed(_)), "{error}");
    }

    #[test]
    fn parse_object_rejects_array_and_scalars() {
        for (payload, kind) in [
            ("[1, 2]", "an array"),
            ("42", "a number"),
            ("\"text\"", "a string"),
            ("null", "null"),
        ] {
            let error = parse_object(payload.as_bytes()).unwrap_err();
            assert!(matches!(error, InputError::Malformed(_)), "{payload}");
            assert!(error.to_string().ends_with(kind), "{error}");
        }
    }

    #[test]
    fn get_treats_null_as_absent() {
        let object = json!({"a": null, "b": 1});
        let object = object.as_object().unwrap();
        assert_eq!(get(object, "a"), None);
        assert_eq!(get(object, "b"), Some(&json!(1)));
        assert_eq!(get(object, "c"), None);
    }

    #[test]
    fn as_integer_accepts_integral_float() {
        assert_eq!(as_integer("age", &json!(63.0), "years"), Ok(63));
        assert_eq!(as_integer("age", &json!(63), "years"), Ok(63));
    }

    #[test]
    fn as_integer_rejects_fraction_and_string() {
        for value in [json!(0.5), json!("1"), json!(true), json!(1e300)] {
            let result = as_integer("gender", &value, "0 or 1");
            assert!(
                matches!(result, Err(InputError::InvalidField(_))),
                "{value}"
            );
        }
    }

    #[test]
    fn as_enum_lists_accepted_names() {
        let table = [("female", 0), ("male", 1)];
        let error = as_enum("sex", &json!("f"), &table).unwrap_err();
        let expected = "invalid sex \"f\": expected one of female, male";
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn render_cuts_long_values() {
        let long = json!("x".repeat(100));
        let rendered = render(&long);
        assert_eq!(rendered.chars().count(), MAX_RENDERED_CHARS + 1);
        assert!(rendered.ends_with('…'));
    }
}
