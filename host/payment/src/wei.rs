//! Exact money: [`Wei`] amounts, [`Balance`]s that hold fractional expected values, and [`Price`]s.
//!
//! A ticket's expected value is `faceValue × winProb / (2^256 − 1)` wei, a fraction; a price is
//! `pricePerUnit / pixelsPerUnit` wei per second, also a fraction. go-livepeer keeps both as `big.Rat`, so
//! [`Balance`] is an exact signed rational of wei too (never a float): sums of credits and debits are exact
//! and nothing is lost to rounding. Whole-wei views truncate toward zero, as go-livepeer reports them.

use std::fmt;
use std::str::FromStr;

use num_bigint::{BigInt, BigUint, Sign};
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Why an amount or price was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum AmountError {
    #[error("amount does not fit in 256 bits")]
    TooLarge,
    #[error("not a decimal amount of wei: {0:?}")]
    NotDecimal(String),
    #[error("not an exact balance (\"N\" or \"N/D\" with D > 0): {0:?}")]
    NotExact(String),
    #[error("a price needs pricePerUnit >= 0 and pixelsPerUnit > 0, got {0}/{1}")]
    BadPrice(i64, i64),
}

/// A non-negative whole amount of wei below 2^256 (a Solidity `uint256`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Wei(BigUint);

impl Wei {
    /// Zero wei.
    pub fn zero() -> Wei {
        Wei(BigUint::zero())
    }

    /// From a machine integer.
    pub fn from_u128(v: u128) -> Wei {
        Wei(BigUint::from(v))
    }

    /// From big-endian bytes (go-livepeer's `big.Int.Bytes()`; leading zeros allowed, empty is zero).
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Wei, AmountError> {
        uint256_from_be(bytes).map(Wei)
    }

    /// Minimal big-endian bytes, empty for zero, like go-livepeer's `big.Int.Bytes()`.
    pub fn to_be_bytes(&self) -> Vec<u8> {
        minimal_be(&self.0)
    }

    /// The 32-byte big-endian form used in ticket hashes.
    pub fn to_be_bytes32(&self) -> [u8; 32] {
        be32(&self.0)
    }

    /// Whether this is zero wei.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// As a `u128`, if it fits.
    pub fn to_u128(&self) -> Option<u128> {
        self.0.to_u128()
    }

    /// The sum, capped at 2^256 − 1.
    pub fn saturating_add(&self, other: &Wei) -> Wei {
        Wei::capped(&self.0 + &other.0)
    }

    /// The difference, or zero when `other` is larger.
    pub fn saturating_sub(&self, other: &Wei) -> Wei {
        if other.0 >= self.0 { Wei::zero() } else { Wei(&self.0 - &other.0) }
    }

    /// `n` times this, capped at 2^256 − 1.
    pub fn times(&self, n: u64) -> Wei {
        Wei::capped(&self.0 * n)
    }

    /// This divided by `n`, rounded down (zero when `n` is zero).
    pub fn div_floor(&self, n: u64) -> Wei {
        if n == 0 { Wei::zero() } else { Wei(&self.0 / n) }
    }

    fn capped(v: BigUint) -> Wei {
        let max = (BigUint::from(1u8) << 256u32) - 1u8;
        Wei(v.min(max))
    }

    pub(crate) fn as_biguint(&self) -> &BigUint {
        &self.0
    }
}

impl fmt::Display for Wei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Wei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wei({})", self.0)
    }
}

impl FromStr for Wei {
    type Err = AmountError;
    /// Decimal digits only: no sign, no exponent, no separators.
    fn from_str(s: &str) -> Result<Wei, AmountError> {
        if s.is_empty() || s.len() > 78 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotDecimal(s.chars().take(100).collect()));
        }
        let v = BigUint::parse_bytes(s.as_bytes(), 10).ok_or_else(|| AmountError::NotDecimal(s.to_owned()))?;
        if v.bits() > 256 {
            return Err(AmountError::TooLarge);
        }
        Ok(Wei(v))
    }
}

