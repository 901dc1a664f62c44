#![doc = include_str!("../README.md")]

mod atomic;
mod hash;
mod rng;

pub use atomic::{write_atomic, write_new_atomic};
pub use hash::sha256_hex;
pub use rng::SeededRng;
