//! Export to safetensors under PyTorch's names and layouts, so that
//! `torch.nn.Module.load_state_dict(safetensors.torch.load_file(path))` accepts the weights
//! of an equivalent PyTorch model (`conv1`, `conv2`, `fc1`, `head`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use burn::prelude::*;

use crate::model::Cnn;

/// Writing a safetensors file failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct SafetensorsError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// Writes the network's weights as safetensors with PyTorch's names
/// (`conv1.weight`, `conv1.bias`, ..., `head.bias`) and layouts (linear weights
/// `[out, in]`, burn stores `[in, out]`). Written to a temporary file and renamed.
pub fn to_safetensors(model: &Cnn, path: &Path) -> Result<(), SafetensorsError> {
    let io = |source| SafetensorsError {
        path: path.display().to_string(),
        source,
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut push = |name: &str, tensor_dims: Vec<usize>, data: Result<TensorData, _>| {
        let values = data
            .map_err(|e| format!("reading it from the device failed: {e}"))
            .and_then(|data: TensorData| {
                data.try_into_vec_as::<f32>().map_err(|e| format!("{e:?}"))
            })
            .map_err(|e| io(std::io::Error::other(format!("{name}: {e}"))))?;
        tensors.push((name.to_owned(), tensor_dims, values));
        Ok(())
    };
    for (name, conv) in [
        ("conv1", &model.backbone.conv1),
        ("conv2", &model.backbone.conv2),
    ] {
        let w = conv.weight.val();
        push(
            &format!("{name}.weight"),
            w.dims().to_vec(),
            w.try_into_data(),
        )?;
        if let Some(b) = &conv.bias {
            let b = b.val();
            push(
                &format!("{name}.bias"),
                b.dims().to_vec(),
                b.try_into_data(),
            )?;
        }
    }
    for (name, linear) in [
        ("fc1", &model.classifier.fc1),
        ("head", &model.classifier.head),
    ] {
        let w = linear.weight.val().transpose();
        push(
            &format!("{name}.weight"),
            w.dims().to_vec(),
            w.try_into_data(),
        )?;
        if let Some(b) = &linear.bias {
            let b = b.val();
            push(
                &format!("{name}.bias"),
                b.dims().to_vec(),
                b.try_into_data(),
            )?;
        }
    }
    let bytes = encode(&tensors);
    let tmp = path.with_extension("safetensors.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The safetensors encoding: an 8-byte little-endian header length, a JSON header mapping
/// each name to its dtype, shape and byte range, then the little-endian data.
fn encode(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = BTreeMap::new();
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        let end = offset + values.len() * 4;
        let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        header.insert(
            name.clone(),
            format!(
                r#"{{"dtype":"F32","shape":[{}],"data_offsets":[{offset},{end}]}}"#,
                shape.join(",")
            ),
        );
        offset = end;
    }
    let entries: Vec<String> = header
        .iter()
        .map(|(k, v)| format!(r#""{k}":{v}"#))
        .collect();
    let mut json = format!("{{{}}}", entries.join(","));
    // Pad the header with spaces to an 8-byte boundary, as the reference writer does.
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    // Data in the order of the header's offsets, which follow `tensors`.
    for (_, _, values) in tensors {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}