impl serde::Serialize for Wei {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Wei {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Wei, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An exact, signed amount of wei that may be fractional: a credit balance.
///
/// `Display` shows whole wei truncated toward zero; [`Balance::exact`] is the lossless form. Serde writes
/// `{"wei": "<whole wei>", "exact": "<N or N/D>"}` and reads back `exact`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Balance(BigRational);

impl Default for Balance {
    fn default() -> Self {
        Balance::zero()
    }
}

impl Balance {
    /// Nothing.
    pub fn zero() -> Balance {
        Balance(BigRational::zero())
    }

    /// A whole number of wei.
    pub fn from_wei(w: &Wei) -> Balance {
        Balance(BigRational::from_integer(BigInt::from(w.0.clone())))
    }

    /// A whole, possibly negative, number of wei.
    pub fn from_i128(v: i128) -> Balance {
        Balance(BigRational::from_integer(BigInt::from(v)))
    }

    /// `num / den` wei, exactly. `None` when `den` is zero.
    pub fn from_ratio(num: i128, den: u128) -> Option<Balance> {
        if den == 0 {
            return None;
        }
        Some(Balance(BigRational::new(BigInt::from(num), BigInt::from(den))))
    }

    pub(crate) fn from_rational(r: BigRational) -> Balance {
        Balance(r)
    }

    /// Whole wei, truncated toward zero (what go-livepeer reports as an integer).
    pub fn whole_wei(&self) -> BigInt {
        self.0.to_integer()
    }

    /// Whole wei as an `i64`, saturating: the `balance` field of a job token.
    pub fn to_i64_saturating(&self) -> i64 {
        let w = self.whole_wei();
        w.to_i64().unwrap_or(if w.is_negative() { i64::MIN } else { i64::MAX })
    }

    /// Whether this is below zero.
    pub fn is_negative(&self) -> bool {
        self.0.is_negative()
    }

    /// Whether this is above zero.
    pub fn is_positive(&self) -> bool {
        self.0.is_positive()
    }

    /// Whether this is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// The lossless text form: `"N"` for whole wei, `"N/D"` otherwise (lowest terms).
    pub fn exact(&self) -> String {
        if self.0.denom().is_one() {
            self.0.numer().to_string()
        } else {
            format!("{}/{}", self.0.numer(), self.0.denom())
        }
    }

    /// Parses [`Balance::exact`]'s form.
    pub fn from_exact(s: &str) -> Result<Balance, AmountError> {
        let bad = || AmountError::NotExact(s.chars().take(100).collect());
        let int = |t: &str| -> Option<BigInt> {
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || digits.len() > 400 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            BigInt::parse_bytes(t.as_bytes(), 10)
        };
        let (n, d) = match s.split_once('/') {
            Some((n, d)) => (int(n).ok_or_else(bad)?, int(d).ok_or_else(bad)?),
            None => (int(s).ok_or_else(bad)?, BigInt::one()),
        };
        if !d.is_positive() {
            return Err(bad());
        }
        Ok(Balance(BigRational::new(n, d)))
    }

    /// This amount times a whole number.
    pub fn times(&self, n: u64) -> Balance {
        Balance(&self.0 * BigRational::from_integer(BigInt::from(n)))
    }

