//! The one place that names concrete burn backends.
//!
//! Each backend is a Cargo feature of this crate (`flex`, the default, `ndarray`, `wgpu`,
//! `vulkan`, `cuda`). Asking for one that this binary was built without re-runs the command
//! through `cargo run --release --features NAME`, so the user never edits a manifest.

use std::process::Command;

use burn::prelude::*;
use clap::ValueEnum;
use transfer_records::BackendInfo;
use transfer_study::BackendDevice;

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
    /// burn-wgpu on Vulkan with SPIR-V kernels, which can use cooperative matrices (tensor
    /// cores) where the driver offers them. Built with it, `wgpu` also compiles SPIR-V on Vulkan.
    Vulkan,
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
            Backend::Vulkan => "vulkan",
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
            Backend::Vulkan => cfg!(feature = "vulkan"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The default backend of this build: the first compiled one in declaration order (flex
    /// when present).
    pub fn default_compiled() -> Backend {
        Backend::value_variants()
            .iter()
            .copied()
            .find(|b| b.compiled())
            .unwrap_or(Backend::Flex)
    }

    /// The names of the backends this binary was built with.
    pub fn compiled_names() -> Vec<&'static str> {
        Backend::value_variants()
            .iter()
            .filter(|b| b.compiled())
            .map(|b| b.name())
            .collect()
    }

    /// The device, checked to work by running one small operation on it, and its description.
    pub fn device(self) -> Result<BackendDevice> {
        if !self.compiled() {
            return Err(XtaskError::Backend(format!(
                "this binary was built without the '{}' backend; run it through `cargo xtask`, or build with `--features {}`",
                self.name(),
                self.name()
            )));
        }
        let device = self
            .make_device()
            .map_err(|reason| self.cannot_start(&reason))?;
        // A device that fails at its first operation panics inside burn (CUDA without a
        // driver, say); the probe catches that, quietly, so the failure is the one line below.
        let probe = device.clone();
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let started = std::panic::catch_unwind(move || {
            let x = Tensor::<2>::ones([2, 2], &probe);
            x.sum()
                .try_into_data()
                .map_err(|e| e.to_string())
                .map(|data| data.try_into_vec_as::<f32>().ok())
        });
        std::panic::set_hook(hook);
        match started {
            Ok(Ok(Some(v))) if v.first() == Some(&4.0) => {}
            Ok(Ok(_)) => {
                return Err(XtaskError::Backend(format!(
                    "backend '{}' started but computed a wrong value; use --backend flex",
                    self.name()
                )));
            }
            Ok(Err(reason)) => return Err(self.cannot_start(&reason)),
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown reason".into());
                return Err(self.cannot_start(&reason));
            }
        }
        let (name, driver) = describe_device(self, &device);
        let info = BackendInfo {
            backend: self.name().to_owned(),
            device: name,
            driver,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(BackendDevice::new(device, info))
    }

    /// The one-line error for a backend whose device did not start, with what to do.
    fn cannot_start(self, reason: &str) -> XtaskError {
        XtaskError::Backend(format!(
            "backend '{}' could not start ({}); is a GPU and its driver present? The CPU backend works everywhere: --backend flex",
            self.name(),
            reason.lines().next().unwrap_or("unknown reason")
        ))
    }

    /// The backend's device; wgpu devices are opened here, so that a missing adapter or
    /// driver is an error rather than a panic at the first operation.
    #[allow(unreachable_code, deprecated)]
    fn make_device(self) -> std::result::Result<Device, String> {
        Ok(match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu_options().init().map_err(|e| e.to_string())?,
            #[cfg(feature = "vulkan")]
            Backend::Vulkan => Device::wgpu_options()
                .graphics_api(burn::tensor::wgpu::WgpuBackend::Vulkan)
                .init()
                .map_err(|e| e.to_string())?,
            #[cfg(feature = "cuda")]
            Backend::Cuda => Device::cuda(0),
            #[allow(unreachable_patterns)]
            _ => Device::default(),
        })
    }
}

/// The device's name and what runs the kernels: for the CPU backends the processor and the
/// backend's kernels, for GPUs the name the runtime reports and what it compiles kernels for.
fn describe_device(backend: Backend, device: &Device) -> (String, String) {
    match backend {
        Backend::Flex => (crate::hardware::cpu_model(), flex_kernels()),
        Backend::Ndarray => (crate::hardware::cpu_model(), "burn-ndarray".into()),
        Backend::Wgpu | Backend::Vulkan | Backend::Cuda => {
            let (name, fingerprint) = gpu_identity(device);
            let target = pci_ids(&fingerprint).unwrap_or(fingerprint);
            (name, format!("{target}, {}", gpu_kernels(backend)))
        }
    }
}

