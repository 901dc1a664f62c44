//! Adam with each parameter updated in one pass where the device allows it.
//!
//! burn's [`Adam`] updates a parameter with about a dozen tensor operations, each a pass over
//! memory; for the classifier's 800,000-weight layer that took longer on the CPU than the
//! layer's forward and backward passes together. [`OnePassAdam`] computes the same formula
//! (same operations in the same order, so the same numbers to float rounding) in one pass over
//! the parameter, its gradient and both moments, on burn-flex tensors (crate feature `flex`);
//! on every other device, and for tensors it cannot read in place, it calls burn's [`Adam`].
//! Its state is burn's [`AdamState`], so either path can continue the other's.

use burn::optim::{Adam, AdamConfig, AdamState, LearningRate, Optimizer};
use burn::prelude::*;

/// Adam (no weight decay, no AMSGrad) with a one-pass update on burn-flex.
#[derive(Clone)]
pub struct OnePassAdam {
    reference: Adam,
    #[cfg_attr(not(feature = "flex"), allow(dead_code))]
    constants: Constants,
}

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy)]
struct Constants {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
}

impl OnePassAdam {
    /// Adam with these moment decay rates and epsilon.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        OnePassAdam {
            reference: AdamConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .build(),
            constants: Constants {
                beta_1,
                beta_2,
                epsilon,
            },
        }
    }
}

impl Optimizer for OnePassAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        #[cfg(feature = "flex")]
        if flex::applies(&tensor, &grad, state.as_ref()) {
            let (tensor, state) = flex::step(self.constants, lr, tensor, grad, state);
            return (tensor, Some(state));
        }
        self.reference.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

/// One element's update, in burn's order of operations: returns `(param, m, v)`.
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
#[inline(always)]
fn update(c: &Constants, step: &StepFactors, p: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
    let (m, v) = if step.first {
        (g * (1.0 - c.beta_1), g * g * (1.0 - c.beta_2))
    } else {
        (
            m * c.beta_1 + g * (1.0 - c.beta_1),
            v * c.beta_2 + g * g * (1.0 - c.beta_2),
        )
    };
    let direction = (m * step.combined) / (v.sqrt() + c.epsilon * step.correction_2_sqrt);
    (p - direction * step.lr, m, v)
}

/// The per-step factors of Adam's bias correction.
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
struct StepFactors {
    /// No moments yet (they start from this gradient).
    first: bool,
    /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
    combined: f32,
    /// `sqrt(1 - beta_2^t)`.
    correction_2_sqrt: f32,
    /// The learning rate.
    lr: f32,
}

