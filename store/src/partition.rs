//! Hive partitions: each row goes to `date=YYYY-MM-DD/hour=HH` of its time, UTC.

use std::path::PathBuf;

use weir_model::time::civil_from_micros;
use weir_model::Micros;

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// One hour of one table: the unit of buffering and of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Hours since the Unix epoch (floor), UTC.
    pub hour: i64,
}

impl Partition {
    /// The partition holding instant `t`.
    pub fn of(t: Micros) -> Partition {
        Partition {
            hour: t.div_euclid(MICROS_PER_HOUR),
        }
    }

    /// The first instant of this partition.
    pub fn start(self) -> Micros {
        self.hour * MICROS_PER_HOUR
    }

    /// The relative folder, `date=2026-11-22/hour=01`.
    pub fn dir(self) -> PathBuf {
        let (y, m, d, h, ..) = civil_from_micros(self.start());
        PathBuf::from(format!("date={y:04}-{m:02}-{d:02}")).join(format!("hour={h:02}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::time::micros_from_civil;

    #[test]
    fn hours_and_folders() {
        let t = micros_from_civil(2026, 11, 22, 1, 22, 6, 958_000);
        let p = Partition::of(t);
        assert_eq!(p.dir(), PathBuf::from("date=2026-11-22/hour=01"));
        assert_eq!(p.start(), micros_from_civil(2026, 11, 22, 1, 0, 0, 0));
        assert_eq!(Partition::of(p.start()), p);
        assert_eq!(
            Partition::of(p.start() - 1).dir(),
            PathBuf::from("date=2026-11-22/hour=00")
        );
        assert_eq!(Partition::of(-1).dir(), PathBuf::from("date=1969-12-31/hour=23"));
    }
}
