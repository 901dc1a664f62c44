//! Dropout masks drawn from the run's own seeded stream.

use burn::prelude::*;
use transfer_data::SeededRng;
use transfer_model::{Classifier, DropoutMasks};

/// Draws keep/drop decisions for a batch: `batch * features` on the flattened features
/// and `batch * hidden` on fc1's output, each kept with probability `1 - drop`.
pub fn draw_masks(
    rng: &mut SeededRng,
    batch: usize,
    features: usize,
    hidden: usize,
    drop: f64,
    device: &Device,
) -> DropoutMasks {
    let mut keep_features = Vec::new();
    let mut keep_hidden = Vec::new();
    draw_keep(
        rng,
        batch,
        [features, hidden],
        drop,
        [&mut keep_features, &mut keep_hidden],
    );
    DropoutMasks::from_keep(&keep_features, &keep_hidden, batch, drop, device)
}

/// Appends one batch's keep decisions to `keep`: `batch * widths[0]` for the features, then
/// `batch * widths[1]` for fc1's output, in the order [`draw_masks`] draws them.
pub(crate) fn draw_keep(
    rng: &mut SeededRng,
    batch: usize,
    widths: [usize; 2],
    drop: f64,
    keep: [&mut Vec<bool>; 2],
) {
    // Compare 24 random bits against the keep threshold: exact for any drop probability
    // that is a multiple of 2^-24, such as 0.5.
    let threshold = ((1.0 - drop) * f64::from(1u32 << 24)).round() as u64;
    for (width, keep) in widths.into_iter().zip(keep) {
        keep.extend((0..batch * width).map(|_| (rng.next_u64() >> 40) < threshold));
    }
}

/// The classifier's logits for `features`, through fresh dropout masks when `drop > 0`.
/// Training the whole network and training on cached features both go through here, so
/// the two paths draw the same masks from the same stream.
pub fn classify(
    classifier: &Classifier,
    features: Tensor<2>,
    drop: f64,
    rng: &mut SeededRng,
    device: &Device,
) -> Tensor<2> {
    if drop > 0.0 {
        let [batch, feature_len] = features.dims();
        let hidden = classifier.fc1.weight.shape().dims::<2>()[1];
        let masks = draw_masks(rng, batch, feature_len, hidden, drop, device);
        classifier.forward_masked(features, &masks)
    } else {
        classifier.forward(features)
    }
}
