//! The classifier's linear layers on burn-flex: products summed in
//! `transfer_kernels::product`'s order, so every instruction set gives the same bits, and
//! those of burn's own linear layer where gemm runs its AVX-512 kernels.

use burn::module::Module;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::relu;
use transfer_core::SeededRng;
use transfer_kernels::{Isa, Mat, product_reference};
use transfer_model::{Classifier, CnnConfig};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn features(n: usize, len: usize, device: &Device) -> Tensor<2> {
    let mut rng = SeededRng::new(17);
    let v: Vec<f32> = (0..n * len)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
        .collect();
    Tensor::from_data(TensorData::new(v, [n, len]), device)
}

/// Logits and the gradients of `sum(logits * probe)` for every parameter and the features,
/// through `Classifier::forward` (`ours`) or burn's `Linear::forward`.
fn logits_and_gradients(classifier: &Classifier, batch: usize, ours: bool) -> Vec<Vec<f32>> {
    let ad = Device::flex().autodiff();
    let classifier = classifier.clone().fork(&ad).train();
    let len = classifier.fc1.weight.dims()[0];
    let x = features(batch, len, &ad).require_grad();
    let logits = if ours {
        classifier.forward(x.clone())
    } else {
        classifier
            .head
            .forward(relu(classifier.fc1.forward(x.clone())))
    };
    let [n, k] = logits.dims();
    let mut rng = SeededRng::new(3);
    let probe: Vec<f32> = (0..n * k)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        .collect();
    let probe = Tensor::<2>::from_data(TensorData::new(probe, [n, k]), &ad);
    let grads = (logits.clone() * probe).sum().backward();
    let weight = |l: &Linear| values(l.weight.val().grad(&grads).expect("a gradient"));
    let bias = |l: &Linear| {
        let b = l.bias.as_ref().expect("a bias").val();
        values(b.grad(&grads).expect("a gradient"))
    };
    vec![
        values(logits),
        weight(&classifier.fc1),
        bias(&classifier.fc1),
        weight(&classifier.head),
        bias(&classifier.head),
        values(x.grad(&grads).expect("a gradient")),
    ]
}

fn same_bits(a: &[Vec<f32>], b: &[Vec<f32>]) -> bool {
    a.iter().zip(b).all(|(x, y)| {
        x.iter()
            .map(|v| v.to_bits())
            .eq(y.iter().map(|v| v.to_bits()))
    })
}

/// The study's classifier, its evaluation chunks' sizes (100 and the last 69 of the target
/// test set) and a batch under gemm's 64-row threshold.
///
/// One test, so that nothing else in this binary runs while it changes `Isa::prefer`.
#[test]
fn every_instruction_set_gives_the_same_bits_and_burns_with_gemms_avx512_kernels() {
    fc1_sums_in_the_reference_order();
    let classifier = CnnConfig::new(4).init(&Device::flex(), 11).classifier;
    for batch in [100, 69, 31] {
        let each: Vec<_> = Isa::all()
            .into_iter()
            .map(|isa| {
                Isa::prefer(Some(isa));
                let got = logits_and_gradients(&classifier, batch, true);
                Isa::prefer(None);
                (isa, got)
            })
            .collect();
        for (isa, got) in &each[1..] {
            assert!(same_bits(got, &each[0].1), "{isa:?} batch {batch}");
        }
        if Isa::of_products() == Some(Isa::Avx512) {
            let burn = logits_and_gradients(&classifier, batch, false);
            for (isa, got) in &each {
                assert!(same_bits(got, &burn), "{isa:?} vs burn's, batch {batch}");
            }
        }
    }
}

/// On any CPU with AVX2 or AVX-512 (gemm's AVX-512 kernels need not be there), fc1 is the
/// reference order plus the bias.
fn fc1_sums_in_the_reference_order() {
    if Isa::best().is_none() {
        return;
    }
    let device = Device::flex();
    let fc1 = CnnConfig::new(4).init(&device, 12).classifier.fc1;
    let [k, n] = fc1.weight.dims();
    let m = 100;
    let x = features(m, k, &device);
    let got = values(transfer_model::fused::linear(&fc1, x.clone()));
    let (xv, wv) = (values(x), values(fc1.weight.val()));
    let bias = values(fc1.bias.as_ref().expect("a bias").val());
    let product = product_reference(Mat::rows(&xv, k), Mat::rows(&wv, n), m, k, n);
    let want: Vec<f32> = product
        .iter()
        .enumerate()
        .map(|(i, v)| v + bias[i % n])
        .collect();
    assert!(
        got.iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}
