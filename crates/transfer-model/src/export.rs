//! Export to safetensors under PyTorch's names and layouts, through burn-store, so that
//! `torch.nn.Module.load_state_dict(safetensors.torch.load_file(path))` accepts the weights
//! of an equivalent PyTorch model (`conv1`, `conv2`, `fc1`, `head`).

use std::path::Path;

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};

use crate::model::Cnn;

/// Exporting a network failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct SafetensorsError {
    path: String,
    what: String,
}

/// The network's weights as safetensors bytes with PyTorch's names (`conv1.weight`,
/// `conv1.bias`, ..., `head.bias`: burn's `backbone.` and `classifier.` prefixes dropped) and
/// layouts (linear weights `[out, in]`; burn stores `[in, out]`).
pub fn safetensors_bytes(model: &Cnn) -> Result<Vec<u8>, String> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"^(backbone|classifier)\.", "");
    model.save_into(&mut store).map_err(|e| e.to_string())?;
    store.get_bytes().map_err(|e| e.to_string())
}

/// Writes the module's safetensors bytes (PyTorch's names and layouts) to `path` atomically (`transfer_core::write_atomic`: a link
/// at `path` is replaced, never followed).
pub fn to_safetensors(model: &Cnn, path: &Path) -> Result<(), SafetensorsError> {
    let error = |what: String| SafetensorsError {
        path: path.display().to_string(),
        what,
    };
    let bytes = safetensors_bytes(model).map_err(error)?;
    transfer_core::write_atomic(path, &bytes).map_err(|e| error(e.to_string()))
}
