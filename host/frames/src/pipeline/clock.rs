//! Timestamps: the TS's 33-bit 90 kHz clock unwrapped to a monotone count, and nanoseconds.

/// PTS/DTS wrap at 2^33 ticks.
const MODULUS: i64 = 1 << 33;

/// Ticks of the 90 kHz clock in `ns` nanoseconds, rounded to the nearest.
pub(crate) fn ns_to_ticks(ns: i64) -> i64 {
    let t = (i128::from(ns) * 18 + 100_000).div_euclid(200_000);
    i64::try_from(t).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

/// Nanoseconds of `ticks` of the 90 kHz clock, rounded to the nearest (so [`ns_to_ticks`] gives the
/// ticks back exactly).
pub(crate) fn ticks_to_ns(ticks: i64) -> i64 {
    let ns = (i128::from(ticks) * 200_000 + 9).div_euclid(18);
    i64::try_from(ns).unwrap_or(if ticks < 0 { i64::MIN } else { i64::MAX })
}

/// Turns the wrapping 33-bit timestamps of a stream (all its PIDs share one clock) into a count
/// that keeps growing across the wrap. A jump is taken as the shortest way round the circle.
#[derive(Debug, Default)]
pub(crate) struct Unwrapper {
    last: Option<(i64, i64)>,
}

impl Unwrapper {
    /// The unwrapped value of the 33-bit timestamp `raw`.
    pub(crate) fn unwrap(&mut self, raw: u64) -> i64 {
        let raw = (raw % MODULUS as u64) as i64;
        let unwrapped = match self.last {
            None => raw,
            Some((last_raw, last)) => {
                let mut delta = (raw - last_raw).rem_euclid(MODULUS);
                if delta >= MODULUS / 2 {
                    delta -= MODULUS;
                }
                last.saturating_add(delta)
            }
        };
        self.last = Some((raw, unwrapped));
        unwrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_survive_the_round_trip_through_nanoseconds() {
        for t in [0i64, 1, 2, 8, 9, 3600, 3601, 90_000, (1 << 33) - 1, 1 << 40, -1, -3601] {
            assert_eq!(ns_to_ticks(ticks_to_ns(t)), t, "{t}");
        }
        assert_eq!(ticks_to_ns(90_000), 1_000_000_000);
        assert_eq!(ns_to_ticks(40_000_000), 3600);
    }

    #[test]
    fn unwraps_across_the_wrap_and_back() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap((1 << 33) - 3000), (1 << 33) - 3000);
        assert_eq!(u.unwrap(600), (1 << 33) + 600);
        // Audio slightly behind video, across the wrap.
        assert_eq!(u.unwrap((1 << 33) - 100), (1 << 33) - 100);
        assert_eq!(u.unwrap(4200), (1 << 33) + 4200);
    }
}
