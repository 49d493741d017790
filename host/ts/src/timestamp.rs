//! PTS/DTS timestamps: 33 bits of a 90 kHz clock that wraps about every 26.5 hours.

use std::time::Duration;

use crate::TsError;

/// A 33-bit presentation or decoding timestamp in 90 kHz ticks.
///
/// Timestamps wrap around every 2^33 ticks (about 26.5 hours); use
/// [`ticks_since`](Self::ticks_since) for differences.
///
/// ```
/// use byoc_ts::Timestamp;
/// let t = Timestamp::new(90_000).unwrap();
/// assert_eq!(t.as_duration(), std::time::Duration::from_secs(1));
/// let wrapped = Timestamp::new(10).unwrap();
/// let before_wrap = Timestamp::new(Timestamp::MODULUS - 10).unwrap();
/// assert_eq!(wrapped.ticks_since(before_wrap), 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(u64);

impl Timestamp {
    /// Ticks per second.
    pub const HZ: u64 = 90_000;
    /// Timestamps are modulo this (2^33).
    pub const MODULUS: u64 = 1 << 33;

    /// A timestamp from ticks, or `None` if it does not fit in 33 bits.
    ///
    /// ```
    /// assert!(byoc_ts::Timestamp::new(1 << 33).is_none());
    /// ```
    pub const fn new(ticks: u64) -> Option<Self> {
        if ticks < Self::MODULUS { Some(Self(ticks)) } else { None }
    }

    /// The value in 90 kHz ticks.
    ///
    /// ```
    /// assert_eq!(byoc_ts::Timestamp::new(5).unwrap().ticks(), 5);
    /// ```
    pub const fn ticks(self) -> u64 {
        self.0
    }

    /// The value as a duration since timestamp zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(byoc_ts::Timestamp::new(45_000).unwrap().as_duration(), Duration::from_millis(500));
    /// ```
    pub fn as_duration(self) -> Duration {
        ticks_to_duration(self.0)
    }

    /// Ticks from `earlier` to `self`, modulo 2^33 (correct across one wrap-around).
    ///
    /// ```
    /// use byoc_ts::Timestamp;
    /// let (a, b) = (Timestamp::new(100).unwrap(), Timestamp::new(400).unwrap());
    /// assert_eq!(b.ticks_since(a), 300);
    /// ```
    pub const fn ticks_since(self, earlier: Self) -> u64 {
        self.0.wrapping_sub(earlier.0) & (Self::MODULUS - 1)
    }

    /// The timestamp of any tick count, keeping its low 33 bits (a clock that counts on
    /// past 2^33 wraps to 0 as the stream's does).
    ///
    /// ```
    /// use byoc_ts::Timestamp;
    /// assert_eq!(Timestamp::wrap(Timestamp::MODULUS + 5).ticks(), 5);
    /// ```
    pub const fn wrap(ticks: u64) -> Self {
        Self(ticks & (Self::MODULUS - 1))
    }

    /// Signed ticks from `earlier` to `self`: the shorter way round the 2^33 circle, so a
    /// timestamp just before a wrap-around is earlier than one just after it, and one that
    /// went back a little is negative.
    ///
    /// ```
    /// use byoc_ts::Timestamp;
    /// let (a, b) = (Timestamp::wrap(10), Timestamp::wrap(5));
    /// assert_eq!(a.signed_ticks_since(b), 5);
    /// assert_eq!(b.signed_ticks_since(a), -5);
    /// assert_eq!(Timestamp::wrap(2).signed_ticks_since(Timestamp::wrap(Timestamp::MODULUS - 2)), 4);
    /// ```
    pub const fn signed_ticks_since(self, earlier: Self) -> i64 {
        let ahead = self.ticks_since(earlier);
        // Both fit in i64: they are below 2^33.
        if ahead >= Self::MODULUS / 2 { ahead as i64 - Self::MODULUS as i64 } else { ahead as i64 }
    }

    /// The 5-byte PES header field: `prefix` in the top 4 bits (`0b0010` a lone PTS,
    /// `0b0011` the PTS before a DTS, `0b0001` that DTS), then the 33 bits split 3, 15, 15,
    /// each group followed by a marker bit of 1.
    ///
    /// ```
    /// use byoc_ts::Timestamp;
    /// assert_eq!(Timestamp::wrap(900_000).to_pes_field(0b0010), [0x21, 0x00, 0x37, 0x77, 0x41]);
    /// ```
    pub const fn to_pes_field(self, prefix: u8) -> [u8; 5] {
        let t = self.0;
        [
            (prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1,
            (t >> 22) as u8,
            (((t >> 15) as u8) << 1) | 1,
            (t >> 7) as u8,
            ((t as u8) << 1) | 1,
        ]
    }

    /// Reads the field [`to_pes_field`](Self::to_pes_field) writes (the prefix is not
    /// checked; the marker bits are).
    pub(crate) fn from_pes_field(bytes: &[u8]) -> Result<Self, TsError> {
        let &[a, b, c, d, e] = bytes.first_chunk::<5>().ok_or(TsError::PesHeader("timestamp cut short"))?;
        if (a & c & e) & 1 == 0 {
            return Err(TsError::PesHeader("timestamp marker bit is 0"));
        }
        let [a, b, c, d, e] = [a, b, c, d, e].map(u64::from);
        Ok(Self::wrap((((a >> 1) & 0x07) << 30) | (b << 22) | ((c >> 1) << 15) | (d << 7) | (e >> 1)))
    }
}

/// Converts 90 kHz ticks to a duration.
///
/// ```
/// assert_eq!(byoc_ts::ticks_to_duration(9), std::time::Duration::from_micros(100));
/// ```
pub fn ticks_to_duration(ticks: u64) -> Duration {
    let secs = ticks / Timestamp::HZ;
    let rem = ticks % Timestamp::HZ;
    // rem < 90 000, so rem × 100 000 / 9 fits easily and is exact in nanoseconds.
    Duration::new(secs, (rem * 100_000 / 9) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_conversion_is_exact() {
        assert_eq!(ticks_to_duration(3_003), Duration::from_nanos(33_366_666));
        assert_eq!(ticks_to_duration(90_000 * 3 + 1), Duration::new(3, 11_111));
    }

    #[test]
    fn signed_differences_take_the_short_way_round() {
        let at = |ticks| Timestamp::wrap(ticks);
        assert_eq!(at(10).signed_ticks_since(at(5)), 5);
        assert_eq!(at(5).signed_ticks_since(at(10)), -5);
        assert_eq!(at(2).signed_ticks_since(at(Timestamp::MODULUS - 2)), 4);
        // Half the circle and more counts as going back.
        assert_eq!(at(Timestamp::MODULUS / 2).signed_ticks_since(at(0)), -(1 << 32));
        assert_eq!(at(Timestamp::MODULUS / 2 - 1).signed_ticks_since(at(0)), (1 << 32) - 1);
    }

    #[test]
    fn pes_field_round_trips_and_checks_markers() {
        for ticks in [0, 1, 90_000, (1 << 32) + 12_345, Timestamp::MODULUS - 1] {
            let field = Timestamp::wrap(ticks).to_pes_field(0b0010);
            assert_eq!(Timestamp::from_pes_field(&field), Ok(Timestamp::wrap(ticks)));
            for (byte, bit) in [(0, 0), (2, 0), (4, 0)] {
                let mut broken = field;
                broken[byte] &= !(1 << bit);
                assert!(Timestamp::from_pes_field(&broken).is_err());
            }
        }
        assert!(Timestamp::from_pes_field(&[0x21, 0, 1, 0]).is_err());
    }
}
