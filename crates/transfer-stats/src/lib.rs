#![doc = include_str!("../README.md")]

pub mod power;
pub mod robust;
pub mod summary;
pub mod variance;

pub use power::{Design, Equivalence, Planning, equivalence, planning};
pub use robust::{Improvement, Interval, difference_interval, improvement, mean_interval, stream};
pub use summary::{Difference, Summary, Welch, holm, paired, summarize, unpaired, welch};
pub use transfer_core::SeededRng;
pub use variance::{
    Decomposition, Spread, binomial_se, decompose, repetitions_for_half_width, spread,
};