/// wgpu's fingerprint `spirv_VENDOR_DEVICE` (whatever the kernels' language) as the PCI ids
/// `vendor 0x10de, device 0x2330`; `None` for other fingerprints (CUDA's `ptx_sm90` says more
/// as it is).
fn pci_ids(fingerprint: &str) -> Option<String> {
    let (vendor, device) = fingerprint.strip_prefix("spirv_")?.split_once('_')?;
    let (vendor, device) = (vendor.parse::<u32>().ok()?, device.parse::<u32>().ok()?);
    Some(format!("vendor {vendor:#06x}, device {device:#06x}"))
}

/// The language the GPU backend's kernels are compiled to. A build with the `vulkan` feature
/// compiles SPIR-V for every Vulkan device, `wgpu` ones included (and falls back to WGSL where
/// the driver lacks the extensions it needs).
fn gpu_kernels(backend: Backend) -> &'static str {
    match backend {
        Backend::Cuda => "CUDA kernels",
        _ if cfg!(feature = "vulkan") => "SPIR-V kernels on Vulkan, WGSL elsewhere",
        _ => "WGSL kernels",
    }
}

/// burn-flex, and the fused backbone's method and instruction set for the study's model.
fn flex_kernels() -> String {
    #[cfg(feature = "flex")]
    {
        use transfer_kernels::{Geometry, Isa, Method};
        let config = transfer_model::CnnConfig::new(4);
        let study = Geometry {
            batch: 1,
            c0: config.in_channels,
            c1: config.channels[0],
            c2: config.channels[1],
            height: config.image_size[0],
            width: config.image_size[1],
            kernel: config.kernel_size,
        };
        let method = Method::chosen(&study);
        let backbone = match Isa::chosen() {
            Some(isa) if method != Method::Im2col => {
                format!("fused backbone kernels ({}, {})", method.name(), isa.name())
            }
            _ => format!("fused backbone kernels ({})", method.name()),
        };
        // Which of gemm's kernels ran (speed; the products sum in one order either way).
        match Isa::of_products() {
            Some(isa) => format!("burn-flex, {backbone}, gemm {}", isa.name()),
            None => format!("burn-flex, {backbone}"),
        }
    }
    #[cfg(not(feature = "flex"))]
    {
        "burn-flex".into()
    }
}

#[cfg(any(feature = "wgpu", feature = "vulkan", feature = "cuda"))]
fn gpu_identity(device: &Device) -> (String, String) {
    match device.identity() {
        Some(id) => (id.name, id.fingerprint),
        None => (format!("{device:?}"), String::new()),
    }
}

#[cfg(not(any(feature = "wgpu", feature = "vulkan", feature = "cuda")))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_is_a_feature_of_this_crate_under_its_command_line_name() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let manifest: toml::Table = std::fs::read_to_string(&path)
            .expect("xtask's manifest is readable")
            .parse()
            .expect("xtask's manifest is TOML");
        let features = manifest["features"].as_table().expect("a [features] table");
        for &backend in Backend::value_variants() {
            assert!(
                features.contains_key(backend.name()),
                "no feature '{}' in {}",
                backend.name(),
                path.display()
            );
            assert_eq!(Backend::from_str(backend.name(), false), Ok(backend));
        }
    }

    #[test]
    fn wgpu_fingerprints_read_as_pci_ids() {
        assert_eq!(
            pci_ids("spirv_4318_9008").as_deref(),
            Some("vendor 0x10de, device 0x2330")
        );
        assert_eq!(
            pci_ids("spirv_65541_0").as_deref(),
            Some("vendor 0x10005, device 0x0000")
        );
        assert_eq!(pci_ids("ptx_sm90"), None);
        assert_eq!(pci_ids("spirv_x_1"), None);
    }

    #[test]
    fn a_backend_left_out_of_the_build_fails_in_one_line_naming_its_feature() {
        let Some(missing) = Backend::value_variants().iter().find(|b| !b.compiled()) else {
            return; // every backend compiled in: nothing is missing
        };
        let message = match missing.device() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("'{}' started without its feature", missing.name()),
        };
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.contains(&format!("--features {}", missing.name())),
            "{message}"
        );
    }
}
