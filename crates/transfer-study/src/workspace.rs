//! Runs pretrainings and protocol runs against a results directory: finished work is read
//! back, never redone; new work is written atomically as soon as it finishes.

use std::path::Path;

use burn::prelude::*;
use transfer_data::{Dataset, SubsetSpec, Task, select_subset, subset_size};
use transfer_model::{Backbone, StackedConv};
use transfer_protocols::{
    DEFAULT_MAX_BUFFER_BYTES, LoopSettings, Observer, RunInput, network_config, pretrain_stack,
    run_protocol_stack,
};
use transfer_records::{
    BackendInfo, DatasetIdentity, PretrainRecord, Protocol, Provenance, ResultsDir, RunRecord,
    SavedModel, SetAside, StudyConfig, TrainingSettings, pretrain_seed, run_seed,
    split_at_divergence, utc_timestamp,
};

use crate::backend::BackendDevice;
use crate::error::{Result, StudyError};

/// Loop settings of a pretraining: evaluated on the source test set at most five times,
/// and never more often than the target runs are
/// ([`TrainingSettings::pretrain_eval_every`]).
pub fn pretrain_loop(s: &TrainingSettings) -> LoopSettings {
    LoopSettings {
        batch_size: s.batch_size,
        network: s.network,
        ..LoopSettings::new(s.pretrain_iterations, s.pretrain_eval_every())
    }
}

/// Loop settings of a target-task run.
pub fn run_loop(s: &TrainingSettings) -> LoopSettings {
    LoopSettings {
        batch_size: s.batch_size,
        network: s.network,
        ..LoopSettings::new(s.iterations, s.eval_every)
    }
}

/// `settings` for runs on `dataset` and `backend`: their dataset identity and backend name
/// taken from those two, as [`Workspace::new`] binds them.
pub fn bind_settings(
    settings: &TrainingSettings,
    dataset: &Dataset,
    backend: &BackendDevice,
) -> TrainingSettings {
    TrainingSettings {
        dataset: DatasetIdentity::of(dataset.manifest()),
        backend: backend.name().to_owned(),
        ..settings.clone()
    }
}

/// The source and target tasks of `settings` on `dataset`, once runs at `proportions` are
/// known to be trainable there: the images fit the network, the source task and every
/// subset hold a batch. What [`Workspace::new`] checks before it creates or touches the
/// results directory.
pub fn feasible_tasks(
    dataset: &Dataset,
    settings: &TrainingSettings,
    proportions: &[f64],
) -> Result<(Task, Task)> {
    let (source, target) =
        dataset.transfer_tasks(&settings.source_classes, &settings.target_classes)?;
    let refuse = |what: String| {
        StudyError::Infeasible(format!(
            "dataset {} ({}): {what}",
            dataset.name(),
            dataset.files()[0]
        ))
    };
    network_config(source.num_classes(), &source.train, &settings.network)
        .map_err(|e| refuse(e.to_string()))?;
    if source.train.len() < settings.batch_size {
        return Err(refuse(format!(
            "the source task (classes {:?}) has {} training images, fewer than one batch of {}",
            settings.source_classes,
            source.train.len(),
            settings.batch_size
        )));
    }
    for &proportion in proportions {
        subset_size(
            settings.subset,
            target.train.len(),
            proportion,
            settings.batch_size,
        )
        .map_err(|e| {
            StudyError::Infeasible(format!(
                "the target task (classes {:?}) cannot be trained at proportion {proportion}: {e}",
                settings.target_classes
            ))
        })?;
    }
    Ok((source, target))
}

/// One results directory, the data and the device: everything a run needs.
pub struct Workspace {
    /// The device runs train on.
    pub device: Device,
    /// Its description, stored in every record.
    pub backend: BackendInfo,
    /// The source task (pretraining).
    pub source: Task,
    /// The target task.
    pub target: Task,
    /// Where records go.
    pub store: ResultsDir,
    /// How runs are computed.
    pub compute: Compute,
    /// What every record written here says produced it (its date set when written; the
    /// command is the caller's to fill).
    pub provenance: Provenance,
    /// Keep each target run's trained network beside its record (`models/`).
    pub save_models: bool,
}

/// How runs are computed, as opposed to what they compute: results change with these by
/// float rounding at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compute {
    /// How runs trained in stacks compute their convolutions.
    pub stacked_conv: StackedConv,
    /// The largest tensor evaluation and cached features create, in bytes.
    pub max_buffer_bytes: usize,
}

