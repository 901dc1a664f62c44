//! The fused backbone as a burn backend extension for burn-flex, with and without autodiff.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::backend_extension;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, Flex, TensorMetadata};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::DType;

use crate::Backbone;
use transfer_kernels::{self as kernels, Geometry, Saved, Weights};

/// The backbone's layers as one operation: conv1 -> ReLU -> conv2 -> ReLU -> 2x2 max-pool,
/// both convolutions stride 1 with "same" padding.
#[backend_extension(Flex, Autodiff)]
pub trait BackboneOps: Backend {
    /// Pooled features `[N, c2, H/2, W/2]` of images `[N, c0, H, W]`.
    fn fused_backbone(
        images: FloatTensor<Self>,
        w1: FloatTensor<Self>,
        b1: FloatTensor<Self>,
        w2: FloatTensor<Self>,
        b2: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

pub(super) fn forward(backbone: &Backbone, images: &Tensor<4>) -> Option<Tensor<4>> {
    let (conv1, conv2, pool) = (&backbone.conv1, &backbone.conv2, &backbone.pool);
    let on_flex = matches!(
        images.device().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    );
    let plain_conv = |c: &burn::nn::conv::Conv2d| {
        let r = c.kernel_size[0] / 2;
        let same = match c.padding {
            PaddingConfig2d::Same => true,
            PaddingConfig2d::Explicit(top, left, bottom, right) => {
                [top, left, bottom, right] == [r; 4]
            }
            PaddingConfig2d::Valid => false,
        };
        same && c.stride == [1, 1]
            && c.dilation == [1, 1]
            && c.groups == 1
            && c.kernel_size[0] == c.kernel_size[1]
            && c.bias.is_some()
            && c.weight.val().dtype() == DType::F32
    };
    let plain_pool = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && pool.padding == PaddingConfig2d::Valid
        && !pool.ceil_mode;
    let [n, c0, h, w] = images.dims();
    let geometry = Geometry {
        batch: n,
        c0,
        c1: conv1.weight.dims()[0],
        c2: conv2.weight.dims()[0],
        height: h,
        width: w,
        kernel: conv1.kernel_size[0],
    };
    let usable = on_flex
        && images.dtype() == DType::F32
        && plain_conv(conv1)
        && plain_conv(conv2)
        && conv2.kernel_size == conv1.kernel_size
        && conv1.weight.dims()[1] == c0
        && conv2.weight.dims()[1] == geometry.c1
        && plain_pool
        && geometry.supported();
    let (Some(b1), Some(b2)) = (&conv1.bias, &conv2.bias) else {
        return None;
    };
    if !usable {
        return None;
    }
    let out = <Dispatch as BackboneOps>::fused_backbone(
        images.clone().into_dispatch(),
        conv1.weight.val().into_dispatch(),
        b1.val().into_dispatch(),
        conv2.weight.val().into_dispatch(),
        b2.val().into_dispatch(),
    );
    Some(Tensor::from_dispatch(out))
}

/// Contiguous f32 values of a flex tensor (a copy only when it is not contiguous already).
pub(super) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(v) => std::borrow::Cow::Borrowed(v),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .map(<[f32]>::to_vec)
                .unwrap_or_default(),
        ),
    }
}

fn geometry(images: &FlexTensor, w1: &FlexTensor, w2: &FlexTensor) -> Geometry {
    let [batch, c0, height, width] = images.shape().dims::<4>();
    let [c1, _, kernel, _] = w1.shape().dims::<4>();
    Geometry {
        batch,
        c0,
        c1,
        c2: w2.shape().dims::<4>()[0],
        height,
        width,
        kernel,
    }
}

/// A flex tensor of `shape` holding `values`.
pub(super) fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Runs the forward kernel on flex tensors; keeps what the backward pass needs when `save`.
fn run_forward(
    images: &FlexTensor,
    w1: &FlexTensor,
    b1: &FlexTensor,
    w2: &FlexTensor,
    b2: &FlexTensor,
    save: bool,
) -> (FlexTensor, Saved) {
    let g = geometry(images, w1, w2);
    let (x, w1v, b1v, w2v, b2v) = (
        values(images),
        values(w1),
        values(b1),
        values(w2),
        values(b2),
    );
    let weights = Weights {
        w1: &w1v,
        b1: &b1v,
        w2: &w2v,
        b2: &b2v,
    };
    let shape = vec![g.batch, g.c2, g.height / 2, g.width / 2];
    if save {
        let (pooled, saved) = kernels::forward_saving(&g, &x, weights);
        (tensor(pooled, shape), saved)
    } else {
        (
            tensor(kernels::forward(&g, &x, weights), shape),
            Saved::default(),
        )
    }
}

impl BackboneOps for Flex {
    fn fused_backbone(
        images: FlexTensor,
        w1: FlexTensor,
        b1: FlexTensor,
        w2: FlexTensor,
        b2: FlexTensor,
    ) -> FlexTensor {
        run_forward(&images, &w1, &b1, &w2, &b2, false).0
    }
}

/// What the backward pass of the fused node reads.
#[derive(Debug, Clone)]
struct State {
    images: FlexTensor,
    w1: FlexTensor,
    b1: FlexTensor,
    w2: FlexTensor,
    b2: FlexTensor,
    pooled: FlexTensor,
    saved: Arc<Saved>,
}

#[derive(Debug)]
struct FusedBackboneBackward;

impl Backward<Flex, 5> for FusedBackboneBackward {
    type State = State;

    fn backward(self, ops: Ops<State, 5>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_w1, node_b1, node_w2, node_b2] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let g = geometry(&s.images, &s.w1, &s.w2);
        let (x, w1, b1, w2, b2) = (
            values(&s.images),
            values(&s.w1),
            values(&s.b1),
            values(&s.w2),
            values(&s.b2),
        );
        let weights = Weights {
            w1: &w1,
            b1: &b1,
            w2: &w2,
            b2: &b2,
        };
        let out = kernels::backward(
            &g,
            &x,
            weights,
            &values(&s.pooled),
            &s.saved,
            &values(&grad),
            node_x.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, out.input) {
            grads.register::<Flex>(node.id, tensor(dx, s.images.shape().to_vec()));
        }
        let params = [
            (node_w1, out.w1, &s.w1),
            (node_b1, out.b1, &s.b1),
            (node_w2, out.w2, &s.w2),
            (node_b2, out.b2, &s.b2),
        ];
        for (node, grad, param) in params {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, tensor(grad, param.shape().to_vec()));
            }
        }
    }
}

impl<C: CheckpointStrategy> BackboneOps for Autodiff<Flex, C> {
    fn fused_backbone(
        images: FloatTensor<Self>,
        w1: FloatTensor<Self>,
        b1: FloatTensor<Self>,
        w2: FloatTensor<Self>,
        b2: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match FusedBackboneBackward
            .prepare::<C>([images.node(), w1.node(), b1.node(), w2.node(), b2.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let [x, w1, b1, w2, b2] = [images, w1, b1, w2, b2].map(|t| t.into_primitive());
                let (pooled, saved) = run_forward(&x, &w1, &b1, &w2, &b2, true);
                let state = State {
                    images: x,
                    w1,
                    b1,
                    w2,
                    b2,
                    pooled: pooled.clone(),
                    saved: Arc::new(saved),
                };
                prep.finish(state, pooled)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fused_backbone(
                images.into_primitive(),
                w1.into_primitive(),
                b1.into_primitive(),
                w2.into_primitive(),
                b2.into_primitive(),
            )),
        }
    }
}
