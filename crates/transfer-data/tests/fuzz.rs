//! Arbitrary bytes into every reader of the crate: the IDX parser, the gzip reader and the
//! manifest. Each must answer with a value or an error, never panic, hang, or reserve memory
//! the input's length does not justify.

mod common;

use std::io::Write;

use common::{TempDir, gzip, synthetic};
use proptest::prelude::*;
use transfer_data::{Dataset, Manifest, parse_idx, read_content, write_idx};

/// Bytes that look like IDX often enough to reach past the header checks: a valid header
/// with random dimensions and a random payload, or raw noise.
fn idx_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            1u8..4,
            prop::collection::vec(0u32..40, 3),
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(rank, dims, payload)| {
                let mut bytes = vec![0, 0, 0x08, rank];
                for d in &dims[..usize::from(rank)] {
                    bytes.extend_from_slice(&d.to_be_bytes());
                }
                bytes.extend(payload);
                bytes
            }),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(n, r, c)| {
            // Huge claimed sizes over a tiny body.
            let mut bytes = vec![0, 0, 0x08, 3];
            for d in [n, r, c] {
                bytes.extend_from_slice(&d.to_be_bytes());
            }
            bytes
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn idx_parsing_never_panics_and_returns_what_the_header_says(bytes in idx_like(), rank in 1u8..4) {
        match parse_idx(&bytes, rank) {
            Ok(array) => {
                prop_assert_eq!(array.dims.len(), usize::from(rank));
                prop_assert_eq!(array.data.len(), array.dims.iter().product::<usize>());
                prop_assert_eq!(write_idx(&array.dims, &array.data), bytes);
            }
            Err(what) => prop_assert!(!what.is_empty() && !what.contains('\n')),
        }
    }

    #[test]
    fn gzip_reading_never_panics_nor_inflates_past_the_expected_size(
        body in prop::collection::vec(any::<u8>(), 0..400),
        compress in any::<bool>(),
        truncate in 0usize..64,
        claimed in prop_oneof![Just(u64::MAX), Just(1u64 << 40), 0u64..1000],
    ) {
        let dir = TempDir::new("fuzz-gz");
        let mut bytes = if compress { gzip(&body) } else { body.clone() };
        bytes.truncate(bytes.len().saturating_sub(truncate));
        let path = dir.path().join("x.gz");
        std::fs::write(&path, &bytes).unwrap();
        match read_content(&path, claimed) {
            Ok(content) => {
                prop_assert!(content.len() as u64 <= claimed.saturating_add(1));
                // Deflate expands at most 1032-fold; nothing beyond that was reserved.
                prop_assert!(content.capacity() <= (bytes.len() * 1032).max(2 * content.len() + 64));
            }
            Err(e) => prop_assert!(!e.to_string().contains('\n')),
        }
    }

    #[test]
    fn manifest_files_of_any_content_are_read_or_refused_by_name(
        text in prop_oneof![
            ".{0,200}",
            Just(serde_json::to_string(&Manifest::mnist()).unwrap()),
        ],
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let dir = TempDir::new("fuzz-manifest");
        let mut bytes = text.into_bytes();
        for (at, value) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
        }
        let path = dir.path().join("m.json");
        std::fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
        match Manifest::from_json_file(&path) {
            Ok(manifest) => prop_assert!(manifest.validate().is_ok()),
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains("m.json") && !message.contains('\n'), "{}", message);
            }
        }
    }
}

/// Damaged copies of a small dataset: any byte of any file changed, or the file cut short,
/// is refused by its checksum (or earlier) without a panic.
#[test]
fn every_damaged_dataset_file_is_refused_by_name() {
    let (manifest, files) = synthetic(30, 10, 3);
    let mut cases = 0;
    for (victim, (name, bytes)) in files.iter().enumerate() {
        for (step, gz) in [(7usize, false), (11, true)] {
            for at in (0..bytes.len()).step_by(step) {
                let dir = TempDir::new("fuzz-damaged");
                for (i, (other, content)) in files.iter().enumerate() {
                    let mut content = content.clone();
                    if i == victim {
                        content[at] ^= 0x5a;
                    }
                    let (file, data) = if gz {
                        (format!("{other}.gz"), gzip(&content))
                    } else {
                        (other.clone(), content)
                    };
                    std::fs::write(dir.path().join(file), data).unwrap();
                }
                let err = Dataset::load(dir.path(), &manifest)
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(name.as_str()), "{err}");
                cases += 1;
            }
        }
    }
    assert!(cases > 100, "{cases}");
}
