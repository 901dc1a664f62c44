//! The one place that names concrete burn backends.
//!
//! Each backend is a Cargo feature of this crate (`flex`, the default, `ndarray`, `wgpu`,
//! `cuda`). Asking for one that this binary was built without re-runs the command through
//! `cargo run --release --features NAME`, so the user never edits a manifest.

use std::process::Command;

use burn::prelude::*;
use clap::ValueEnum;
use transfer_records::BackendInfo;

use crate::error::{Result, XtaskError};

/// A burn backend the study can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// burn-flex: pure-Rust CPU backend (the default, measured fastest on CPU).
    Flex,
    /// burn-ndarray: the older CPU backend (deprecated by burn 0.22).
    Ndarray,
    /// burn-wgpu: GPUs through Vulkan, Metal, DX12 or WebGPU.
    Wgpu,
    /// burn-cuda: NVIDIA GPUs through CUDA.
    Cuda,
}

impl Backend {
    /// The name used on the command line, in features and in records.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether the backend computes on the CPU.
    pub fn on_cpu(self) -> bool {
        matches!(self, Backend::Flex | Backend::Ndarray)
    }

    /// Whether this binary was built with the backend's feature.
    pub fn compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The default backend of this build: flex when present, else the first compiled one.
    pub fn default_compiled() -> Backend {
        [
            Backend::Flex,
            Backend::Ndarray,
            Backend::Wgpu,
            Backend::Cuda,
        ]
        .into_iter()
        .find(|b| b.compiled())
        .unwrap_or(Backend::Flex)
    }

    /// The device, checked to work by running one small operation on it.
    pub fn device(self) -> Result<(Device, BackendInfo)> {
        if !self.compiled() {
            return Err(XtaskError::Backend(format!(
                "this binary was built without the '{}' backend; run it through `cargo xtask`, or build with `--features {}`",
                self.name(),
                self.name()
            )));
        }
        let device = self.make_device();
        let probe = device.clone();
        let started = std::panic::catch_unwind(move || {
            let x = Tensor::<2>::ones([2, 2], &probe);
            x.sum().into_data().try_into_vec_as::<f32>().ok()
        });
        match started {
            Ok(Some(v)) if v.first() == Some(&4.0) => {}
            Ok(_) => {
                return Err(XtaskError::Backend(format!(
                    "backend '{}' started but computed a wrong value; use --backend flex",
                    self.name()
                )));
            }
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown reason".into());
                let reason = reason.lines().next().unwrap_or("").to_owned();
                return Err(XtaskError::Backend(format!(
                    "backend '{}' could not start ({reason}); is a GPU and its driver present? The CPU backend works everywhere: --backend flex",
                    self.name()
                )));
            }
        }
        let (name, driver) = describe_device(self, &device);
        let info = BackendInfo {
            backend: self.name().to_owned(),
            device: name,
            driver,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok((device, info))
    }

    #[allow(unreachable_code, deprecated)]
    fn make_device(self) -> Device {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Device::cuda(0),
            #[allow(unreachable_patterns)]
            _ => Device::default(),
        }
    }
}

/// The device's name and what runs the kernels: for the CPU backends the processor and the
/// backend's kernels, for GPUs the name the runtime reports and what it compiles kernels for.
fn describe_device(backend: Backend, device: &Device) -> (String, String) {
    match backend {
        Backend::Flex => (crate::hardware::cpu_model(), flex_kernels()),
        Backend::Ndarray => (crate::hardware::cpu_model(), "burn-ndarray".into()),
        Backend::Wgpu | Backend::Cuda => gpu_identity(device),
    }
}

/// burn-flex, and the fused backbone's method and instruction set for the study's model.
fn flex_kernels() -> String {
    #[cfg(feature = "flex")]
    {
        use transfer_model::fused::kernels::{Geometry, Isa, Method};
        let study = Geometry::of(&transfer_model::CnnConfig::new(4), 1);
        let method = Method::chosen(&study);
        match Isa::chosen() {
            Some(isa) if method != Method::Im2col => format!(
                "burn-flex, fused backbone kernels ({}, {})",
                method.name(),
                isa.name()
            ),
            _ => format!("burn-flex, fused backbone kernels ({})", method.name()),
        }
    }
    #[cfg(not(feature = "flex"))]
    {
        "burn-flex".into()
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn gpu_identity(device: &Device) -> (String, String) {
    match device.identity() {
        Some(id) => (id.name, id.fingerprint),
        None => (format!("{device:?}"), String::new()),
    }
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn gpu_identity(device: &Device) -> (String, String) {
    (format!("{device:?}"), String::new())
}

/// Re-runs this command through cargo with the backend's feature when this binary lacks
/// it. Returns `Ok(None)` when no re-run is needed, else the child's exit code.
pub fn rerun_with_feature(backend: Backend) -> Result<Option<i32>> {
    if backend.compiled() {
        return Ok(None);
    }
    if std::env::var_os("TRANSFER_XTASK_RERUN").is_some() {
        return Err(XtaskError::Backend(format!(
            "the '{}' backend is still missing after rebuilding with its feature",
            backend.name()
        )));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    eprintln!(
        "building the '{}' backend (cargo run --release --features {}); the first build takes a while",
        backend.name(),
        backend.name()
    );
    let status = Command::new(cargo)
        .args([
            "run",
            "--release",
            "--quiet",
            "--package",
            "xtask",
            "--features",
            backend.name(),
            "--",
        ])
        .args(&args)
        .env("TRANSFER_XTASK_RERUN", "1")
        .status()
        .map_err(|e| {
            XtaskError::Backend(format!(
                "cannot run cargo to build the '{}' backend: {e}",
                backend.name()
            ))
        })?;
    Ok(Some(status.code().unwrap_or(1)))
}
