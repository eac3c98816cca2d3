//! HDR histograms the way weir uses them: values in milliseconds, `sigfig` significant figures
//! (reports use 3, windows default to 2), auto-resizing so memory follows the largest value
//! seen, and the V2 + deflate serialization stored in the windows table's `t_hdr` columns.

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::Error;

/// The precision `weir report` uses: 3 significant figures, 0.1 % relative error.
pub const REPORT_SIGFIG: u8 = 3;

/// An empty auto-resizing histogram with `sigfig` significant figures (1..=5).
pub fn new_histogram(sigfig: u8) -> Result<Histogram<u64>, Error> {
    if !(1..=5).contains(&sigfig) {
        return Err(Error::Precision(sigfig));
    }
    Histogram::new(sigfig).map_err(|source| Error::Histogram { sigfig, source })
}

/// Records `value` once. An auto-resizing histogram grows to fit any `u32` millisecond value;
/// should it ever refuse, the value is clamped into range rather than lost.
#[inline]
pub fn record(h: &mut Histogram<u64>, value: u64) {
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

/// Serializes `h` in the V2 + deflate format (the HdrHistogram interchange format, readable by
/// the Java, Go and Python implementations).
pub fn encode(h: &Histogram<u64>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut out)?;
    Ok(out)
}

/// Reads a histogram written by [`encode`] (or any V2 / V2 + deflate serializer).
pub fn decode(mut bytes: &[u8]) -> Result<Histogram<u64>, Error> {
    Ok(Deserializer::new().deserialize(&mut bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_round_trips() {
        let mut h = new_histogram(3).unwrap();
        for v in [0, 1, 5, 999, 2048, 65_000, 3_600_000] {
            record(&mut h, v);
        }
        let bytes = encode(&h).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 7);
        assert_eq!(back.value_at_quantile(0.5), 999);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(decode(b"not a histogram"), Err(Error::Deserialize(_))));
        assert!(matches!(decode(b""), Err(Error::Deserialize(_))));
    }

    #[test]
    fn impossible_precision_is_an_error() {
        assert!(matches!(new_histogram(0), Err(Error::Precision(0))));
        assert!(matches!(new_histogram(6), Err(Error::Precision(6))));
    }

    #[test]
    fn three_sigfig_is_exact_below_2048() {
        let mut h = new_histogram(3).unwrap();
        for v in 0..2048 {
            record(&mut h, v);
        }
        assert_eq!(h.value_at_quantile(1.0), 2047);
        assert_eq!(h.value_at_quantile(0.5), 1023);
    }
}