impl Default for Compute {
    fn default() -> Compute {
        Compute {
            stacked_conv: StackedConv::Grouped,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
        }
    }
}

impl Compute {
    /// `settings` computed this way.
    pub fn apply(self, settings: LoopSettings) -> LoopSettings {
        LoopSettings {
            stacked_conv: self.stacked_conv,
            max_buffer_bytes: self.max_buffer_bytes,
            ..settings
        }
    }
}

/// A finished run and whether it was computed now or found on disk.
pub struct Finished<T> {
    /// The record.
    pub record: T,
    /// True when read from the results directory.
    pub reused: bool,
}

impl Workspace {
    /// Binds the data, device and results directory for `settings`, after checking that runs
    /// at `proportions` can be trained on this data (the images fit the network, the source
    /// task and every subset hold a batch): an infeasible study stops before it creates or
    /// touches the results directory.
    ///
    /// The settings' `dataset` and `backend` are not the caller's to fill: they are taken from
    /// `dataset` (the manifest it was verified against) and `backend`, whatever `settings`
    /// held there. [`Workspace::settings`] gives the settings bound.
    pub fn new(
        dataset: &Dataset,
        backend: BackendDevice,
        out: &Path,
        settings: &TrainingSettings,
        proportions: &[f64],
    ) -> Result<Workspace> {
        let settings = &bind_settings(settings, dataset, &backend);
        let (source, target) = feasible_tasks(dataset, settings, proportions)?;
        let store = ResultsDir::create(out, settings)?;
        let provenance = Provenance {
            program: format!("mnist-transfer {}", env!("CARGO_PKG_VERSION")),
            commit: env!("TRANSFER_GIT_COMMIT").to_owned(),
            dataset: settings.dataset.clone(),
            date: String::new(),
            command: String::new(),
            trained_in: None,
        };
        let BackendDevice { device, info } = backend;
        Ok(Workspace {
            device,
            backend: info,
            source,
            target,
            store,
            compute: Compute::default(),
            provenance,
            save_models: false,
        })
    }

    /// The provenance of a record written now.
    fn provenance_now(&self) -> Provenance {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Provenance {
            date: utc_timestamp(seconds),
            ..self.provenance.clone()
        }
    }

    /// The settings every run here uses.
    pub fn settings(&self) -> &TrainingSettings {
        self.store.settings()
    }

    /// `config` with this workspace's settings, which must be its own but for the dataset and
    /// the backend (the workspace's): a study never runs a configuration in a directory bound
    /// to other settings.
    pub fn study_config(&self, config: &StudyConfig) -> Result<StudyConfig> {
        let bound = TrainingSettings {
            dataset: self.settings().dataset.clone(),
            backend: self.settings().backend.clone(),
            ..config.training.clone()
        };
        if bound != *self.settings() {
            return Err(StudyError::Config(format!(
                "the configuration's training settings are not those the workspace at {} was made for",
                self.store.root().display()
            )));
        }
        Ok(StudyConfig {
            training: bound,
            ..config.clone()
        })
    }

    /// Moves records that fail verification out of the way (to `rejected/`), so that their
    /// runs are trained again, and says what moved.
    pub fn set_aside_untrusted(&self) -> Result<Vec<SetAside>> {
        Ok(self.store.set_aside_untrusted()?)
    }

    /// The pretrained backbone of `repetition`: loaded if already in the results directory,
    /// else trained, saved (weights first, then the record) and returned.
    pub fn pretrained(
        &self,
        repetition: u32,
        observer: &mut dyn Observer,
    ) -> Result<(Backbone, Finished<PretrainRecord>)> {
        let mut one = self.pretrained_stack(&[repetition], observer)?;
        one.pop()
            .ok_or(StudyError::Internal("a stack of one pretraining gave none"))
    }

