//! Kubernetes resource quantities (`resource.Quantity`), parsed exactly as
//! the API server does: `100Mi`, `1Gi`, `128974848`, `129e6`, `129M`,
//! `500m`, `0.5`, `2`, `1.5E3`, `+1k`, `.5`.
//!
//! A quantity is `<sign><digits>[.<digits>]<suffix>` where the suffix is a
//! binary SI unit (`Ki Mi Gi Ti Pi Ei`), a decimal SI unit (`n u m "" k M G
//! T P E`) or a decimal exponent (`e3`, `E-2`). Conversions round up, as
//! Kubernetes' `Value()` and `MilliValue()` do: `0.5` bytes is 1 byte,
//! `0.0001` CPU is 1 millicore. This module owns parsing and the two
//! conversions the runtime needs; it knows nothing about which resource a
//! quantity belongs to.

use std::fmt;

/// Why a quantity string was refused. Each variant carries the text, and
/// `Display` is the quoted text and the reason (`"100Xi": unknown suffix
/// "Xi" (...)`), so a caller prints it as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Empty string.
    #[error("\"\": empty quantity")]
    Empty,
    /// Not of the form `<number><suffix>`.
    #[error("{0:?}: not a quantity (expected e.g. 100Mi, 1Gi, 500m, 0.5, 129e6)")]
    Syntax(String),
    /// The number is fine but the suffix is not one Kubernetes knows.
    #[error(
        "{text:?}: unknown suffix {suffix:?} (binary: Ki Mi Gi Ti Pi Ei; \
         decimal: n u m k M G T P E; exponent: e<N>)"
    )]
    Suffix {
        /// The whole quantity.
        text: String,
        /// The offending suffix.
        suffix: String,
    },
    /// A negative value where only non-negative values make sense.
    #[error("{0:?}: must not be negative")]
    Negative(String),
    /// The value does not fit the target integer.
    #[error("{0:?}: too large")]
    TooLarge(String),
}

/// A parsed quantity: `mantissa * 10^exp10 * 1024^binary`, with a sign.
///
/// Parsing keeps the exact decimal value; conversions round up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    text: String,
    negative: bool,
    mantissa: u128,
    exp10: i32,
    binary: u32,
}

impl Quantity {
    /// Parses a quantity string as Kubernetes does.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        if text.is_empty() {
            return Err(QuantityError::Empty);
        }
        let syntax = || QuantityError::Syntax(text.to_owned());
        let bytes = text.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        if let Some(&c @ (b'+' | b'-')) = bytes.first() {
            negative = c == b'-';
            pos += 1;
        }
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &text[int_start..pos];
        let mut frac_digits = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &text[frac_start..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(syntax());
        }
        let suffix = &text[pos..];
        let (exp_suffix, binary) = parse_suffix(suffix).ok_or_else(|| {
            if suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'+')
            {
                QuantityError::Suffix {
                    text: text.to_owned(),
                    suffix: suffix.to_owned(),
                }
            } else {
                syntax()
            }
        })?;

        // Significant digits only: trailing zeros of the fraction and
        // leading zeros of the whole number carry no value.
        let frac_digits = frac_digits.trim_end_matches('0');
        let mut digits = String::with_capacity(int_digits.len() + frac_digits.len());
        digits.push_str(int_digits);
        digits.push_str(frac_digits);
        let digits = digits.trim_start_matches('0');
        let mantissa = if digits.is_empty() {
            0
        } else {
            digits
                .parse::<u128>()
                .map_err(|_| QuantityError::TooLarge(text.to_owned()))?
        };
        let frac_len = i32::try_from(frac_digits.len())
            .map_err(|_| QuantityError::TooLarge(text.to_owned()))?;
        Ok(Quantity {
            text: text.to_owned(),
            negative: negative && mantissa != 0,
            mantissa,
            exp10: exp_suffix - frac_len,
            binary,
        })
    }

    /// The text this quantity was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Whether the value is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// The value as whole units (bytes for memory), rounded up.
    pub fn to_units(&self) -> Result<u64, QuantityError> {
        self.scaled(0)
    }

    /// The value in thousandths (millicores for CPU), rounded up.
    pub fn to_millis(&self) -> Result<u64, QuantityError> {
        self.scaled(3)
    }

    /// `ceil(value * 10^extra)` as a non-negative integer.
    fn scaled(&self, extra: i32) -> Result<u64, QuantityError> {
        if self.negative {
            return Err(QuantityError::Negative(self.text.clone()));
        }
        if self.mantissa == 0 {
            return Ok(0);
        }
        let too_large = || QuantityError::TooLarge(self.text.clone());
        let mut value = self.mantissa;
        for _ in 0..self.binary {
            value = value.checked_mul(1024).ok_or_else(too_large)?;
        }
        let exp = self.exp10.checked_add(extra).ok_or_else(too_large)?;
        if exp >= 0 {
            for _ in 0..exp {
                value = value.checked_mul(10).ok_or_else(too_large)?;
            }
        } else {
            // 10^39 exceeds u128::MAX, so any positive value divided by it
            // (or more) is in (0, 1) and rounds up to 1.
            let div_exp = exp.unsigned_abs();
            if div_exp > 38 {
                value = 1;
            } else {
                let divisor = 10u128.pow(div_exp);
                value = value.div_ceil(divisor);
            }
        }
        u64::try_from(value).map_err(|_| too_large())
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

/// Maps a suffix to (decimal exponent, power of 1024).
fn parse_suffix(suffix: &str) -> Option<(i32, u32)> {
    let decimal = match suffix {
        "" => Some(0),
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((e, 0));
    }
    let binary = match suffix {
        "Ki" => Some(1),
        "Mi" => Some(2),
        "Gi" => Some(3),
        "Ti" => Some(4),
        "Pi" => Some(5),
        "Ei" => Some(6),
        _ => None,
    };
    if let Some(b) = binary {
        return Some((0, b));
    }
    // Decimal exponent: e or E followed by a signed integer (Go's
    // strconv.ParseInt, so a sign is allowed and digits are required).
    let rest = suffix.strip_prefix(['e', 'E'])?;
    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse::<i32>()
        .ok()
        .filter(|e| e.unsigned_abs() <= 1000)
        .map(|e| (e, 0))
}

/// Parses `text` as a memory quantity in bytes (rounded up, non-negative).
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
    Quantity::parse(text)?.to_units()
}