    /// The fewest whole `unit`s that add up to at least this amount: 0 when it is not positive;
    /// `None` when `unit` is not positive or the count does not fit a `u64`.
    pub fn units_covering(&self, unit: &Balance) -> Option<u64> {
        if !unit.is_positive() {
            return None;
        }
        if !self.is_positive() {
            return Some(0);
        }
        (&self.0 / &unit.0).ceil().to_integer().to_u64()
    }
}

impl std::ops::Add<&Balance> for &Balance {
    type Output = Balance;
    fn add(self, rhs: &Balance) -> Balance {
        Balance(&self.0 + &rhs.0)
    }
}

impl std::ops::Sub<&Balance> for &Balance {
    type Output = Balance;
    fn sub(self, rhs: &Balance) -> Balance {
        Balance(&self.0 - &rhs.0)
    }
}

impl std::ops::AddAssign<&Balance> for Balance {
    fn add_assign(&mut self, rhs: &Balance) {
        self.0 += &rhs.0;
    }
}

impl std::ops::SubAssign<&Balance> for Balance {
    fn sub_assign(&mut self, rhs: &Balance) {
        self.0 -= &rhs.0;
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.whole_wei())
    }
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Balance({})", self.exact())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct BalanceJson {
    #[serde(default, skip_deserializing)]
    wei: String,
    exact: String,
}

impl serde::Serialize for Balance {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BalanceJson { wei: self.to_string(), exact: self.exact() }.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Balance {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Balance, D::Error> {
        let j = BalanceJson::deserialize(d)?;
        Balance::from_exact(&j.exact).map_err(serde::de::Error::custom)
    }
}

/// A price in wei per second of compute: `pricePerUnit / pixelsPerUnit` (go-livepeer's `PriceInfo`, whose
/// unit is one second for BYOC). JSON as in a job token: `{"pricePerUnit": int, "pixelsPerUnit": int}`,
/// zero fields omitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Price {
    /// The price per `pixels_per_unit` units of work, in wei.
    #[serde(rename = "pricePerUnit", default, skip_serializing_if = "is_zero_i64")]
    pub price_per_unit: i64,
    /// How many units the price is for.
    #[serde(rename = "pixelsPerUnit", default, skip_serializing_if = "is_zero_i64")]
    pub pixels_per_unit: i64,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

impl Price {
    /// `price_per_unit / pixels_per_unit` wei per second; refuses negative prices and units ≤ 0.
    pub fn new(price_per_unit: i64, pixels_per_unit: i64) -> Result<Price, AmountError> {
        let p = Price { price_per_unit, pixels_per_unit };
        p.check()?;
        Ok(p)
    }

    /// A whole number of wei per second.
    pub fn wei_per_second(wei: i64) -> Result<Price, AmountError> {
        Price::new(wei, 1)
    }

    /// Checks the invariants of [`Price::new`] (a price read off the wire may break them).
    pub fn check(&self) -> Result<(), AmountError> {
        if self.price_per_unit < 0 || self.pixels_per_unit <= 0 {
            return Err(AmountError::BadPrice(self.price_per_unit, self.pixels_per_unit));
        }
        Ok(())
    }

    /// Whether nothing is charged.
    pub fn is_free(&self) -> bool {
        self.price_per_unit == 0
    }

    /// Wei per second, exactly.
    pub fn per_second(&self) -> Result<Balance, AmountError> {
        self.check()?;
        Ok(Balance(BigRational::new(BigInt::from(self.price_per_unit), BigInt::from(self.pixels_per_unit))))
    }

    /// The cost of `seconds` of compute, exactly.
    pub fn cost(&self, seconds: u64) -> Result<Balance, AmountError> {
        Ok(self.per_second()?.times(seconds))
    }

