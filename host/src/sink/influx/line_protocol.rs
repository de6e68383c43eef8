//! InfluxDB line protocol: one point per line, as
//! `measurement,tag=value field=1.5,text="a b" 1796379300000` (timestamp in ms).
//!
//! Escaping follows the InfluxDB 1.x and 2.x line protocol reference and was checked
//! against InfluxDB 1.6.7. Measurement names escape commas and spaces. Tag keys, tag
//! values and field keys also escape equals signs. String field values escape double
//! quotes and backslashes. Line protocol cannot carry a line break inside a point, so
//! carriage returns and line feeds become spaces everywhere.

use std::fmt::Write as _;

/// One point being written: the measurement and tags first, then fields.
#[derive(Debug)]
pub struct Line {
    text: String,
    fields: usize,
}

impl Line {
    /// Starts a point of `measurement`.
    pub fn new(measurement: &str) -> Self {
        let mut text = String::with_capacity(256);
        push_escaped(&mut text, measurement, &[',', ' ']);
        Line { text, fields: 0 }
    }

    /// Adds a tag; an empty value is left out, as line protocol has no empty tags.
    /// Call before any field. InfluxDB recommends adding tags in key order.
    pub fn tag(&mut self, key: &str, value: &str) -> &mut Self {
        debug_assert_eq!(self.fields, 0, "tags must precede fields");
        if value.trim_end_matches('\\').is_empty() {
            return self;
        }
        self.text.push(',');
        push_escaped(&mut self.text, key, KEY_SPECIALS);
        self.text.push('=');
        push_escaped(&mut self.text, value, KEY_SPECIALS);
        self
    }

    /// Adds a float field; NaN and infinities are left out, as line protocol has none.
    pub fn float(&mut self, key: &str, value: f64) -> &mut Self {
        if value.is_finite() {
            self.field_key(key);
            // Rust prints an f64 without an exponent, in the fewest digits that parse back
            // to the same value. InfluxDB reads a number without a suffix as a float.
            let _ = write!(self.text, "{value}");
        }
        self
    }

    /// Adds an integer field (`i` suffix).
    pub fn integer(&mut self, key: &str, value: i64) -> &mut Self {
        self.field_key(key);
        let _ = write!(self.text, "{value}i");
        self
    }

    /// Adds a string field.
    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.field_key(key);
        self.text.push('"');
        for character in value.chars() {
            match character {
                '"' | '\\' => {
                    self.text.push('\\');
                    self.text.push(character);
                }
                '\n' | '\r' => self.text.push(' '),
                _ => self.text.push(character),
            }
        }
        self.text.push('"');
        self
    }

    /// Ends the point with its timestamp in milliseconds since the Unix epoch; `None`
    /// when it has no field, which line protocol does not allow.
    pub fn finish(mut self, timestamp_ms: i64) -> Option<String> {
        if self.fields == 0 {
            return None;
        }
        let _ = write!(self.text, " {timestamp_ms}");
        Some(self.text)
    }

    fn field_key(&mut self, key: &str) {
        self.text.push(if self.fields == 0 { ' ' } else { ',' });
        push_escaped(&mut self.text, key, KEY_SPECIALS);
        self.text.push('=');
        self.fields += 1;
    }
}

/// Characters escaped in tag keys, tag values and field keys.
const KEY_SPECIALS: &[char] = &[',', '=', ' '];

