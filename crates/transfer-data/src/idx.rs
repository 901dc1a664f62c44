//! The IDX file format (LeCun et al.): a 4-byte magic number, big-endian u32 dimensions,
//! then the data. Only unsigned-byte data (type code 0x08) is accepted.

/// A parsed IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Parses IDX bytes of the given rank. Every size is checked against `bytes.len()` before
/// anything is allocated, so a header claiming 2^31 images fails at once.
///
/// The error is a sentence without the file name; callers add it.
pub fn parse_idx(bytes: &[u8], rank: u8) -> Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "file holds {} bytes, too short for an IDX header",
            bytes.len()
        ));
    }
    let magic = &bytes[..4];
    if magic[0] != 0 || magic[1] != 0 {
        return Err(format!(
            "wrong magic number 0x{:02x}{:02x}{:02x}{:02x} (an IDX file starts with two zero bytes)",
            magic[0], magic[1], magic[2], magic[3]
        ));
    }
    if magic[2] != 0x08 {
        return Err(format!(
            "data type 0x{:02x} is not unsigned bytes (0x08)",
            magic[2]
        ));
    }
    if magic[3] != rank {
        return Err(format!(
            "wrong magic number: {} dimensions where {} were expected (images have 3, labels 1)",
            magic[3], rank
        ));
    }
    let header_len = 4 + 4 * usize::from(rank);
    if bytes.len() < header_len {
        return Err(format!(
            "file holds {} bytes, shorter than its {}-byte header",
            bytes.len(),
            header_len
        ));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let payload = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("header dimensions {dims:?} overflow"))?;
    let available = bytes.len() - header_len;
    if payload != available {
        return Err(format!(
            "header promises {dims:?} = {payload} bytes of data but the file holds {available}"
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header_len..].to_vec(),
    })
}

/// Writes an IDX array of unsigned bytes (the inverse of [`parse_idx`]).
pub fn write_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, 0x08, dims.len() as u8]);
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data: Vec<u8> = (0..2 * 3 * 4).map(|v| v as u8).collect();
        let bytes = write_idx(&[2, 3, 4], &data);
        let parsed = parse_idx(&bytes, 3).unwrap();
        assert_eq!(parsed.dims, [2, 3, 4]);
        assert_eq!(parsed.data, data);
    }

    #[test]
    fn huge_header_is_refused_without_allocating() {
        let mut bytes = write_idx(&[0, 28, 28], &[]);
        bytes[4..8].copy_from_slice(&(1u32 << 31).to_be_bytes());
        let err = parse_idx(&bytes, 3).unwrap_err();
        assert!(err.contains("header promises"), "{err}");
    }

    #[test]
    fn overflowing_header_is_refused() {
        let mut bytes = write_idx(&[1, 1, 1], &[0]);
        for d in 0..3 {
            bytes[4 + 4 * d..8 + 4 * d].copy_from_slice(&u32::MAX.to_be_bytes());
        }
        let err = parse_idx(&bytes, 3).unwrap_err();
        assert!(
            err.contains("overflow") || err.contains("promises"),
            "{err}"
        );
    }

    #[test]
    fn wrong_magic_and_rank_are_refused() {
        let bytes = write_idx(&[3], &[1, 2, 3]);
        assert!(parse_idx(&bytes, 3).unwrap_err().contains("dimensions"));
        let mut bad = bytes.clone();
        bad[0] = 0x1f;
        assert!(parse_idx(&bad, 1).unwrap_err().contains("magic"));
        let mut float = bytes;
        float[2] = 0x0d;
        assert!(parse_idx(&float, 1).unwrap_err().contains("data type"));
        assert!(parse_idx(&[0, 0], 1).unwrap_err().contains("too short"));
    }

    #[test]
    fn truncated_data_is_refused() {
        let bytes = write_idx(&[4], &[1, 2, 3, 4]);
        let err = parse_idx(&bytes[..bytes.len() - 1], 1).unwrap_err();
        assert!(err.contains("holds 3"), "{err}");
    }
}
