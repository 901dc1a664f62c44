//! Proportions of a training set: which images a run may train on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use transfer_core::SeededRng;

/// How a proportion `p` of a training set is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubsetRule {
    /// The first `batch * floor(floor(N * p) / batch)` images in file order, the same for
    /// every repetition (the published study's rule: 100, 200, 2300 and 23900 images of the
    /// 23,983 target images at p = 0.005, 0.01, 0.1, 1 and batch 100).
    #[default]
    Prefix,
    /// `round(N * p)` images drawn afresh for every seed, each class contributing in
    /// proportion to its share of the training set (largest-remainder rounding).
    Stratified,
    /// As many images as [`SubsetRule::Prefix`] takes, drawn afresh for every seed as
    /// [`SubsetRule::Stratified`] draws them: the published counts without the file's order,
    /// so that which images a run sees and how many can be told apart.
    Drawn,
}

impl SubsetRule {
    /// The rule's name as written on the command line and in records.
    pub fn name(self) -> &'static str {
        match self {
            SubsetRule::Prefix => "prefix",
            SubsetRule::Stratified => "stratified",
            SubsetRule::Drawn => "drawn",
        }
    }

    /// Whether the images are drawn at random (so that which ones a run sees can vary).
    pub fn draws(self) -> bool {
        !matches!(self, SubsetRule::Prefix)
    }
}

impl fmt::Display for SubsetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SubsetRule {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "prefix" => Ok(SubsetRule::Prefix),
            "stratified" => Ok(SubsetRule::Stratified),
            "drawn" => Ok(SubsetRule::Drawn),
            other => Err(DataError::UnknownRule(other.to_owned())),
        }
    }
}

/// Number of images the rule keeps out of `available` for proportion `p` and batch size
/// `batch`. Fails when `p` is outside (0, 1] or the subset would hold less than one batch.
pub fn subset_size(rule: SubsetRule, available: usize, p: f64, batch: usize) -> Result<usize> {
    if batch == 0 {
        return Err(DataError::ZeroBatch);
    }
    if !(p > 0.0 && p <= 1.0) {
        return Err(DataError::Proportion(p));
    }
    let share = (available as f64 * p).floor() as usize;
    let size = match rule {
        SubsetRule::Prefix | SubsetRule::Drawn => batch * (share / batch),
        SubsetRule::Stratified => (available as f64 * p).round() as usize,
    };
    if size < batch {
        return Err(DataError::SubsetTooSmall {
            proportion: p,
            available,
            size,
            batch,
        });
    }
    Ok(size)
}

/// Which subset of a training set a run trains on: the rule, the proportion, the batch size
/// (prefix and drawn subsets are whole batches) and the seed (stratified and drawn subsets
/// are drawn afresh for every seed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubsetSpec {
    /// How the images are chosen.
    pub rule: SubsetRule,
    /// The proportion of the training set, in (0, 1].
    pub proportion: f64,
    /// Images per training batch: the subset holds at least one.
    pub batch: usize,
    /// The seed of a draw (unused by [`SubsetRule::Prefix`]).
    pub seed: u64,
}

/// The indices (ascending, into `labels`) of the training images `spec` selects.
///
/// `labels` are the task's labels `0..num_classes`.
pub fn select_subset(labels: &[u8], num_classes: usize, spec: SubsetSpec) -> Result<Vec<usize>> {
    let size = subset_size(spec.rule, labels.len(), spec.proportion, spec.batch)?;
    match spec.rule {
        SubsetRule::Prefix => Ok((0..size).collect()),
        SubsetRule::Stratified | SubsetRule::Drawn => {
            Ok(stratified(labels, num_classes, size, spec.seed))
        }
    }
}