#[cfg_attr(not(feature = "flex"), allow(dead_code))]
impl StepFactors {
    fn new(c: &Constants, time: usize, lr: LearningRate) -> Self {
        let t = time as i32;
        let correction_2_sqrt = (1.0 - c.beta_2.powi(t)).sqrt();
        StepFactors {
            first: time == 1,
            combined: correction_2_sqrt / (1.0 - c.beta_1.powi(t)),
            correction_2_sqrt,
            lr: lr as f32,
        }
    }
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::flex::FlexTensor;
    use burn::backend::{BackendTensor, DispatchTensor, DispatchTensorKind};
    use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate};
    use burn::prelude::*;
    use burn::tensor::DType;
    use rayon::prelude::*;

    use super::{Constants, StepFactors, update};

    /// Values per rayon task.
    const CHUNK: usize = 1 << 14;

    /// Whether every tensor is a contiguous f32 burn-flex tensor of the same length (and the
    /// state has no AMSGrad maximum).
    pub(super) fn applies<const D: usize>(
        tensor: &Tensor<D>,
        grad: &Tensor<D>,
        state: Option<&AdamState<D>>,
    ) -> bool {
        let len = tensor.shape().num_elements();
        let usable = |t: &Tensor<D>| {
            t.shape().num_elements() == len
                && matches!(
                    &t.clone().into_dispatch().kind,
                    DispatchTensorKind::Flex(BackendTensor::Float(f))
                        if f.dtype() == DType::F32 && f.as_slice::<f32>().is_some()
                )
        };
        let moments_usable = match state {
            None => true,
            Some(s) => {
                s.momentum.max_moment_2.is_none()
                    && usable(&s.momentum.moment_1)
                    && usable(&s.momentum.moment_2)
            }
        };
        usable(tensor) && usable(grad) && moments_usable
    }

    /// The one-pass update; the caller checked [`applies`].
    pub(super) fn step<const D: usize>(
        c: Constants,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, AdamState<D>) {
        let device = tensor.device();
        let (time, m, v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1,
                s.momentum.moment_2,
            ),
            // Zeros stand in for the moments of the first step, which ignores them.
            None => (
                1,
                Tensor::zeros(tensor.shape(), &device),
                Tensor::zeros(tensor.shape(), &device),
            ),
        };
        let factors = StepFactors::new(&c, time, lr);
        let (mut p, g, mut m, mut v) = (open(tensor), open(grad), open(m), open(v));
        {
            let grads = slice(&g.1);
            let (params, m1, m2) = (
                slice_mut(&mut p.1),
                slice_mut(&mut m.1),
                slice_mut(&mut v.1),
            );
            params
                .par_chunks_mut(CHUNK)
                .zip(m1.par_chunks_mut(CHUNK))
                .zip(m2.par_chunks_mut(CHUNK))
                .zip(grads.par_chunks(CHUNK))
                .for_each(|(((ps, ms), vs), gs)| {
                    for (((p, m), v), &g) in ps.iter_mut().zip(ms).zip(vs).zip(gs) {
                        (*p, *m, *v) = update(&c, &factors, *p, g, *m, *v);
                    }
                });
        }
        let state = AdamState::new(AdaptiveMomentumState::new(time, close(m), close(v)));
        (close(p), state)
    }

    /// A float tensor's burn-flex primitive, with what rebuilds the tensor around it.
    fn open<const D: usize>(t: Tensor<D>) -> (DispatchTensor, FlexTensor) {
        let mut dispatch = t.into_dispatch();
        let kind = std::mem::replace(&mut dispatch.kind, placeholder());
        match kind {
            DispatchTensorKind::Flex(BackendTensor::Float(f)) => (dispatch, f),
            // The caller checked every tensor with `applies`.
            _ => unreachable!("not a burn-flex float tensor"),
        }
    }

    fn close<const D: usize>((mut dispatch, f): (DispatchTensor, FlexTensor)) -> Tensor<D> {
        dispatch.kind = DispatchTensorKind::Flex(BackendTensor::Float(f));
        Tensor::from_dispatch(dispatch)
    }

    /// An empty stand-in while the primitive is out of its tensor.
    fn placeholder() -> DispatchTensorKind {
        DispatchTensorKind::Flex(BackendTensor::Float(FlexTensor::empty(
            [0].into(),
            DType::F32,
        )))
    }

    fn slice(f: &FlexTensor) -> &[f32] {
        f.as_slice::<f32>().unwrap_or_default()
    }

    /// The tensor's values, made unique first (copied only if shared).
    fn slice_mut(f: &mut FlexTensor) -> &mut [f32] {
        let Some((start, end)) = f.layout().contiguous_offsets() else {
            return &mut [];
        };
        &mut f.storage_mut::<f32>()[start..end]
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::optim::Optimizer;
    use burn::prelude::*;

    use super::*;

    fn tensor(values: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
    }

    fn values(t: &Tensor<1>) -> Vec<f32> {
        t.clone()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default()
    }

    /// Five steps of both paths from the same start: the same parameters and moments, to a
    /// few units in the last place (burn's `square` may round differently from `g * g`).
    #[test]
    fn one_pass_equals_burns_adam() {
        let device = Device::flex();
        let n = 40_000; // more than one rayon chunk
        let start: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0)
            .collect();
        let fast = OnePassAdam::new(0.9, 0.999, 1e-8);
        let reference = AdamConfig::new().with_epsilon(1e-8).build();
        let (mut p_fast, mut p_ref) = (tensor(&start, &device), tensor(&start, &device));
        let (mut s_fast, mut s_ref) = (None, None);
        for step in 0..5 {
            let grad: Vec<f32> = (0..n)
                .map(|i| (((i + 7 * step) * 53 % 97) as f32 - 48.0) / 100.0)
                .collect();
            let g = tensor(&grad, &device);
            (p_fast, s_fast) = fast.step(3e-4, p_fast, g.clone(), s_fast);
            (p_ref, s_ref) = reference.step(3e-4, p_ref, g, s_ref);
            let (a, b) = (s_fast.as_ref().unwrap(), s_ref.as_ref().unwrap());
            assert_eq!(a.momentum.time, b.momentum.time);
            for (name, x, y) in [
                ("param", &p_fast, &p_ref),
                ("moment 1", &a.momentum.moment_1, &b.momentum.moment_1),
                ("moment 2", &a.momentum.moment_2, &b.momentum.moment_2),
            ] {
                for (i, (u, w)) in values(x).iter().zip(values(y)).enumerate() {
                    let tolerance = 4.0 * f32::EPSILON * w.abs().max(f32::MIN_POSITIVE);
                    assert!(
                        (u - w).abs() <= tolerance,
                        "step {step} {name}[{i}]: {u} vs {w}"
                    );
                }
            }
        }
    }

    /// A tensor the one-pass path cannot take (a transposed view) goes through burn's Adam.
    #[test]
    fn strided_tensors_fall_back() {
        let device = Device::flex();
        let data: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let p = Tensor::<2>::from_data(TensorData::new(data, [3, 4]), &device).transpose();
        let g = Tensor::<2>::ones([4, 3], &device);
        let fast = OnePassAdam::new(0.9, 0.999, 1e-8);
        let reference = AdamConfig::new().with_epsilon(1e-8).build();
        let (a, _) = fast.step(1e-3, p.clone(), g.clone(), None);
        let (b, _) = reference.step(1e-3, p, g, None);
        assert_eq!(a.into_data(), b.into_data());
    }
}