    /// Numerator and denominator in lowest terms, as Go's `big.Rat` holds them (0 is 0/1).
    pub(crate) fn reduced(&self) -> Result<(BigUint, BigUint), AmountError> {
        let r = self.per_second()?.0;
        Ok((r.numer().magnitude().clone(), r.denom().magnitude().clone()))
    }
}

/// A value below 2^256 from big-endian bytes of any length (leading zeros ignored).
pub(crate) fn uint256_from_be(bytes: &[u8]) -> Result<BigUint, AmountError> {
    let v = BigUint::from_bytes_be(bytes);
    if v.bits() > 256 {
        return Err(AmountError::TooLarge);
    }
    Ok(v)
}

/// Minimal big-endian bytes, empty for zero.
pub(crate) fn minimal_be(v: &BigUint) -> Vec<u8> {
    if v.is_zero() { Vec::new() } else { v.to_bytes_be() }
}

/// Left-padded 32-byte big-endian form of a value below 2^256.
pub(crate) fn be32(v: &BigUint) -> [u8; 32] {
    let b = minimal_be(v);
    let mut out = [0u8; 32];
    let start = 32usize.saturating_sub(b.len());
    out[start..].copy_from_slice(b.get(b.len().saturating_sub(32)..).unwrap_or_default());
    out
}

/// A `BigInt` from a `BigUint` (always non-negative).
pub(crate) fn signed(v: &BigUint) -> BigInt {
    BigInt::from_biguint(Sign::Plus, v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_covering_rounds_up_and_refuses_a_unit_that_is_not_positive() {
        let third = Balance::from_ratio(1, 3).unwrap();
        assert_eq!(Balance::from_i128(1).units_covering(&third), Some(3));
        assert_eq!(Balance::from_ratio(10, 9).unwrap().units_covering(&third), Some(4));
        assert_eq!(Balance::zero().units_covering(&third), Some(0));
        assert_eq!(Balance::from_i128(-5).units_covering(&third), Some(0));
        assert_eq!(Balance::from_i128(5).units_covering(&Balance::zero()), None);
        assert_eq!(Balance::from_i128(5).units_covering(&Balance::from_i128(-1)), None);
        assert_eq!(Balance::from_i128(i128::MAX).units_covering(&Balance::from_ratio(1, 2).unwrap()), None);
    }

    #[test]
    fn wei_bytes_and_text_round_trip() {
        let w: Wei = "115792089237316195423570985008687907853269984665640564039457584007913129639935".parse().unwrap();
        assert_eq!(w.to_be_bytes(), vec![0xff; 32]);
        assert_eq!(w.to_be_bytes32(), [0xff; 32]);
        assert_eq!(
            "115792089237316195423570985008687907853269984665640564039457584007913129639936".parse::<Wei>(),
            Err(AmountError::TooLarge)
        );
        assert_eq!(Wei::from_be_bytes(&[0; 40]).unwrap(), Wei::zero());
        assert!(Wei::zero().to_be_bytes().is_empty());
        assert_eq!(Wei::from_be_bytes(&[1; 33]), Err(AmountError::TooLarge));
        assert_eq!(Wei::from_u128(258).to_be_bytes(), vec![1, 2]);
        assert_eq!(Wei::from_u128(258).to_be_bytes32()[30..], [1, 2]);
        for bad in ["", "-1", "1e3", "0x10", " 1", "1_000"] {
            assert!(bad.parse::<Wei>().is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&Wei::from_u128(12)).unwrap(), "\"12\"");
        assert_eq!(serde_json::from_str::<Wei>("\"12\"").unwrap(), Wei::from_u128(12));
    }

    #[test]
    fn balance_is_exact_and_truncates_toward_zero_for_display() {
        let third = Balance::from_ratio(1, 3).unwrap();
        let sum = &(&third + &third) + &third;
        assert_eq!(sum, Balance::from_i128(1));
        let b = Balance::from_ratio(-7, 2).unwrap();
        assert_eq!(b.to_string(), "-3");
        assert_eq!(b.exact(), "-7/2");
        assert_eq!(Balance::from_exact("-7/2").unwrap(), b);
        assert_eq!(Balance::from_exact("14/4").unwrap().exact(), "7/2");
        for bad in ["", "1/0", "1/-2", "a", "1/2/3", "1.5", "+1"] {
            assert!(Balance::from_exact(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_value(Balance::from_ratio(10, 3).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"wei": "3", "exact": "10/3"}));
        assert_eq!(serde_json::from_value::<Balance>(json).unwrap(), Balance::from_ratio(10, 3).unwrap());
        assert_eq!(Balance::from_i128(i128::MAX).to_i64_saturating(), i64::MAX);
        assert_eq!(Balance::from_i128(-5).to_i64_saturating(), -5);
    }

    #[test]
    fn price_json_matches_the_job_token_and_costs_are_exact() {
        let p = Price::new(10, 3).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"pricePerUnit":10,"pixelsPerUnit":3}"#);
        let free: Price = serde_json::from_str(r#"{"pixelsPerUnit":1}"#).unwrap();
        assert!(free.is_free());
        assert_eq!(serde_json::to_string(&free).unwrap(), r#"{"pixelsPerUnit":1}"#);
        assert_eq!(p.cost(3).unwrap(), Balance::from_i128(10));
        assert_eq!(p.reduced().unwrap(), (BigUint::from(10u8), BigUint::from(3u8)));
        assert_eq!(Price::new(4, 2).unwrap().reduced().unwrap(), (BigUint::from(2u8), BigUint::from(1u8)));
        assert_eq!(Price::new(0, 5).unwrap().reduced().unwrap(), (BigUint::zero(), BigUint::from(1u8)));
        assert_eq!(Price::new(1, 0), Err(AmountError::BadPrice(1, 0)));
        assert_eq!(Price::new(-1, 1), Err(AmountError::BadPrice(-1, 1)));
    }
}
