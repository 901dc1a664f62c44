//! Labelled images kept as compact `u8` pixels until a batch is built.

/// A set of same-sized grey-scale images with one label each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// All pixels, image after image, row-major (`len() * rows * cols` bytes).
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// A new set holding the images at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        ImageSet {
            rows: self.rows,
            cols: self.cols,
            pixels,
            labels,
        }
    }

    /// Number of images of each label `0..num_labels` (labels beyond are ignored).
    pub fn label_counts(&self, num_labels: usize) -> Vec<usize> {
        let mut counts = vec![0; num_labels];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// Fills `batch` with the images at `indices`, as f32 in `[0, 1]` (pixel / 255), NCHW
    /// with one channel. The batch's buffers are reused, so a training loop allocates once.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn fill_batch(&self, indices: &[usize], batch: &mut Batch) {
        let n = self.image_len();
        batch.rows = self.rows;
        batch.cols = self.cols;
        batch.images.clear();
        batch.images.reserve(indices.len() * n);
        batch.labels.clear();
        for &i in indices {
            batch
                .images
                .extend(self.image(i).iter().map(|&p| f32::from(p) / 255.0));
            batch.labels.push(self.labels[i]);
        }
    }

    /// The images at `indices` as a new [`Batch`].
    pub fn batch(&self, indices: &[usize]) -> Batch {
        let mut batch = Batch::default();
        self.fill_batch(indices, &mut batch);
        batch
    }
}

/// A batch ready for any tensor library: f32 pixels in NCHW order (C = 1) and labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// `len() * 1 * rows * cols` values in `[0, 1]`.
    pub images: Vec<f32>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Batch {
    /// Number of images in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The NCHW shape `[len, 1, rows, cols]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.len(), 1, self.rows, self.cols]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ImageSet {
        ImageSet {
            rows: 1,
            cols: 2,
            pixels: vec![0, 255, 51, 102, 1, 2],
            labels: vec![3, 1, 0],
        }
    }

    #[test]
    fn batch_is_nchw_scaled() {
        let b = tiny().batch(&[1, 0]);
        assert_eq!(b.shape(), [2, 1, 1, 2]);
        assert_eq!(b.images, [0.2, 0.4, 0.0, 1.0]);
        assert_eq!(b.labels, [1, 3]);
    }

    #[test]
    fn select_and_counts() {
        let s = tiny().select(&[2, 2]);
        assert_eq!(s.pixels, [1, 2, 1, 2]);
        assert_eq!(s.label_counts(4), [2, 0, 0, 0]);
    }
}
