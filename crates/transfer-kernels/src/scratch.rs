//! Each worker thread's buffers, kept from call to call and sized by the shapes and method.

use std::cell::RefCell;

use crate::{Geometry, Method, winograd};

/// What sizes a thread's buffers: the shapes but the batch, and the method.
#[derive(Clone, Copy, PartialEq, Eq)]
struct CacheKey(Geometry, Method);

thread_local! {
    static SCRATCH: RefCell<Option<(CacheKey, Scratch)>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's buffers for `method` on shapes `g` (whatever the batch), made when
/// there are none for them yet. Every kernel writes its buffers before reading them, so
/// buffers kept from an earlier call need no zeroing: a training step allocates none. `f` must
/// not start parallel work that could run another call's `f` on this thread.
pub(crate) fn with_scratch<R>(
    g: &Geometry,
    method: Method,
    f: impl FnOnce(&mut Scratch) -> R,
) -> R {
    let key = CacheKey(Geometry { batch: 0, ..*g }, method);
    SCRATCH.with_borrow_mut(|slot| {
        let scratch = match slot {
            Some((k, scratch)) if *k == key => scratch,
            _ => &mut slot.insert((key, Scratch::new(g, method))).1,
        };
        f(scratch)
    })
}

/// One worker thread's buffers for one method, forward and backward.
pub(crate) enum Scratch {
    /// [`Method::Im2col`]'s.
    Im2col(Im2colScratch),
    /// [`Method::Direct`]'s and [`Method::Winograd`]'s.
    Fast(FastScratch),
}

impl Scratch {
    fn new(g: &Geometry, method: Method) -> Self {
        let p = g.pixels();
        let grad_act1 = vec![0.0; p * g.c1];
        if method == Method::Im2col {
            return Scratch::Im2col(Im2colScratch {
                forward: Im2colForward {
                    cols1: vec![0.0; p * g.c0 * g.taps()],
                    act1: vec![0.0; p * g.c1],
                    cols2: vec![0.0; p * g.c1 * g.taps()],
                    act2: vec![0.0; p * g.c2],
                },
                backward: Im2colBackward {
                    cols1: vec![0.0; p * g.c0 * g.taps()],
                    grad_z2_planar: vec![0.0; p * g.c2],
                    cols2: vec![0.0; p * g.c1 * g.taps()],
                    grad_z2: vec![0.0; p * g.c2],
                    grad_cols: vec![0.0; p * g.c2 * g.taps()],
                },
                grad_act1,
            });
        }
        let padded = |channels: usize| {
            vec![0.0; (g.height + g.kernel - 1) * (g.width + g.kernel - 1) * channels]
        };
        let workspace = || match method {
            Method::Winograd => winograd::Workspace::new(g.height, g.width, g.c1.max(g.c2)),
            _ => winograd::Workspace::default(),
        };
        Scratch::Fast(FastScratch {
            forward: FastForward {
                image_padded: padded(g.c0),
                padded: padded(g.c1),
                pooled: vec![0.0; g.pooled_len()],
                workspace: workspace(),
            },
            backward: FastBackward {
                image_padded: padded(g.c0),
                grad_pooled: vec![0.0; g.pooled_len()],
                grad_padded: padded(g.c2),
                grad_act1_padded: padded(g.c1),
                workspace: workspace(),
            },
            winners: vec![0; g.pooled_len()],
            grad_act1,
        })
    }
}

/// The im2col method's buffers.
pub(crate) struct Im2colScratch {
    pub(crate) forward: Im2colForward,
    pub(crate) backward: Im2colBackward,
    /// The gradient of conv1's output, channels last.
    pub(crate) grad_act1: Vec<f32>,
}

/// The im2col method's forward buffers: column matrices and channels-last maps.
pub(crate) struct Im2colForward {
    pub(crate) cols1: Vec<f32>,
    /// conv1's activation when it is not kept.
    pub(crate) act1: Vec<f32>,
    pub(crate) cols2: Vec<f32>,
    pub(crate) act2: Vec<f32>,
}

/// The im2col method's backward buffers.
pub(crate) struct Im2colBackward {
    pub(crate) cols1: Vec<f32>,
    pub(crate) grad_z2_planar: Vec<f32>,
    pub(crate) cols2: Vec<f32>,
    pub(crate) grad_z2: Vec<f32>,
    pub(crate) grad_cols: Vec<f32>,
}

/// The direct and Winograd methods' buffers: zero-bordered channels-last maps.
pub(crate) struct FastScratch {
    pub(crate) forward: FastForward,
    pub(crate) backward: FastBackward,
    /// The pooling windows' winners when they are not kept.
    pub(crate) winners: Vec<u8>,
    /// The gradient of conv1's output, channels last.
    pub(crate) grad_act1: Vec<f32>,
}

/// The direct and Winograd methods' forward buffers.
pub(crate) struct FastForward {
    /// The image, channels last with a zero border.
    pub(crate) image_padded: Vec<f32>,
    /// conv1's activation with a zero border, when it is not kept.
    pub(crate) padded: Vec<f32>,
    /// Pooled values, channels last.
    pub(crate) pooled: Vec<f32>,
    /// Winograd method: conv2's strip buffers.
    pub(crate) workspace: winograd::Workspace,
}

/// The direct and Winograd methods' backward buffers.
pub(crate) struct FastBackward {
    pub(crate) image_padded: Vec<f32>,
    /// The pooled features' gradient where they are positive, channels last.
    pub(crate) grad_pooled: Vec<f32>,
    pub(crate) grad_padded: Vec<f32>,
    pub(crate) grad_act1_padded: Vec<f32>,
    /// Winograd method: conv2's strip buffers.
    pub(crate) workspace: winograd::Workspace,
}