/// Appends `value` with a backslash before each of `specials` and line breaks turned
/// into spaces.
///
/// NOTE: trailing backslashes are dropped. InfluxDB 1.6.7 reads a backslash before a
/// separator as an escape and has no escape for a backslash itself, so a name or tag
/// value ending in one cannot be written (`h=a\\ f=1` is rejected as an invalid tag).
fn push_escaped(out: &mut String, value: &str, specials: &[char]) {
    for character in value.trim_end_matches('\\').chars() {
        let character = match character {
            '\n' | '\r' => ' ',
            _ => character,
        };
        if specials.contains(&character) {
            out.push('\\');
        }
        out.push(character);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(build: impl FnOnce(&mut Line)) -> String {
        let mut line = Line::new("m");
        build(&mut line);
        line.finish(1_000).expect("point has a field")
    }

    #[test]
    fn measurement_escapes_comma_and_space() {
        let mut line = Line::new("vital signs,v2");
        line.integer("n", 1);
        assert_eq!(line.finish(5).unwrap(), r"vital\ signs\,v2 n=1i 5");
    }

    #[test]
    fn measurement_keeps_equals_sign() {
        let mut line = Line::new("a=b");
        line.integer("n", 1);
        assert_eq!(line.finish(5).unwrap(), "a=b n=1i 5");
    }

    #[test]
    fn tag_escapes_comma_equals_and_space() {
        let text = point(|line| {
            line.tag("ward name", "st marys, east=1").integer("n", 1);
        });
        assert_eq!(text, r"m,ward\ name=st\ marys\,\ east\=1 n=1i 1000");
    }

    #[test]
    fn tag_line_break_becomes_space() {
        let text = point(|line| {
            line.tag("h", "a\nb\r").integer("n", 1);
        });
        assert_eq!(text, r"m,h=a\ b\  n=1i 1000");
    }

    #[test]
    fn tag_inner_backslash_is_kept() {
        let text = point(|line| {
            line.tag("h", r"a\b").integer("n", 1);
        });
        assert_eq!(text, r"m,h=a\b n=1i 1000");
    }

    #[test]
    fn tag_trailing_backslash_is_dropped() {
        let text = point(|line| {
            line.tag("h", r"ab\\").integer("n", 1);
        });
        assert_eq!(text, "m,h=ab n=1i 1000");
    }

    #[test]
    fn empty_tag_value_is_left_out() {
        let text = point(|line| {
            line.tag("h", "")
                .tag("b", r"\")
                .tag("p", "x")
                .integer("n", 1);
        });
        assert_eq!(text, "m,p=x n=1i 1000");
    }

    #[test]
    fn string_field_escapes_quotes_and_backslashes() {
        let text = point(|line| {
            line.string("reason", r#"say "hi" \ bye\"#);
        });
        assert_eq!(text, r#"m reason="say \"hi\" \\ bye\\" 1000"#);
    }

    #[test]
    fn string_field_keeps_commas_equals_and_spaces() {
        let text = point(|line| {
            line.string("reason", "a, b=c d");
        });
        assert_eq!(text, r#"m reason="a, b=c d" 1000"#);
    }

    #[test]
    fn string_field_line_break_becomes_space() {
        let text = point(|line| {
            line.string("reason", "one\ntwo\r\nthree");
        });
        assert_eq!(text, r#"m reason="one two  three" 1000"#);
    }

    #[test]
    fn field_key_escapes_comma_equals_and_space() {
        let text = point(|line| {
            line.float("a b,c=d", 1.5);
        });
        assert_eq!(text, r"m a\ b\,c\=d=1.5 1000");
    }

    #[test]
    fn fields_are_comma_separated() {
        let text = point(|line| {
            line.float("p", 0.25).integer("n", -3).string("s", "x");
        });
        assert_eq!(text, r#"m p=0.25,n=-3i,s="x" 1000"#);
    }

    #[test]
    fn float_prints_without_exponent() {
        let text = point(|line| {
            line.float("small", 1e-7).float("whole", 172.0);
        });
        assert_eq!(text, "m small=0.0000001,whole=172 1000");
    }

    #[test]
    fn non_finite_float_is_left_out() {
        let text = point(|line| {
            line.float("nan", f64::NAN)
                .float("inf", f64::INFINITY)
                .float("ok", 2.0);
        });
        assert_eq!(text, "m ok=2 1000");
    }

    #[test]
    fn point_without_fields_is_none() {
        let mut line = Line::new("m");
        line.tag("h", "a").float("nan", f64::NAN);
        assert_eq!(line.finish(1), None);
    }
}