    /// The pretrained backbones of `repetitions`, in order. When any is missing, all are
    /// trained together as one stack (so that a repetition's numbers do not depend on which
    /// of them an interrupted study had finished) and the missing ones saved; the others are
    /// loaded as stored.
    pub fn pretrained_stack(
        &self,
        repetitions: &[u32],
        observer: &mut dyn Observer,
    ) -> Result<Vec<(Backbone, Finished<PretrainRecord>)>> {
        let config = network_config(
            self.source.num_classes(),
            &self.source.train,
            &self.settings().network,
        )?;
        // Held until the missing ones are stored (repetitions ascending: no deadlock).
        let mut sorted = repetitions.to_vec();
        sorted.sort_unstable();
        let _locks = sorted
            .iter()
            .map(|&rep| self.store.lock_pretrain(rep))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let stored = repetitions
            .iter()
            .map(|&rep| self.store.finished_pretrain(rep))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let load = |rep: u32| {
            config
                .init_backbone(&self.device, 0)
                .load(&self.store.weights_path(rep))
        };
        if stored.iter().all(Option::is_some) {
            return repetitions
                .iter()
                .zip(stored)
                .filter_map(|(&rep, record)| record.map(|record| (rep, record)))
                .map(|(rep, record)| {
                    Ok((
                        load(rep)?,
                        Finished {
                            record,
                            reused: true,
                        },
                    ))
                })
                .collect();
        }
        let s = self.settings();
        let seeds: Vec<u64> = repetitions
            .iter()
            .map(|&r| pretrain_seed(s.seed, r))
            .collect();
        let settings = self.compute.apply(pretrain_loop(s));
        let outcomes = pretrain_stack(
            &self.device,
            &self.source,
            &settings,
            s.pretrain_learning_rate,
            &seeds,
            observer,
        )?;
        let mut finished = Vec::with_capacity(repetitions.len());
        for (((&repetition, seed), outcome), stored) in
            repetitions.iter().zip(seeds).zip(outcomes).zip(stored)
        {
            if let Some(record) = stored {
                finished.push((
                    load(repetition)?,
                    Finished {
                        record,
                        reused: true,
                    },
                ));
                continue;
            }
            let weights = self.store.weights_path(repetition);
            outcome.model.backbone.save(&weights)?;
            let (loss_curve, diverged_at) = split_at_divergence(outcome.loss_curve);
            let record = PretrainRecord {
                repetition,
                seed,
                iterations: s.pretrain_iterations,
                train_samples: self.source.train.len(),
                curve: outcome.curve,
                loss_curve,
                diverged_at,
                source_test_accuracy: outcome.final_accuracy,
                wall_seconds: outcome.wall_seconds,
                backend: self.backend_of(outcome.stacked, Some(settings.stacked_conv)),
                settings_hash: self.store.settings_hash().to_owned(),
                weights_file: transfer_records::weights_file_name(repetition),
                weights_sha256: String::new(),
                provenance: self.provenance_now(),
                checksum: String::new(),
            };
            let record = self.store.write_pretrain(&record)?;
            finished.push((
                outcome.model.backbone,
                Finished {
                    record,
                    reused: false,
                },
            ));
        }
        Ok(finished)
    }

    /// The backend description for the record of a run trained in a stack of `stacked`,
    /// whose convolutions the stack computed as `conv` says (`None`: frozen backbones).
    fn backend_of(&self, stacked: usize, conv: Option<StackedConv>) -> BackendInfo {
        let mut backend = self.backend.clone();
        // A job in a pool of its own (`--threads-per-job`) computed with that pool's threads.
        if rayon::current_thread_index().is_some() {
            backend.threads = rayon::current_num_threads();
        }
        if stacked > 1 {
            backend.driver = format!("{}, {stacked} runs stacked", backend.driver);
            if let Some(conv @ StackedConv::Gemm) = conv {
                backend.driver = format!("{} ({conv} convolutions)", backend.driver);
            }
        }
        backend
    }

    /// The record of a run if it is already finished. A record made with another definition
    /// of the protocol is an error, never mixed in.
    pub fn finished_run(
        &self,
        protocol: &Protocol,
        proportion: f64,
        repetition: u32,
    ) -> Result<Option<RunRecord>> {
        let path = self.store.run_path(&protocol.name, proportion, repetition);
        let Some(record) = self.store.finished_run(&path)? else {
            return Ok(None);
        };
        if record.protocol != *protocol {
            return Err(StudyError::ProtocolChanged {
                path,
                protocol: protocol.name.clone(),
            });
        }
        Ok(Some(record))
    }

