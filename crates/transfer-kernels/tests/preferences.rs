//! The process-wide preferences of method and instruction set. They live in a test binary of
//! their own: every kernel call reads them, so no other test may run while they change.

use transfer_kernels::{Geometry, Isa, Method};

#[test]
fn preferred_methods_and_instruction_sets_are_used_where_available() {
    let study = Geometry {
        batch: 1,
        c0: 1,
        c1: 32,
        c2: 32,
        height: 28,
        width: 28,
        kernel: 3,
    };
    for isa in Isa::all() {
        Isa::prefer(Some(isa));
        assert_eq!(Isa::chosen(), Some(isa));
        for method in Method::all(&study) {
            Method::prefer(Some(method));
            assert_eq!(Method::chosen(&study), method);
        }
    }
    Isa::prefer(None);
    assert_eq!(Isa::chosen(), Isa::best());

    // Not available for 4 channels: the fastest method that is.
    let narrow = Geometry {
        c1: 3,
        c2: 4,
        ..study
    };
    Method::prefer(Some(Method::Direct));
    assert_eq!(Method::chosen(&narrow), Method::Im2col);
    Method::prefer(None);
    assert_eq!(Method::chosen(&study), Method::best(&study));
}
