//! Human-friendly sizes ("32KiB") and durations ("100ms", "none") as
//! profiles write them, range-checked as they are parsed.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration a profile may give: a day. Deadlines are instants
/// plus durations, and a day keeps that sum far from overflowing.
pub const MAX_SPAN: Duration = Duration::from_secs(24 * 3600);

/// A size in bytes, written as an integer or with a binary unit: `4096`,
/// `"32KiB"`, `"1 MiB"`, `"2GiB"` (`K`, `M`, `G`, `KB`… mean the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

impl Size {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("'{text}' is not a size: write bytes or e.g. \"32KiB\""))?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            other => {
                return Err(format!(
                    "'{text}' has unit '{other}': use B, KiB, MiB or GiB"
                ))
            }
        };
        number
            .checked_mul(1 << shift)
            .map(Size)
            .ok_or_else(|| format!("'{text}' is too large"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if b >= 1 << shift && b % (1 << shift) == 0 {
                return write!(f, "{}{unit}", b >> shift);
            }
        }
        write!(f, "{b}B")
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Bytes as an integer, or text with a binary unit (\"32KiB\").",
            "type": ["integer", "string"],
            "minimum": 0
        })
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: bytes as an integer, or a string such as \"32KiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(SizeVisitor)
    }
}

/// A duration written as text: `"100ms"`, `"2s"`, `"1m 30s"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let span = humantime::parse_duration(text.trim()).map_err(|e| {
            format!("'{text}' is not a duration ({e}): write e.g. \"100ms\" or \"2s\"")
        })?;
        if span > MAX_SPAN {
            return Err(format!(
                "'{text}' is more than a day (\"24h\"), the longest allowed"
            ));
        }
        Ok(Span(span))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0ms");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Span {
    fn schema_name() -> Cow<'static, str> {
        "Span".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration as text with a unit (\"100ms\", \"2s\"), at most a day.",
            "type": "string"
        })
    }
}

/// Reads a duration-like field: text is parsed by `parse`; a bare number
/// (as Flink's millisecond options are written) is refused with `hint`.
fn text_field<'de, D, T>(
    d: D,
    parse: fn(&str) -> Result<T, String>,
    hint: fn(i128) -> String,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct TextVisitor<T> {
        parse: fn(&str) -> Result<T, String>,
        hint: fn(i128) -> String,
    }
    impl<T> Visitor<'_> for TextVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration as text, e.g. \"100ms\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            Err(E::custom((self.hint)(i128::from(v))))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            Err(E::custom((self.hint)(i128::from(v))))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            Err(E::custom(format!(
                "{v} has no unit: write a duration as text, e.g. \"100ms\""
            )))
        }
    }
    d.deserialize_any(TextVisitor { parse, hint })
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_field(d, str::parse, |n| {
            format!("{n} has no unit: write a duration as text, e.g. \"{n}ms\"")
        })
    }
}

/// A buffer timeout: a duration (`"0ms"` flushes every record) or
/// `"none"` (only full buffers are sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Flush at least this often.
    After(Duration),
    /// Never flush on a timer.
    Never,
}

impl FromStr for Timeout {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(Timeout::Never);
        }
        text.parse::<Span>()
            .map(|s| Timeout::After(s.0))
            .map_err(|e| format!("{e}, or \"none\""))
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeout::After(d) => Span(*d).fmt(f),
            Timeout::Never => f.write_str("none"),
        }
    }
}

impl Serialize for Timeout {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Timeout {
    fn schema_name() -> Cow<'static, str> {
        "Timeout".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration as text (\"0ms\" flushes every record), or \"none\".",
            "type": "string"
        })
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Flink writes its buffer timeout in milliseconds: 0 flushes every
        // record, -1 never; say how taskbench writes either.
        text_field(d, str::parse, |n| match n {
            0 => "a bare 0: write \"0ms\" (flush every record) or \"none\" (only full buffers)"
                .into(),
            -1 => "-1 is Flink's \"no timeout\": write \"none\" (or \"0ms\" to flush every record)"
                .into(),
            n => format!(
                "{n} has no unit: write a duration as text, e.g. \"{n}ms\", or \"0ms\" or \"none\""
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units_and_print_back() {
        for (text, bytes) in [
            ("4096", 4096),
            ("32KiB", 32 << 10),
            ("32 kib", 32 << 10),
            ("1MiB", 1 << 20),
            ("2G", 2 << 30),
            ("100B", 100),
        ] {
            let size: Size = text.parse().unwrap();
            assert_eq!(size.bytes(), bytes, "{text}");
            assert_eq!(size.to_string().parse::<Size>().unwrap(), size);
        }
        assert_eq!(Size(32 << 10).to_string(), "32KiB");
        assert_eq!(Size(1000).to_string(), "1000B");
        assert!("12 parsecs"
            .parse::<Size>()
            .unwrap_err()
            .contains("parsecs"));
        assert!("KiB".parse::<Size>().is_err());
    }

    #[test]
    fn timeouts_are_durations_or_none() {
        assert_eq!("none".parse::<Timeout>().unwrap(), Timeout::Never);
        assert_eq!(
            "100ms".parse::<Timeout>().unwrap(),
            Timeout::After(Duration::from_millis(100))
        );
        assert_eq!(
            "0ms".parse::<Timeout>().unwrap(),
            Timeout::After(Duration::ZERO)
        );
        assert_eq!(Timeout::After(Duration::ZERO).to_string(), "0ms");
        assert_eq!(Timeout::After(Duration::from_millis(1)).to_string(), "1ms");
        assert!("soon".parse::<Timeout>().unwrap_err().contains("none"));
        assert!("500000000000y".parse::<Timeout>().is_err());
        assert!("25h"
            .parse::<Span>()
            .unwrap_err()
            .contains("more than a day"));
    }

    #[test]
    fn bare_numbers_are_refused_with_the_way_to_write_them() {
        #[derive(Debug, Deserialize)]
        struct T {
            #[allow(dead_code)]
            t: Timeout,
        }
        let err = |text: &str| toml::from_str::<T>(text).unwrap_err().to_string();
        assert!(err("t = 0").contains("write \"0ms\""), "{}", err("t = 0"));
        assert!(
            err("t = -1").contains("write \"none\""),
            "{}",
            err("t = -1")
        );
        assert!(err("t = 100").contains("\"100ms\""), "{}", err("t = 100"));
        assert!(err("t = 1.5").contains("no unit"), "{}", err("t = 1.5"));
    }
}
