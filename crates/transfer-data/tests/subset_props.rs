//! Property tests of subsetting and sampling.

use proptest::prelude::*;
use transfer_data::{BatchSampler, SubsetRule, SubsetSpec, select_subset, subset_size};

fn labels_strategy() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (2usize..6).prop_flat_map(|k| (prop::collection::vec(0..k as u8, 50..600), Just(k)))
}

proptest! {
    #[test]
    fn subsets_have_the_rule_size_and_valid_sorted_indices(
        (labels, k) in labels_strategy(),
        p in 0.05f64..=1.0,
        batch in 1usize..40,
        seed in any::<u64>(),
        stratified in any::<bool>(),
    ) {
        let rule = if stratified { SubsetRule::Stratified } else { SubsetRule::Prefix };
        match subset_size(rule, labels.len(), p, batch) {
            Err(_) => {
                let spec = SubsetSpec { rule, proportion: p, batch, seed };
                prop_assert!(select_subset(&labels, k, spec).is_err());
            }
            Ok(size) => {
                let spec = SubsetSpec { rule, proportion: p, batch, seed };
                let subset = select_subset(&labels, k, spec).unwrap();
                prop_assert_eq!(subset.len(), size);
                prop_assert!(size >= batch);
                prop_assert!(subset.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(subset.iter().all(|&i| i < labels.len()));
                if rule == SubsetRule::Prefix {
                    prop_assert_eq!(size % batch, 0);
                    prop_assert!(size as f64 <= labels.len() as f64 * p);
                }
            }
        }
    }

    #[test]
    fn stratified_subsets_are_deterministic_and_balanced(
        (labels, k) in labels_strategy(),
        p in 0.1f64..=1.0,
        seed in any::<u64>(),
    ) {
        let a = select_subset(&labels, k, SubsetSpec { rule: SubsetRule::Stratified, proportion: p, batch: 1, seed }).unwrap();
        let b = select_subset(&labels, k, SubsetSpec { rule: SubsetRule::Stratified, proportion: p, batch: 1, seed }).unwrap();
        prop_assert_eq!(&a, &b);
        // Each class gets its share of the subset, within one image of rounding.
        for class in 0..k as u8 {
            let available = labels.iter().filter(|&&l| l == class).count() as f64;
            let taken = a.iter().filter(|&&i| labels[i] == class).count() as f64;
            let expected = a.len() as f64 * available / labels.len() as f64;
            prop_assert!((taken - expected).abs() <= 1.0, "class {} took {} expected {}", class, taken, expected);
        }
    }

    #[test]
    fn samplers_repeat_for_a_seed_and_draw_distinct_members(
        len in 1usize..300,
        batch_frac in 0.01f64..=1.0,
        seed in any::<u64>(),
    ) {
        let batch = ((len as f64 * batch_frac).ceil() as usize).clamp(1, len);
        let mut a = BatchSampler::new(len, batch, seed).unwrap();
        let mut b = BatchSampler::new(len, batch, seed).unwrap();
        for _ in 0..5 {
            let x = a.next_batch().to_vec();
            prop_assert_eq!(&x, &b.next_batch().to_vec());
            let mut sorted = x.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), batch);
            prop_assert!(x.iter().all(|&i| i < len));
        }
    }
}

#[test]
fn different_seeds_give_different_stratified_subsets() {
    let labels: Vec<u8> = (0..1000).map(|i| (i % 4) as u8).collect();
    let a = select_subset(
        &labels,
        4,
        SubsetSpec {
            rule: SubsetRule::Stratified,
            proportion: 0.1,
            batch: 10,
            seed: 1,
        },
    )
    .unwrap();
    let b = select_subset(
        &labels,
        4,
        SubsetSpec {
            rule: SubsetRule::Stratified,
            proportion: 0.1,
            batch: 10,
            seed: 2,
        },
    )
    .unwrap();
    assert_ne!(a, b);
}
