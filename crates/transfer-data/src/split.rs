//! Class splits: keep some classes of a dataset and relabel them `0..K-1`.

use crate::error::{DataError, Result};
use crate::images::ImageSet;
use crate::load::Dataset;

/// The source task's classes in the study: digits 0-5.
pub const SOURCE_CLASSES: [u8; 6] = [0, 1, 2, 3, 4, 5];
/// The target task's classes in the study: digits 6-9.
pub const TARGET_CLASSES: [u8; 4] = [6, 7, 8, 9];
/// Test images of each digit 0-9 in canonical MNIST (10,000 in all; 3,969 of digits 6-9).
pub const MNIST_TEST_DIGITS: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

/// A classification task cut from a dataset: only the listed classes, relabelled so that
/// `classes[k]` becomes label `k`. Images keep their file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Original labels, in the order that defines the new labels.
    pub classes: Vec<u8>,
    /// Training images of those classes, relabelled.
    pub train: ImageSet,
    /// Test images of those classes, relabelled.
    pub test: ImageSet,
}

impl Task {
    /// Number of classes `K`.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }
}

impl Dataset {
    /// The task made of `classes` (relabelled `0..K-1`, in the given order).
    ///
    /// Fails on an empty list, a repeated class, or a class absent from the training or the
    /// test split (the error names the split's label file).
    pub fn task(&self, classes: &[u8]) -> Result<Task> {
        check_classes(classes, &[])?;
        let files = self.files();
        for (set, file) in [(&self.train, files[1]), (&self.test, files[3])] {
            let present = set.label_counts(256);
            for &c in classes {
                if present[usize::from(c)] == 0 {
                    let listed: Vec<String> = (0..=255u8)
                        .filter(|&l| present[usize::from(l)] > 0)
                        .map(|l| l.to_string())
                        .collect();
                    return Err(DataError::UnknownClass {
                        file: format!("{} ({})", file, self.name()),
                        class: c,
                        present: if listed.is_empty() {
                            "none: the split is empty".to_owned()
                        } else {
                            listed.join(",")
                        },
                    });
                }
            }
        }
        Ok(Task {
            classes: classes.to_vec(),
            train: keep_classes(&self.train, classes),
            test: keep_classes(&self.test, classes),
        })
    }

    /// The source and target tasks of a transfer study, whose class sets must not overlap.
    pub fn transfer_tasks(&self, source: &[u8], target: &[u8]) -> Result<(Task, Task)> {
        check_classes(source, &[])?;
        check_classes(target, source)?;
        Ok((self.task(source)?, self.task(target)?))
    }
}

/// Checks that `classes` is non-empty, has no repeats, and shares nothing with `other`.
pub fn check_classes(classes: &[u8], other: &[u8]) -> Result<()> {
    if classes.is_empty() {
        return Err(DataError::NoClasses);
    }
    for (i, c) in classes.iter().enumerate() {
        if classes[..i].contains(c) || other.contains(c) {
            return Err(DataError::DuplicateClass(*c));
        }
    }
    Ok(())
}

fn keep_classes(set: &ImageSet, classes: &[u8]) -> ImageSet {
    let mut new_label = [u8::MAX; 256];
    for (k, &c) in classes.iter().enumerate() {
        new_label[usize::from(c)] = k as u8;
    }
    let kept: Vec<usize> = (0..set.len())
        .filter(|&i| new_label[usize::from(set.labels[i])] != u8::MAX)
        .collect();
    let mut out = set.select(&kept);
    for l in &mut out.labels {
        *l = new_label[usize::from(*l)];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset() -> Dataset {
        let set = ImageSet {
            rows: 1,
            cols: 1,
            pixels: vec![10, 11, 12, 13, 14, 15],
            labels: vec![7, 0, 9, 0, 6, 3],
        };
        let spec = |name: &str| crate::FileSpec {
            name: name.to_owned(),
            bytes: 0,
            sha256: "0".repeat(64),
        };
        Dataset {
            manifest: crate::Manifest {
                name: "tiny".into(),
                train_images: spec("ti"),
                train_labels: spec("tl"),
                test_images: spec("si"),
                test_labels: spec("sl"),
                mirrors: vec![],
            },
            train: set.clone(),
            test: set,
        }
    }

    #[test]
    fn relabels_in_given_order_and_keeps_file_order() {
        let t = dataset().task(&[9, 7]).unwrap();
        assert_eq!(t.train.labels, [1, 0]);
        assert_eq!(t.train.pixels, [10, 12]);
    }

    #[test]
    fn bad_class_sets_are_refused() {
        let d = dataset();
        assert!(matches!(d.task(&[]), Err(DataError::NoClasses)));
        assert!(matches!(d.task(&[0, 0]), Err(DataError::DuplicateClass(0))));
        assert!(matches!(
            d.task(&[4]),
            Err(DataError::UnknownClass { class: 4, .. })
        ));
        assert!(matches!(
            d.transfer_tasks(&[0, 3], &[3, 6]),
            Err(DataError::DuplicateClass(3))
        ));
        assert!(d.transfer_tasks(&[0, 3], &[6, 7]).is_ok());
    }

    #[test]
    fn a_class_missing_from_the_test_split_is_refused_naming_its_file() {
        let mut d = dataset();
        d.test.labels = vec![7, 0, 7, 0, 6, 3];
        let err = d.task(&[9, 7]).unwrap_err().to_string();
        assert!(
            err.contains("class 9") && err.contains("sl (tiny)"),
            "{err}"
        );
        d.test = ImageSet {
            rows: 1,
            cols: 1,
            pixels: vec![],
            labels: vec![],
        };
        let err = d.task(&[0, 3]).unwrap_err().to_string();
        assert!(err.contains("the split is empty"), "{err}");
    }
}