/// `bytes` written back as Kubernetes' canonical quantity does: the
/// largest binary suffix that divides it (`1Mi`), else the largest
/// decimal one (`5M`), else plain bytes.
pub fn format_bytes(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    for (suffix, unit) in [
        ("Ei", 1u64 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
        ("E", 1_000_000_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("T", 1_000_000_000_000),
        ("G", 1_000_000_000),
        ("M", 1_000_000),
        ("k", 1_000),
    ] {
        if bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// Parses `text` as a CPU quantity in millicores (rounded up, non-negative).
pub fn parse_millicores(text: &str) -> Result<u64, QuantityError> {
    Quantity::parse(text)?.to_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_examples_from_the_kubernetes_docs() {
        // "128974848, 129e6, 129M, 128974848000m, 123Mi" are all about the same.
        assert_eq!(parse_bytes("128974848"), Ok(128_974_848));
        assert_eq!(parse_bytes("129e6"), Ok(129_000_000));
        assert_eq!(parse_bytes("129M"), Ok(129_000_000));
        assert_eq!(parse_bytes("128974848000m"), Ok(128_974_848));
        assert_eq!(parse_bytes("123Mi"), Ok(128_974_848));
        assert_eq!(parse_bytes("100Mi"), Ok(104_857_600));
        assert_eq!(parse_bytes("1Gi"), Ok(1_073_741_824));
        assert_eq!(parse_bytes("1Ki"), Ok(1024));
        for text in ["1Mi", "5M", "1023", "3Gi", "0", "1500k"] {
            assert_eq!(format_bytes(parse_bytes(text).unwrap()), text);
        }
        assert_eq!(parse_bytes("1Ti"), Ok(1 << 40));
        assert_eq!(parse_bytes("1Pi"), Ok(1 << 50));
        assert_eq!(parse_bytes("1Ei"), Ok(1 << 60));
        assert_eq!(parse_bytes("1k"), Ok(1000));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("1T"), Ok(1_000_000_000_000));
        assert_eq!(parse_bytes("1P"), Ok(1_000_000_000_000_000));
        assert_eq!(parse_bytes("1E"), Ok(1_000_000_000_000_000_000));
        assert_eq!(parse_bytes("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(parse_bytes("0"), Ok(0));
    }

    #[test]
    fn bytes_round_up() {
        assert_eq!(parse_bytes("0.5"), Ok(1));
        assert_eq!(parse_bytes("129m"), Ok(1));
        assert_eq!(parse_bytes("1001m"), Ok(2));
        assert_eq!(parse_bytes("1n"), Ok(1));
        assert_eq!(parse_bytes("0.1Ki"), Ok(103)); // 102.4 -> 103
        assert_eq!(parse_bytes("1e-50"), Ok(1));
    }

    #[test]
    fn cpu_examples() {
        assert_eq!(parse_millicores("500m"), Ok(500));
        assert_eq!(parse_millicores("0.5"), Ok(500));
        assert_eq!(parse_millicores("2"), Ok(2000));
        assert_eq!(parse_millicores("1e3"), Ok(1_000_000));
        assert_eq!(parse_millicores("1.5E3"), Ok(1_500_000));
        assert_eq!(parse_millicores("0.0001"), Ok(1)); // rounds up
        assert_eq!(parse_millicores("100u"), Ok(1));
        assert_eq!(parse_millicores("1500000u"), Ok(1500));
        assert_eq!(parse_millicores(".5"), Ok(500));
        assert_eq!(parse_millicores("5."), Ok(5000));
        assert_eq!(parse_millicores("+1"), Ok(1000));
        assert_eq!(parse_millicores("1e-3"), Ok(1));
        assert_eq!(parse_millicores("1e+3"), Ok(1_000_000));
        assert_eq!(parse_millicores("250.000m"), Ok(250));
        assert_eq!(parse_millicores("0001"), Ok(1000));
    }

    #[test]
    fn capital_e_alone_is_exa_and_with_digits_an_exponent() {
        assert_eq!(parse_bytes("2E"), Ok(2_000_000_000_000_000_000));
        assert_eq!(parse_bytes("2E2"), Ok(200));
    }

    #[test]
    fn refused_strings_name_the_problem() {
        assert_eq!(parse_bytes(""), Err(QuantityError::Empty));
        assert!(matches!(parse_bytes("abc"), Err(QuantityError::Syntax(_))));
        assert!(matches!(parse_bytes("."), Err(QuantityError::Syntax(_))));
        assert!(matches!(parse_bytes(" 1"), Err(QuantityError::Syntax(_))));
        assert!(matches!(parse_bytes("1 Mi"), Err(QuantityError::Syntax(_))));
        assert!(matches!(
            parse_bytes("1.2.3"),
            Err(QuantityError::Syntax(_))
        ));
        assert!(matches!(parse_bytes("-"), Err(QuantityError::Syntax(_))));
        for bad in [
            "1K", "1KB", "1mi", "1MB", "1Xi", "1e", "1e+", "1ee3", "1e3.5", "1b",
        ] {
            let err = parse_bytes(bad).unwrap_err();
            assert!(
                matches!(err, QuantityError::Suffix { .. } | QuantityError::Syntax(_)),
                "{bad}: {err:?}"
            );
        }
        let err = parse_bytes("100Xi").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"100Xi\": unknown suffix \"Xi\" (binary: Ki Mi Gi Ti Pi Ei; decimal: n u m k M G \
             T P E; exponent: e<N>)"
        );
        assert_eq!(parse_bytes("-1"), Err(QuantityError::Negative("-1".into())));
        assert_eq!(
            parse_millicores("-500m"),
            Err(QuantityError::Negative("-500m".into()))
        );
        // Negative zero is zero.
        assert_eq!(parse_bytes("-0"), Ok(0));
        assert!(matches!(
            parse_bytes("16Ei"),
            Err(QuantityError::TooLarge(_))
        ));
        assert!(matches!(
            parse_bytes("1e100"),
            Err(QuantityError::TooLarge(_))
        ));
        assert!(matches!(
            parse_bytes("1e99999"),
            Err(QuantityError::Suffix { .. })
        ));
        assert!(matches!(
            parse_bytes("123456789012345678901234567890123456789012"),
            Err(QuantityError::TooLarge(_))
        ));
    }

    /// Every binary suffix agrees with shifting, for a sweep of mantissas.
    #[test]
    fn property_binary_suffixes_are_powers_of_1024() {
        for (i, suffix) in ["", "Ki", "Mi", "Gi", "Ti", "Pi"].iter().enumerate() {
            for n in (0u64..2000).step_by(7).chain([1023, 1024, 4095]) {
                let text = format!("{n}{suffix}");
                assert_eq!(parse_bytes(&text), Ok(n << (10 * i)), "{text}");
            }
        }
    }

    /// Decimal suffixes, exponents and plain decimals denote the same value.
    #[test]
    fn property_decimal_forms_agree() {
        let suffixes = [("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15)];
        for n in (0u64..5000).step_by(13) {
            for (suffix, exp) in suffixes {
                let expected = n * 10u64.pow(exp);
                assert_eq!(parse_bytes(&format!("{n}{suffix}")), Ok(expected));
                assert_eq!(parse_bytes(&format!("{n}e{exp}")), Ok(expected));
                assert_eq!(parse_bytes(&format!("{n}E{exp}")), Ok(expected));
                assert_eq!(parse_bytes(&expected.to_string()), Ok(expected));
            }
            // n millicores written three ways.
            let whole = n / 1000;
            let frac = n % 1000;
            assert_eq!(parse_millicores(&format!("{n}m")), Ok(n));
            assert_eq!(parse_millicores(&format!("{whole}.{frac:03}")), Ok(n));
            assert_eq!(parse_millicores(&format!("{n}e-3")), Ok(n));
        }
    }

    /// Rounding up: ceil(n / d) for fractions of a unit.
    #[test]
    fn property_rounding_is_ceiling() {
        for n in 0u64..3000 {
            assert_eq!(parse_bytes(&format!("{n}m")), Ok(n.div_ceil(1000)), "{n}m");
            assert_eq!(
                parse_millicores(&format!("{n}u")),
                Ok(n.div_ceil(1000)),
                "{n}u"
            );
        }
    }

    /// No input panics; arbitrary strings either parse or give a typed error.
    #[test]
    fn property_no_panics_on_garbage() {
        let alphabet = [
            "", "0", "1", "9", ".", "-", "+", "e", "E", "K", "i", "m", "M", "x", " ",
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        let text = format!("{a}{b}{c}{d}");
                        if let Ok(q) = Quantity::parse(&text) {
                            let _ = q.to_units();
                            let _ = q.to_millis();
                            assert_eq!(q.as_str(), text);
                        }
                    }
                }
            }
        }
    }
}