fn stratified(labels: &[u8], num_classes: usize, size: usize, seed: u64) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(members) = by_class.get_mut(usize::from(l)) {
            members.push(i);
        }
    }
    let total: usize = by_class.iter().map(Vec::len).sum();
    // Largest-remainder apportionment of `size` over the classes.
    let exact: Vec<f64> = by_class
        .iter()
        .map(|m| size as f64 * m.len() as f64 / total as f64)
        .collect();
    let mut quota: Vec<usize> = exact.iter().map(|q| q.floor() as usize).collect();
    let mut order: Vec<usize> = (0..num_classes).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut left = size - quota.iter().sum::<usize>();
    for &c in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if quota[c] < by_class[c].len() {
            quota[c] += 1;
            left -= 1;
        }
    }
    let mut rng = SeededRng::stream(seed, 0x5715_7A71_F1ED);
    let mut chosen = Vec::with_capacity(size);
    for (members, &q) in by_class.iter_mut().zip(&quota) {
        // Partial Fisher-Yates: the first q entries become a uniform q-subset.
        for i in 0..q {
            let j = i + rng.below((members.len() - i) as u64) as usize;
            members.swap(i, j);
        }
        chosen.extend_from_slice(&members[..q]);
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_sizes_match_the_report() {
        let sizes: Vec<usize> = [0.005, 0.01, 0.1, 1.0]
            .iter()
            .map(|&p| subset_size(SubsetRule::Prefix, 23_983, p, 100).unwrap())
            .collect();
        assert_eq!(sizes, [100, 200, 2300, 23900]);
    }

    #[test]
    fn stratified_sizes_round() {
        assert_eq!(
            subset_size(SubsetRule::Stratified, 23_983, 0.005, 100).unwrap(),
            120
        );
        assert_eq!(
            subset_size(SubsetRule::Stratified, 23_983, 1.0, 100).unwrap(),
            23_983
        );
    }

    #[test]
    fn drawn_subsets_keep_the_prefix_count_and_every_class_share() {
        // Labels 0..4 in blocks, as a file sorted by class would hold them.
        let labels: Vec<u8> = (0..1000).map(|i| (i * 4 / 1000) as u8).collect();
        let spec = |rule, seed| SubsetSpec {
            rule,
            proportion: 0.13,
            batch: 20,
            seed,
        };
        let prefix = select_subset(&labels, 4, spec(SubsetRule::Prefix, 1)).unwrap();
        let drawn = select_subset(&labels, 4, spec(SubsetRule::Drawn, 1)).unwrap();
        assert_eq!(drawn.len(), prefix.len());
        assert_eq!(drawn.len(), 120);
        // The prefix holds one class; the draw holds each in proportion.
        for class in 0..4u8 {
            let count = drawn.iter().filter(|&&i| labels[i] == class).count();
            assert_eq!(count, 30, "class {class}");
        }
        assert!(drawn.windows(2).all(|w| w[0] < w[1]));
        let again = select_subset(&labels, 4, spec(SubsetRule::Drawn, 1)).unwrap();
        let other = select_subset(&labels, 4, spec(SubsetRule::Drawn, 2)).unwrap();
        assert_eq!(drawn, again);
        assert_ne!(drawn, other);
        assert_eq!("drawn".parse::<SubsetRule>().unwrap(), SubsetRule::Drawn);
        assert!(SubsetRule::Drawn.draws() && SubsetRule::Stratified.draws());
        assert!(!SubsetRule::Prefix.draws());
    }

    #[test]
    fn invalid_requests_are_refused() {
        for p in [0.0, -0.1, 1.01, f64::NAN] {
            assert!(matches!(
                subset_size(SubsetRule::Prefix, 100, p, 10),
                Err(DataError::Proportion(_))
            ));
        }
        assert!(matches!(
            subset_size(SubsetRule::Prefix, 23_983, 0.004, 100),
            Err(DataError::SubsetTooSmall { size: 0, .. })
        ));
        assert!(matches!(
            subset_size(SubsetRule::Prefix, 50, 1.0, 0),
            Err(DataError::ZeroBatch)
        ));
        assert!("random".parse::<SubsetRule>().is_err());
    }
}
