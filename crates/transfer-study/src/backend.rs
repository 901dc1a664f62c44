//! A device and its description, named once by a program and carried into every record.

use burn::prelude::*;
use transfer_records::BackendInfo;

/// A burn device and what every record trained on it says about it: the backend's name
/// (part of the training settings, so runs on different backends are never mixed), the
/// device, what runs the kernels and the thread count. [`Workspace::new`](crate::Workspace::new)
/// takes the settings' backend from here, so a program names its backend once.
#[derive(Debug, Clone)]
pub struct BackendDevice {
    pub(crate) device: Device,
    pub(crate) info: BackendInfo,
}

impl BackendDevice {
    /// `device`, described by `info` (`info.backend` is the name the settings carry).
    pub fn new(device: Device, info: BackendInfo) -> BackendDevice {
        BackendDevice { device, info }
    }

    /// burn-flex on this CPU, with the fused kernels and the one-pass Adam, on every core.
    #[cfg(feature = "flex")]
    pub fn flex() -> BackendDevice {
        BackendDevice::new(
            Device::flex(),
            BackendInfo {
                backend: "flex".into(),
                device: "cpu".into(),
                driver: "burn-flex".into(),
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        )
    }

    /// The device runs train on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Its description.
    pub fn info(&self) -> &BackendInfo {
        &self.info
    }

    /// The backend's name, as the training settings carry it.
    pub fn name(&self) -> &str {
        &self.info.backend
    }
}
