//! Xavier-uniform initialisation from a seeded generator.

use burn::module::Param;
use burn::prelude::*;
use transfer_core::SeededRng;

/// A tensor of `shape` with values uniform in `[-a, a]`, `a = sqrt(6 / (fan_in + fan_out))`
/// (Glorot and Bengio, 2010).
pub fn xavier_uniform<const D: usize>(
    shape: [usize; D],
    fan_in: usize,
    fan_out: usize,
    rng: &mut SeededRng,
    device: &Device,
) -> Param<Tensor<D>> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| (2.0 * unit(rng) - 1.0) * limit).collect();
    Param::from_data(TensorData::new(values, shape), device)
}

/// A value uniform in `[0, 1)`: 24 random bits give every representable f32 step there.
pub(crate) fn unit(rng: &mut SeededRng) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32
}

/// A zero bias of `len` values.
pub fn zeros(len: usize, device: &Device) -> Param<Tensor<1>> {
    Param::from_data(TensorData::new(vec![0f32; len], [len]), device)
}
