//! Segment sequence numbers and the `-1` / `-2` request forms.

use std::fmt;
use std::str::FromStr;

/// Largest seq the server accepts. Far beyond any real stream (one segment per millisecond for
/// 285 years) and small enough that `seq + window` can never overflow.
pub const MAX_SEQ: u64 = 1 << 53;

/// A segment sequence number within one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The seq named in a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRequest {
    /// `-1`: the next segment to be written (the live edge).
    Next,
    /// `-2`: the segment currently or most recently written (0 if none yet).
    Current,
    /// An explicit seq.
    At(Seq),
}

/// Why a seq in a request path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeqParseError {
    #[error("invalid seq: not an integer")]
    NotInteger,
    #[error("invalid seq: only -1 (next) and -2 (current) may be negative")]
    Negative,
    #[error("invalid seq: larger than {MAX_SEQ}")]
    TooLarge,
}

impl FromStr for SeqRequest {
    type Err = SeqParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: i128 = s.parse().map_err(|_| SeqParseError::NotInteger)?;
        match v {
            -1 => Ok(SeqRequest::Next),
            -2 => Ok(SeqRequest::Current),
            v if v < 0 => Err(SeqParseError::Negative),
            v if v > i128::from(MAX_SEQ) => Err(SeqParseError::TooLarge),
            // In range 0..=MAX_SEQ, so the conversion cannot fail.
            v => Ok(SeqRequest::At(Seq(u64::try_from(v).unwrap_or(MAX_SEQ)))),
        }
    }
}

impl fmt::Display for SeqRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqRequest::Next => f.write_str("-1"),
            SeqRequest::Current => f.write_str("-2"),
            SeqRequest::At(s) => s.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_special_forms() {
        assert_eq!("-1".parse(), Ok(SeqRequest::Next));
        assert_eq!("-2".parse(), Ok(SeqRequest::Current));
        assert_eq!("0".parse(), Ok(SeqRequest::At(Seq(0))));
        assert_eq!("-3".parse::<SeqRequest>(), Err(SeqParseError::Negative));
        assert_eq!("x".parse::<SeqRequest>(), Err(SeqParseError::NotInteger));
        assert_eq!("".parse::<SeqRequest>(), Err(SeqParseError::NotInteger));
        assert_eq!("99999999999999999999999999999999999999999".parse::<SeqRequest>(), Err(SeqParseError::NotInteger));
        assert_eq!(format!("{}", MAX_SEQ + 1).parse::<SeqRequest>(), Err(SeqParseError::TooLarge));
    }

    proptest! {
        #[test]
        fn any_string_parses_or_errors(s in ".{0,40}") {
            let _ = s.parse::<SeqRequest>();
        }

        #[test]
        fn round_trips(v in 0..=MAX_SEQ) {
            let r: SeqRequest = v.to_string().parse().unwrap();
            prop_assert_eq!(r, SeqRequest::At(Seq(v)));
            prop_assert_eq!(r.to_string(), v.to_string());
        }

        #[test]
        fn negatives_below_minus_two_are_refused(v in i64::MIN..-2) {
            prop_assert_eq!(v.to_string().parse::<SeqRequest>(), Err(SeqParseError::Negative));
        }
    }
}
