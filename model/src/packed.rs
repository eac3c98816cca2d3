//! Closed window rows packed, for the rows a live server keeps in memory (those waiting for
//! their `windows` file, and the ring of recent rows behind `/api/windows`): every field back
//! to back, integers as LEB128 varints (most are small: counts, milliseconds), strings and
//! lists after their length. A row of a busy series, a hundred buckets across its seven
//! histograms, packs into a few hundred bytes, where the row itself holds kilobytes in its
//! vectors and strings, in fifteen allocations. Rows are unpacked only when they are written
//! or asked for.

use crate::window::{Distribution, StatusClass, WindowKey, WindowRow};
use crate::Micros;

/// A closed row, packed; its window's start kept apart, for the ring's eviction and `since`.
#[derive(Debug, Clone)]
pub struct PackedRow {
    /// The row's `window_start`.
    pub window_start: Micros,
    bytes: Box<[u8]>,
}

impl PackedRow {
    /// Packs `row`.
    pub fn pack(row: &WindowRow) -> PackedRow {
        let mut out = Vec::with_capacity(256);
        uint(&mut out, u64::from(row.window_secs));
        text(&mut out, &row.node);
        text(&mut out, &row.key.frontend);
        text(&mut out, &row.key.backend);
        text(&mut out, &row.key.server);
        out.push(row.key.status_class as u8);
        for n in [row.requests, row.bytes_read, row.errors] {
            uint(&mut out, n);
        }
        for n in row.status_classes {
            uint(&mut out, n);
        }
        uint(&mut out, row.status_counts.len() as u64);
        for &(code, n) in &row.status_counts {
            int(&mut out, i64::from(code));
            uint(&mut out, n);
        }
        uint(&mut out, row.termination_counts.len() as u64);
        for (state, n) in &row.termination_counts {
            text(&mut out, state);
            uint(&mut out, *n);
        }
        for d in &row.distributions {
            uint(&mut out, d.count);
            out.extend_from_slice(&d.mean.to_le_bytes());
            uint(&mut out, d.max);
            uint(&mut out, d.buckets.len() as u64);
            for &(v, n) in &d.buckets {
                uint(&mut out, v);
                uint(&mut out, n);
            }
        }
        PackedRow {
            window_start: row.window_start,
            bytes: out.into_boxed_slice(),
        }
    }

    /// The memory the packed row holds, about: its bytes, its own size and the allocator's
    /// header.
    pub fn weight(&self) -> usize {
        self.bytes.len() + std::mem::size_of::<PackedRow>() + 16
    }

    /// The row's series key, borrowed from the packed bytes (for ordering rows without
    /// unpacking them): frontend, backend, server and status class, compared in that order as
    /// [`WindowKey`] is.
    pub fn key(&self) -> (&str, &str, &str, StatusClass) {
        let mut r = Reader(&self.bytes);
        r.uint();
        r.str();
        let (frontend, backend, server) = (r.str(), r.str(), r.str());
        (frontend, backend, server, class(r.byte()))
    }

    /// The row again, as it was packed.
    pub fn unpack(&self) -> WindowRow {
        let mut r = Reader(&self.bytes);
        let window_secs = r.uint() as u32;
        let node = r.text();
        let key = WindowKey {
            frontend: r.text(),
            backend: r.text(),
            server: r.text(),
            status_class: class(r.byte()),
        };
        let (requests, bytes_read, errors) = (r.uint(), r.uint(), r.uint());
        let status_classes = std::array::from_fn(|_| r.uint());
        let status_counts = (0..r.uint()).map(|_| (r.int() as i32, r.uint())).collect();
        let termination_counts = (0..r.uint()).map(|_| (r.text(), r.uint())).collect();
        let distributions = std::array::from_fn(|_| {
            let count = r.uint();
            let mean = f64::from_le_bytes(r.take(8).try_into().unwrap_or_default());
            let max = r.uint();
            let buckets = (0..r.uint()).map(|_| (r.uint(), r.uint())).collect();
            Distribution {
                count,
                mean,
                max,
                buckets,
            }
        });
        WindowRow {
            window_start: self.window_start,
            window_secs,
            node,
            key,
            requests,
            bytes_read,
            errors,
            status_classes,
            status_counts,
            termination_counts,
            distributions,
        }
    }
}

fn class(b: u8) -> StatusClass {
    StatusClass::ALL[usize::from(b).min(StatusClass::ALL.len() - 1)]
}

fn uint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Zigzag, so that small negative numbers stay short.
fn int(out: &mut Vec<u8>, n: i64) {
    uint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn text(out: &mut Vec<u8>, s: &str) {
    uint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads what [`PackedRow::pack`] wrote. The bytes are the packer's own, so they are always
/// whole; were they not, what is missing reads as zeros and empty strings.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn uint(&mut self) -> u64 {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte();
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        n
    }

    fn int(&mut self) -> i64 {
        let n = self.uint();
        ((n >> 1) as i64) ^ -((n & 1) as i64)
    }

    fn str(&mut self) -> &'a str {
        let n = self.uint() as usize;
        std::str::from_utf8(self.take(n)).unwrap_or_default()
    }

    fn text(&mut self) -> String {
        self.str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn row(
        start: Micros,
        numbers: [u64; 4],
        names: [String; 4],
        codes: Vec<(i32, u64)>,
        buckets: Vec<(u64, u64)>,
        mean: f64,
    ) -> WindowRow {
        let [a, b, c, d] = numbers;
        let [node, fe, be, state] = names;
        WindowRow {
            window_start: start,
            window_secs: a as u32,
            node,
            key: WindowKey {
                frontend: fe,
                backend: be.clone(),
                server: be,
                status_class: StatusClass::ALL[(b % 6) as usize],
            },
            requests: a,
            bytes_read: b,
            errors: c,
            status_classes: [a, b, c, d, 0, u64::MAX],
            status_counts: codes,
            termination_counts: vec![(state, d), (String::new(), 0)],
            distributions: std::array::from_fn(|k| Distribution {
                count: a.wrapping_add(k as u64),
                mean: mean * k as f64,
                max: d,
                buckets: buckets.iter().skip(k).copied().collect(),
            }),
        }
    }

    proptest! {
        #[test]
        fn a_packed_row_unpacks_to_itself(
            start in any::<i64>(),
            numbers in any::<[u64; 4]>(),
            names in any::<[String; 4]>(),
            codes in proptest::collection::vec((any::<i32>(), any::<u64>()), 0..5),
            buckets in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..40),
            mean in -1e18f64..1e18,
        ) {
            let r = row(start, numbers, names, codes, buckets, mean);
            let packed = PackedRow::pack(&r);
            let k = &r.key;
            prop_assert_eq!(
                packed.key(),
                (k.frontend.as_str(), k.backend.as_str(), k.server.as_str(), k.status_class)
            );
            prop_assert_eq!(packed.unpack(), r);
        }
    }

    #[test]
    fn a_busy_series_row_packs_small() {
        let buckets: Vec<(u64, u64)> = (0..100).map(|k| (k * 3, 1 + k % 4)).collect();
        let names = ["lb1".into(), "fe_https".into(), "be_api".into(), "----".into()];
        let r = row(
            0,
            [10, 123_456, 2, 97],
            names,
            vec![(-1, 1), (200, 97)],
            buckets,
            12.5,
        );
        let packed = PackedRow::pack(&r);
        assert_eq!(packed.unpack(), r);
        // The row's bucket vectors alone hold 16 bytes a bucket: 10.9 KB for these 679.
        assert!(packed.weight() < 3 * 1024, "{} bytes", packed.weight());
    }
}