    /// Runs `protocol` at `proportion`, repetition `repetition` (reusing a finished record),
    /// and stores the record.
    pub fn run(
        &self,
        protocol: &Protocol,
        proportion: f64,
        repetition: u32,
        pretrained: Option<(&Backbone, u64)>,
        observer: &mut dyn Observer,
    ) -> Result<Finished<RunRecord>> {
        let mut one =
            self.run_stack(protocol, proportion, &[(repetition, pretrained)], observer)?;
        one.pop()
            .ok_or(StudyError::Internal("a stack of one run gave none"))
    }

    /// Runs `protocol` at `proportion` for several repetitions, each with the pretrained
    /// backbone it starts from ([`TrainingSettings::run_seeds`] says whose) and that
    /// backbone's seed where the protocol needs one, and returns their
    /// records in order. When any is unfinished, all are trained together as one stack (so
    /// that a run's numbers do not depend on which of them an interrupted study had
    /// finished) and the unfinished ones stored; the others are returned as stored.
    pub fn run_stack(
        &self,
        protocol: &Protocol,
        proportion: f64,
        members: &[(u32, Option<(&Backbone, u64)>)],
        observer: &mut dyn Observer,
    ) -> Result<Vec<Finished<RunRecord>>> {
        let stored = members
            .iter()
            .map(|&(rep, _)| self.finished_run(protocol, proportion, rep))
            .collect::<Result<Vec<_>>>()?;
        if stored.iter().all(Option::is_some) {
            return Ok(stored
                .into_iter()
                .flatten()
                .map(|record| Finished {
                    record,
                    reused: true,
                })
                .collect());
        }
        let s = self.settings();
        let mut seeds = Vec::with_capacity(members.len());
        let mut trains = Vec::with_capacity(members.len());
        for &(repetition, _) in members {
            let run_seeds = s.run_seeds(&protocol.name, proportion, repetition);
            let spec = SubsetSpec {
                rule: s.subset,
                proportion,
                batch: s.batch_size,
                seed: run_seeds.subset,
            };
            let subset = select_subset(&self.target.train.labels, self.target.num_classes(), spec)?;
            seeds.push(run_seeds);
            trains.push(self.target.train.select(&subset));
        }
        let settings = self.compute.apply(run_loop(s));
        let inputs: Vec<RunInput> = members
            .iter()
            .zip(&seeds)
            .zip(&trains)
            .map(|((&(_, pretrained), &seeds), train)| RunInput {
                protocol,
                train,
                test: &self.target.test,
                num_classes: self.target.num_classes(),
                pretrained: pretrained.map(|(b, _)| b),
                settings: &settings,
                seeds,
            })
            .collect();
        let outcomes = run_protocol_stack(&self.device, &inputs, observer)?;
        let mut finished = Vec::with_capacity(members.len());
        for ((((&(repetition, pretrained), _), train), outcome), stored) in members
            .iter()
            .zip(seeds)
            .zip(&trains)
            .zip(outcomes)
            .zip(stored)
        {
            if let Some(record) = stored {
                finished.push(Finished {
                    record,
                    reused: true,
                });
                continue;
            }
            let model = if self.save_models {
                let path = self
                    .store
                    .new_model_path(&protocol.name, proportion, repetition)?;
                outcome.model.save(&path)?;
                Some(SavedModel {
                    file: path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    sha256: String::new(),
                    num_classes: self.target.num_classes(),
                    image_size: [self.target.train.rows, self.target.train.cols],
                })
            } else {
                None
            };
            let (loss_curve, diverged_at) = split_at_divergence(outcome.loss_curve);
            let record = RunRecord {
                protocol: protocol.clone(),
                proportion,
                repetition,
                seed: run_seed(s.seed, &protocol.name, proportion, repetition),
                pretrain_seed: if protocol.needs_pretraining() {
                    pretrained.map(|(_, seed)| seed)
                } else {
                    None
                },
                train_samples: train.len(),
                iterations: s.iterations,
                test_samples: Some(self.target.test.len()),
                curve: outcome.curve,
                loss_curve,
                diverged_at,
                final_accuracy: outcome.final_accuracy,
                wall_seconds: outcome.wall_seconds,
                backend: self.backend_of(
                    outcome.stacked,
                    (!protocol.freeze_backbone).then_some(settings.stacked_conv),
                ),
                settings_hash: self.store.settings_hash().to_owned(),
                model,
                provenance: self.provenance_now(),
                checksum: String::new(),
            };
            let record = self.store.write_run(&record)?;
            finished.push(Finished {
                record,
                reused: false,
            });
        }
        Ok(finished)
    }
}
