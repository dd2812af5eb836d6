//! CPython's conversion of an integer argument: to a C `long` (`PyLong_AsLong`) and to a C
//! `int` (the `i` format unit, a `long` then range-checked), with Python's errors.
//!
//! One place for every front end: the converter module's JS numbers and BigInts
//! (`wasm/converter`), the ports typed at the native CLI (`sockrelay serv`), and
//! [`getservbyport`](crate::getservbyport)'s own `int` check.

use crate::{PyError, PyErrorKind};

fn overflow(message: &str) -> PyError {
    PyError::new(PyErrorKind::OverflowError, message)
}

/// The `OverflowError` of `PyLong_AsLong` for an int beyond a C long (64 bits on Linux).
pub fn long_overflow() -> PyError {
    overflow("Python int too large to convert to C long")
}

/// A C `long` from a float that stands for a Python int (a JS number): `None` for a number
/// with a fraction, NaN or an infinity (no int at all: the caller names the type), else its
/// value or [`long_overflow`].
pub fn long_from_f64(number: f64) -> Option<Result<i64, PyError>> {
    // `fract` is NaN for infinities and NaN, which compares unequal to 0.
    if number.fract() != 0.0 {
        return None;
    }
    // 2^63 is exact as an f64; every integral f64 in [-2^63, 2^63) fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    Some(if (-LIMIT..LIMIT).contains(&number) {
        Ok(number as i64)
    } else {
        Err(long_overflow())
    })
}

/// A C `long` from decimal text (digits, optionally after a `-`), as `int(text)` then
/// `PyLong_AsLong` convert it: `None` if the text is no such integer, else its value or
/// [`long_overflow`] (as `getservbyport(99999999999999999999)` raises).
pub fn long_from_decimal(text: &str) -> Option<Result<i64, PyError>> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Only overflow can make well-formed digits fail to parse.
    Some(text.parse().map_err(|_| long_overflow()))
}

/// A C `int` from a C `long`: the `i` format unit's range check and its two messages.
pub fn c_int(long: i64) -> Result<i32, PyError> {
    i32::try_from(long).map_err(|_| {
        overflow(if long > 0 {
            "signed integer is greater than maximum"
        } else {
            "signed integer is less than minimum"
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decimal_text_converts_as_python_ints() {
        let integer_arg = long_from_decimal;
        assert_eq!(integer_arg("80").unwrap().unwrap(), 80);
        assert_eq!(integer_arg("-1").unwrap().unwrap(), -1);
        assert!(integer_arg("http").is_none());
        assert!(integer_arg("-").is_none());
        assert!(integer_arg("1-2").is_none());
        assert!(integer_arg("").is_none());
        for huge in ["99999999999999999999", "-99999999999999999999"] {
            assert_eq!(
                integer_arg(huge).unwrap().unwrap_err().to_string(),
                "OverflowError: Python int too large to convert to C long"
            );
        }
    }

    #[test]
    fn floats_convert_when_integral() {
        assert_eq!(long_from_f64(80.0), Some(Ok(80)));
        assert_eq!(long_from_f64(-0.0), Some(Ok(0)));
        for not_int in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(long_from_f64(not_int), None, "{not_int}");
        }
        let limit = 2f64.powi(63);
        assert_eq!(long_from_f64(-limit), Some(Ok(i64::MIN)));
        assert_eq!(long_from_f64(limit), Some(Err(long_overflow())));
        assert_eq!(long_from_f64(-limit * 2.0), Some(Err(long_overflow())));
    }

    #[test]
    fn c_ints_are_range_checked() {
        assert_eq!(c_int(-5), Ok(-5));
        assert_eq!(c_int(i64::from(i32::MAX)), Ok(i32::MAX));
        assert_eq!(
            c_int(1 << 31).unwrap_err().to_string(),
            "OverflowError: signed integer is greater than maximum"
        );
        assert_eq!(
            c_int(-(1 << 31) - 1).unwrap_err().to_string(),
            "OverflowError: signed integer is less than minimum"
        );
    }
}
