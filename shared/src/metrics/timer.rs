//! A duration distribution in bounded memory: log-linear buckets (8 per
//! doubling, so a percentile is within 9% of the true value) for the
//! percentiles `serve` shows, plus up to [`MAX_VALUES`] raw values for the
//! EMF document (CloudWatch computes its own percentiles from them).

/// Raw values an EMF metric may carry (the format's limit).
pub const MAX_VALUES: usize = 100;
const SUB: u32 = 8;
/// Up to 2^40 ms; anything longer lands in the last bucket.
const OCTAVES: u32 = 40;
const BUCKETS: usize = (SUB * OCTAVES) as usize + SUB as usize;

#[derive(Clone)]
pub struct Timer {
    buckets: Vec<u64>,
    pub count: u64,
    pub sum: u64,
    pub max: u64,
    /// The first values since the last take (EMF).
    pub values: Vec<u64>,
    /// Values beyond [`MAX_VALUES`] not carried in `values`.
    pub dropped: u64,
}

impl Default for Timer {
    fn default() -> Self {
        Timer {
            buckets: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
            values: Vec::new(),
            dropped: 0,
        }
    }
}

/// Values below `SUB` get a bucket each; above, 8 buckets per doubling.
fn bucket(v: u64) -> usize {
    if v < u64::from(SUB) {
        return v as usize;
    }
    let octave = 63 - v.leading_zeros(); // >= 3
    let shift = octave - SUB.trailing_zeros();
    let sub = ((v >> shift) as u32) & (SUB - 1);
    let i = (octave - SUB.trailing_zeros() + 1) * SUB + sub;
    (i as usize).min(BUCKETS - 1)
}

/// The largest value a bucket holds.
fn upper(i: usize) -> u64 {
    let i = i as u32;
    if i < SUB {
        return u64::from(i);
    }
    let shift = i / SUB - 1;
    let sub = u64::from(i % SUB);
    ((u64::from(SUB) + sub + 1) << shift).saturating_sub(1)
}

impl Timer {
    pub fn add(&mut self, ms: u64) {
        self.buckets[bucket(ms)] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(ms);
        self.max = self.max.max(ms);
        if self.values.len() < MAX_VALUES {
            self.values.push(ms);
        } else {
            self.dropped += 1;
        }
    }

    /// The `q` quantile (0 < q <= 1): the upper bound of the bucket that
    /// holds it, never above the largest value seen.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        // The rank of the quantile, 1-based (nearest rank).
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for v in (0..5000u64).chain([1 << 20, 1 << 30, u64::MAX / 2]) {
            let b = bucket(v);
            assert!(b >= last, "{v}");
            let top = upper(BUCKETS - 1);
            assert!(upper(b) >= v.min(top), "{v} above its bucket");
            // Within 1/8 of the value (the bucket width), inside the range.
            let tight = v < 8 || v > top || upper(b) - v <= v / 8 + 1;
            assert!(tight, "{v}: {}", upper(b));
            last = b;
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut t = Timer::default();
        for v in 1..=1000 {
            t.add(v);
        }
        let p50 = t.quantile(0.5);
        let p95 = t.quantile(0.95);
        assert!((500..=563).contains(&p50), "{p50}");
        assert!((950..=1000).contains(&p95), "{p95}");
        assert_eq!(t.quantile(1.0), 1000);
        assert_eq!(t.values.len(), MAX_VALUES);
        assert_eq!(t.dropped, 900);
    }
}
