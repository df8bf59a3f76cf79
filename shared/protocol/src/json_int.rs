//! Integers in JSON bodies. `2` and `2.0` are the same JSON number (JSON Schema's `integer`
//! admits both, and some clients cannot tell them apart), so integer fields take a whole float
//! as well, up to 2^53 in magnitude (past it a float no longer spells one integer); a fraction,
//! or a number outside the type's range, is refused as an invalid value. The range is that of
//! an `int64` (the documents' format), for unsigned fields too. Use with
//! `#[serde(deserialize_with = "...")]`.

use serde::de::{Error, Unexpected};
use serde::{Deserialize, Deserializer};

/// The largest magnitude a float spells exactly one integer at.
const EXACT: f64 = 9_007_199_254_740_992.0;

fn whole<'de, D: Deserializer<'de>>(number: serde_json::Number, low: f64) -> Result<f64, D::Error> {
    let float = number.as_f64().unwrap_or(f64::NAN);
    if float.fract() != 0.0 || !(low..=EXACT).contains(&float) {
        return Err(D::Error::invalid_value(Unexpected::Float(float), &"an integer"));
    }
    Ok(float)
}

/// An `i64`, or a whole float in its range.
pub fn i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(value) = number.as_i64() {
        return Ok(value);
    }
    if number.is_u64() {
        return Err(D::Error::invalid_value(Unexpected::Other("an integer out of range"), &"an i64"));
    }
    whole::<D>(number, -EXACT).map(|f| f as i64)
}

/// An optional `u64`, or a whole float in its range (`null` is `None`).
pub fn option_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    if let Some(value) = number.as_u64().filter(|value| i64::try_from(*value).is_ok()) {
        return Ok(Some(value));
    }
    if number.is_i64() || number.is_u64() {
        return Err(D::Error::invalid_value(Unexpected::Other("an integer out of range"), &"0 to 2^63 - 1"));
    }
    whole::<D>(number, 0.0).map(|f| Some(f as u64))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Marker {
        #[serde(deserialize_with = "super::i64")]
        seq: i64,
        #[serde(default, deserialize_with = "super::option_u64")]
        size: Option<u64>,
    }

    fn parse(json: &str) -> Result<Marker, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_floats_are_integers() {
        assert_eq!(parse(r#"{"seq": 53959698.0, "size": 2.0}"#), Ok(Marker { seq: 53959698, size: Some(2) }));
        assert_eq!(parse(r#"{"seq": -3, "size": null}"#), Ok(Marker { seq: -3, size: None }));
        assert_eq!(parse(r#"{"seq": 1}"#), Ok(Marker { seq: 1, size: None }));
    }

    #[test]
    fn fractions_and_out_of_range_numbers_are_invalid_values() {
        for bad in [
            r#"{"seq": 1.5}"#,
            r#"{"seq": 9223372036854775808}"#,
            r#"{"seq": -9223372036854775809}"#,
            r#"{"seq": 1e300}"#,
            r#"{"seq": 1, "size": 9223372036854775808}"#,
            r#"{"seq": 1, "size": -1}"#,
            r#"{"seq": 1, "size": 0.5}"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("invalid value"), "{bad}: {err}");
        }
        assert!(parse(r#"{"seq": "1"}"#).unwrap_err().contains("invalid type"));
    }
}
