//! The batch sampler of the study: every iteration draws `batch` distinct images uniformly
//! at random from the training subset, independently of every other iteration.

use crate::error::{DataError, Result};
use transfer_core::SeededRng;

/// Draws batches of distinct positions `0..subset_len`, reproducibly for a seed.
///
/// Each draw is a partial Fisher-Yates shuffle of a persistent permutation, which gives a
/// uniformly random `batch`-subset whatever the permutation's current order, in
/// `O(batch)` time. When `batch` equals the subset size (the study's p = 0.005 has exactly
/// 100 images at batch 100) every batch holds the whole subset, in a fresh random order,
/// as the published script's sampling without replacement does.
#[derive(Debug, Clone)]
pub struct BatchSampler {
    permutation: Vec<usize>,
    batch: usize,
    rng: SeededRng,
}

impl BatchSampler {
    /// A sampler over `subset_len` positions. Fails when `batch` is zero or larger than the
    /// subset.
    pub fn new(subset_len: usize, batch: usize, seed: u64) -> Result<Self> {
        if batch == 0 {
            return Err(DataError::ZeroBatch);
        }
        if batch > subset_len {
            return Err(DataError::SubsetTooSmall {
                proportion: 1.0,
                available: subset_len,
                size: subset_len,
                batch,
            });
        }
        Ok(BatchSampler {
            permutation: (0..subset_len).collect(),
            batch,
            rng: SeededRng::stream(seed, 0x0BA7_C4E5),
        })
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// The next batch: `batch` distinct positions into the subset.
    pub fn next_batch(&mut self) -> &[usize] {
        let n = self.permutation.len();
        for i in 0..self.batch {
            let j = i + self.rng.below((n - i) as u64) as usize;
            self.permutation.swap(i, j);
        }
        &self.permutation[..self.batch]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_distinct_and_in_range() {
        let mut s = BatchSampler::new(30, 10, 1).unwrap();
        for _ in 0..50 {
            let mut b = s.next_batch().to_vec();
            assert!(b.iter().all(|&i| i < 30));
            b.sort_unstable();
            b.dedup();
            assert_eq!(b.len(), 10);
        }
    }

    #[test]
    fn whole_subset_batch_covers_everything() {
        let mut s = BatchSampler::new(5, 5, 3).unwrap();
        let mut b = s.next_batch().to_vec();
        b.sort_unstable();
        assert_eq!(b, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn every_position_is_drawn_evenly() {
        let mut s = BatchSampler::new(20, 5, 9).unwrap();
        let mut counts = [0u32; 20];
        for _ in 0..4000 {
            for &i in s.next_batch() {
                counts[i] += 1;
            }
        }
        // Expected 1000 each; 4 standard deviations is about +-110.
        assert!(
            counts.iter().all(|&c| (880..1120).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn too_large_batches_are_refused() {
        assert!(BatchSampler::new(5, 6, 0).is_err());
        assert!(BatchSampler::new(5, 0, 0).is_err());
    }
}
