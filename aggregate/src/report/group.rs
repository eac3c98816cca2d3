//! Grouping: one stats value per distinct combination of [`Dim`] values.
//!
//! The key of a request is its dimension values joined by `\x1f` into a reused buffer, so the
//! per-line cost is one short copy and, when the key differs from the previous line's, one hash
//! lookup (hashbrown's randomly seeded foldhash, several times faster than std's SipHash on these
//! short keys); with no dimensions there is a single group and no key at all.

use hashbrown::HashMap;

use weir_model::{HttpLog, Line};

use super::Dim;
use crate::Error;

const SEP: char = '\x1f';

/// Stats of type `S` per group.
#[derive(Debug, Clone)]
pub(crate) struct Grouped<S> {
    dims: Vec<Dim>,
    /// A fresh, empty `S`, cloned for every new group (boxed: it can be large).
    proto: Box<S>,
    /// Groups in order of first appearance.
    groups: Vec<(String, S)>,
    index: HashMap<String, usize>,
    last: usize,
    key: String,
}

impl<S: Clone> Grouped<S> {
    pub(crate) fn new(dims: Vec<Dim>, proto: S) -> Grouped<S> {
        let mut g = Grouped {
            dims,
            proto: Box::new(proto),
            groups: Vec::new(),
            index: HashMap::new(),
            last: 0,
            key: String::new(),
        };
        if g.dims.is_empty() {
            g.groups.push((String::new(), (*g.proto).clone()));
            g.index.insert(String::new(), 0);
        }
        g
    }

    /// The stats of the group `h` belongs to, created on first sight.
    #[inline]
    pub(crate) fn entry(&mut self, line: &Line<'_>, h: &HttpLog<'_>) -> &mut S {
        if self.dims.is_empty() {
            return &mut self.groups[0].1;
        }
        self.key.clear();
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                self.key.push(SEP);
            }
            self.key.push_str(d.value(line, h));
        }
        if self.groups.get(self.last).is_none_or(|(k, _)| *k != self.key) {
            self.last = match self.index.get(self.key.as_str()) {
                Some(&i) => i,
                None => {
                    self.groups.push((self.key.clone(), (*self.proto).clone()));
                    self.index.insert(self.key.clone(), self.groups.len() - 1);
                    self.groups.len() - 1
                }
            };
        }
        &mut self.groups[self.last].1
    }

    /// Folds `other`'s groups into these with `merge_one`.
    pub(crate) fn merge(
        &mut self,
        other: Grouped<S>,
        mut merge_one: impl FnMut(&mut S, S) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.dims != other.dims {
            return Err(Error::Mismatch {
                left: dims_name(&self.dims),
                right: dims_name(&other.dims),
            });
        }
        for (key, stats) in other.groups {
            match self.index.get(&key) {
                Some(&i) => merge_one(&mut self.groups[i].1, stats)?,
                None => {
                    self.index.insert(key.clone(), self.groups.len());
                    self.groups.push((key, stats));
                }
            }
        }
        Ok(())
    }

    /// The groups as (dimension values, stats), sorted by the values.
    pub(crate) fn sorted(&self) -> Vec<(Vec<String>, &S)> {
        let mut out: Vec<(Vec<String>, &S)> = self
            .groups
            .iter()
            .map(|(k, s)| {
                let vals = if self.dims.is_empty() {
                    Vec::new()
                } else {
                    k.split(SEP).map(String::from).collect()
                };
                (vals, s)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn dims_name(dims: &[Dim]) -> String {
    let names: Vec<_> = dims.iter().map(|d| d.name()).collect();
    format!("grouping by [{}]", names.join(","))
}
