//! pvclock arithmetic (`set_time_scale` in Xen's `arch/x86/time.c`).

/// A TSC-to-nanoseconds scale: `ns = ((tsc << shift) * mul) >> 32`
/// (a right shift when `shift` is negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeScale {
    pub mul: u32,
    pub shift: i8,
}

impl TimeScale {
    /// The scale for a TSC running at `hz`, with `mul` in [2^31, 2^32).
    pub fn for_hz(hz: u64) -> Self {
        let mut tps = hz.max(1);
        let mut shift: i8 = 0;
        while tps > 2_000_000_000 {
            tps >>= 1;
            shift -= 1;
        }
        let mut tps32 = tps as u32;
        while tps32 <= 1_000_000_000 {
            tps32 <<= 1;
            shift += 1;
        }
        let mul = ((1_000_000_000u64 << 32) / tps32 as u64) as u32;
        TimeScale { mul, shift }
    }

    /// Nanoseconds for `delta` TSC ticks.
    pub fn apply(&self, delta: u64) -> u64 {
        let d = if self.shift >= 0 { delta << self.shift } else { delta >> (-self.shift) };
        ((d as u128 * self.mul as u128) >> 32) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales() {
        for hz in [1_000_000_000u64, 2_400_000_000, 3_193_000_000, 100_000_000, 4_000_000] {
            let s = TimeScale::for_hz(hz);
            assert!(s.mul >= 1 << 31, "{hz}: {s:?}");
            let one_sec = s.apply(hz);
            assert!((999_999_000..=1_000_001_000).contains(&one_sec), "{hz}: {one_sec}");
        }
    }
}
