//! Batched matrix products summed in one order on every x86-64 CPU, as a burn backend
//! extension for burn-flex, with and without autodiff.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::backend_extension;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::DType;

use super::flex::{tensor, values};
use transfer_kernels::{Mat, product};

/// `lhs [R, M, K] x rhs [R, K, N]` with `transfer_kernels::product`'s summation order.
#[backend_extension(Flex, Autodiff)]
pub trait ProductOps: Backend {
    /// Each member's `lhs[r] rhs[r]`: `[R, M, N]`.
    fn fixed_order_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;
}

pub(super) fn matmul(lhs: &Tensor<3>, rhs: &Tensor<3>) -> Option<Tensor<3>> {
    let on_flex = matches!(lhs.device().inner().as_dispatch(), DispatchDevice::Flex(_));
    let [members, _, depth] = lhs.dims();
    let [rhs_members, rhs_depth, _] = rhs.dims();
    let usable = on_flex
        && lhs.dtype() == DType::F32
        && rhs.dtype() == DType::F32
        && members == rhs_members
        && depth == rhs_depth;
    usable.then(|| {
        Tensor::from_dispatch(<Dispatch as ProductOps>::fixed_order_matmul(
            lhs.clone().into_dispatch(),
            rhs.clone().into_dispatch(),
        ))
    })
}

/// The `[m, k] x [k, n]` products of `members` members, one after another: member `r`'s
/// operands are the views `views` makes of its stretches of `lhs_len` and `rhs_len` values.
fn members_product(
    (lhs, rhs): (&[f32], &[f32]),
    [members, m, k, n]: [usize; 4],
    views: impl for<'a> Fn(&'a [f32], &'a [f32]) -> (Mat<'a>, Mat<'a>),
    [lhs_len, rhs_len]: [usize; 2],
) -> Vec<f32> {
    let mut out = Vec::with_capacity(members * m * n);
    for r in 0..members {
        let (left, right) = views(
            &lhs[r * lhs_len..(r + 1) * lhs_len],
            &rhs[r * rhs_len..(r + 1) * rhs_len],
        );
        out.extend(product(left, right, m, k, n));
    }
    out
}

fn run_forward(lhs: &FlexTensor, rhs: &FlexTensor) -> FlexTensor {
    let [members, m, k] = lhs.shape().dims::<3>();
    let n = rhs.shape().dims::<3>()[2];
    let out = members_product(
        (&values(lhs), &values(rhs)),
        [members, m, k, n],
        |l, r| (Mat::rows(l, k), Mat::rows(r, n)),
        [m * k, k * n],
    );
    tensor(out, vec![members, m, n])
}

impl ProductOps for Flex {
    fn fixed_order_matmul(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
        run_forward(&lhs, &rhs)
    }
}

/// What the backward pass reads: both operands.
#[derive(Debug, Clone)]
struct State {
    lhs: FlexTensor,
    rhs: FlexTensor,
}

#[derive(Debug)]
struct MatmulBackward;

impl Backward<Flex, 2> for MatmulBackward {
    type State = State;

    fn backward(self, ops: Ops<State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_lhs, node_rhs] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let State { lhs, rhs } = ops.state;
        let [members, m, k] = lhs.shape().dims::<3>();
        let n = rhs.shape().dims::<3>()[2];
        let (lhs_values, rhs_values, grad) = (values(&lhs), values(&rhs), values(&grad));
        if let Some(node) = node_lhs {
            // grad [M, N] x rhs^T [N, K]
            let d = members_product(
                (&grad, &rhs_values),
                [members, m, n, k],
                |g, r| (Mat::rows(g, n), Mat::cols(r, n)),
                [m * n, k * n],
            );
            grads.register::<Flex>(node.id, tensor(d, vec![members, m, k]));
        }
        if let Some(node) = node_rhs {
            // lhs^T [K, M] x grad [M, N]
            let d = members_product(
                (&lhs_values, &grad),
                [members, k, m, n],
                |l, g| (Mat::cols(l, k), Mat::rows(g, n)),
                [m * k, m * n],
            );
            grads.register::<Flex>(node.id, tensor(d, vec![members, k, n]));
        }
    }
}

impl<C: CheckpointStrategy> ProductOps for Autodiff<Flex, C> {
    fn fixed_order_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        match MatmulBackward
            .prepare::<C>([lhs.node(), rhs.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (lhs, rhs) = (lhs.into_primitive(), rhs.into_primitive());
                let out = run_forward(&lhs, &rhs);
                prep.finish(State { lhs, rhs }, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fixed_order_matmul(
                lhs.into_primitive(),
                rhs.into_primitive(),
            )),
        }
    }
}
