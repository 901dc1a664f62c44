//! The results directory: one JSON record per finished run and per pretrained model, each
//! written atomically, so a study killed at any moment resumes where it stopped.
//!
//! ```text
//! DIR/settings.json              the TrainingSettings every record here was made with
//! DIR/study.json                 the last study configuration run into DIR
//! DIR/pretrained/rep-03.json     a PretrainRecord; rep-03.bpk beside it holds the weights
//! DIR/runs/frozen-p0.01-rep-03.json   a RunRecord
//! ```

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use transfer_core::{write_atomic, write_new_atomic};

use crate::config::{RecordKind, StudyConfig, TrainingSettings};
use crate::run::{PretrainRecord, RunRecord};
use crate::verify::{
    Checksummed, check_bytes, check_pretrain, check_run, pretrain_file_name, run_file_name,
    weights_file_name,
};

/// Why the results directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not the JSON it should be.
    #[error("{path}: not a valid record ({what})")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        what: String,
    },
    /// A record failed verification.
    #[error("{path}: not trusted: {what}")]
    Invalid {
        /// The record.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// Records of a directory failed verification; nothing is computed from it.
    #[error(
        "{} record(s) under {dir} fail verification, so no result is computed from it: {}; running the study again sets them aside (under rejected/) and trains those runs again",
        .records.len(),
        .records.iter().map(|(p, w)| format!("{}: {w}", p.display())).collect::<Vec<_>>().join("; ")
    )]
    Untrusted {
        /// The results directory.
        dir: PathBuf,
        /// Each failing record and why.
        records: Vec<(PathBuf, String)>,
    },
    /// The directory holds results of other settings.
    #[error(
        "{dir} holds results made with other settings ({what}); choose another --out or remove it"
    )]
    Mismatch {
        /// The directory.
        dir: PathBuf,
        /// Which settings differ.
        what: String,
    },
    /// Records asked of a directory whose settings give them other numbers.
    #[error("{what} of {from} cannot stand for those of {to}: its settings differ ({differences})")]
    NotShared {
        /// The directory the records are in.
        from: PathBuf,
        /// The directory that asked for them.
        to: PathBuf,
        /// Which records.
        what: String,
        /// Which settings differ.
        differences: String,
    },
    /// The directory has no `settings.json`: it is not a results directory.
    #[error("{0} is not a results directory (no settings.json)")]
    NotResults(PathBuf),
}

type Result<T> = std::result::Result<T, StoreError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn to_json(path: &Path, value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| StoreError::Parse {
        path: path.to_owned(),
        what: e.to_string(),
    })
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    write_atomic(path, &to_json(path, value)?).map_err(io(path))
}

/// Reads a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Parse {
        path: path.to_owned(),
        what: e.to_string(),
    })
}

/// Reads a record file whose bytes must match the checksum they carry, then parses it.
fn read_record<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    check_bytes(&bytes).map_err(|what| StoreError::Invalid {
        path: path.to_owned(),
        what,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Parse {
        path: path.to_owned(),
        what: e.to_string(),
    })
}

/// Hex SHA-256 of a file's bytes.
fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(transfer_core::sha256_hex(&bytes))
}

/// The right to train and store one pretraining, held until dropped
/// ([`ResultsDir::lock_pretrain`]).
#[derive(Debug)]
pub struct PretrainLock {
    _file: File,
}

/// A record that failed verification and was moved out of the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Where it was.
    pub from: PathBuf,
    /// Where it is now (under `rejected/`).
    pub to: PathBuf,
    /// Why it was not trusted.
    pub why: String,
}

/// A results directory bound to one set of [`TrainingSettings`].
#[derive(Debug, Clone)]
pub struct ResultsDir {
    root: PathBuf,
    settings: TrainingSettings,
    hash: String,
}

impl ResultsDir {
    /// Opens (creating if needed) `root` for results of `settings`. A directory made with
    /// other settings is refused, naming the settings that differ. Processes creating one
    /// directory at once agree: the first `settings.json` written stays, and the others
    /// compare against it.
    pub fn create(root: &Path, settings: &TrainingSettings) -> Result<ResultsDir> {
        for sub in ["runs", "pretrained"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        let path = root.join("settings.json");
        let created = write_new_atomic(&path, &to_json(&path, settings)?).map_err(io(&path))?;
        if !created {
            let existing = read_settings(&path)?;
            if existing != *settings {
                return Err(StoreError::Mismatch {
                    dir: root.to_owned(),
                    what: differences(&existing, settings),
                });
            }
        }
        Ok(ResultsDir {
            root: root.to_owned(),
            settings: settings.clone(),
            hash: settings.hash(),
        })
    }

    /// Opens an existing results directory with whatever settings it holds.
    pub fn open(root: &Path) -> Result<ResultsDir> {
        let path = root.join("settings.json");
        if !path.exists() {
            return Err(StoreError::NotResults(root.to_owned()));
        }
        let settings = read_settings(&path)?;
        Ok(ResultsDir {
            root: root.to_owned(),
            hash: settings.hash(),
            settings,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The settings every record here was made with.
    pub fn settings(&self) -> &TrainingSettings {
        &self.settings
    }

    /// Their hash, as stored in each record.
    pub fn settings_hash(&self) -> &str {
        &self.hash
    }

    /// Where the record of a run lives.
    pub fn run_path(&self, protocol: &str, proportion: f64, repetition: u32) -> PathBuf {
        self.root
            .join("runs")
            .join(run_file_name(protocol, proportion, repetition))
    }

    /// Where the record of the pretraining of `repetition` lives.
    pub fn pretrain_path(&self, repetition: u32) -> PathBuf {
        self.root
            .join("pretrained")
            .join(pretrain_file_name(repetition))
    }

    /// Where the pretrained backbone weights of `repetition` live.
    pub fn weights_path(&self, repetition: u32) -> PathBuf {
        self.root
            .join("pretrained")
            .join(weights_file_name(repetition))
    }

    /// Where the trained network of a run is kept: `models/NAME.bpk` for `runs/NAME.json`.
    pub fn model_path(&self, protocol: &str, proportion: f64, repetition: u32) -> PathBuf {
        let name = run_file_name(protocol, proportion, repetition).replace(".json", ".bpk");
        self.root.join("models").join(name)
    }

    /// [`ResultsDir::model_path`], its directory created, for a network about to be saved.
    pub fn new_model_path(
        &self,
        protocol: &str,
        proportion: f64,
        repetition: u32,
    ) -> Result<PathBuf> {
        let path = self.model_path(protocol, proportion, repetition);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        Ok(path)
    }

    /// The model file a verified run record names, checked against the SHA-256 it recorded.
    pub fn saved_model(&self, record: &RunRecord) -> Result<PathBuf> {
        let path = self.model_path(&record.protocol.name, record.proportion, record.repetition);
        let invalid = |what: String| StoreError::Invalid {
            path: path.clone(),
            what,
        };
        let Some(model) = &record.model else {
            return Err(invalid(
                "the run kept no model (run the study with --save-models)".into(),
            ));
        };
        let hash = file_sha256(&path).map_err(|e| invalid(reason(e)))?;
        if hash != model.sha256 {
            return Err(invalid(
                "not the model its run recorded (SHA-256 differs)".into(),
            ));
        }
        Ok(path)
    }

    /// The run record at `path`, verified: its checksum, its content against its file name
    /// and the directory's settings, its values' ranges.
    pub fn read_run(&self, path: &Path) -> Result<RunRecord> {
        let record: RunRecord = read_record(path)?;
        check_run(&record, &file_name(path), &self.settings, &self.hash).map_err(|what| {
            StoreError::Invalid {
                path: path.to_owned(),
                what,
            }
        })?;
        Ok(record)
    }

    /// The pretraining record at `path`, verified like [`ResultsDir::read_run`], and its
    /// weights file's SHA-256 against the one it recorded.
    pub fn read_pretrain(&self, path: &Path) -> Result<PretrainRecord> {
        let record: PretrainRecord = read_record(path)?;
        let invalid = |what: String| StoreError::Invalid {
            path: path.to_owned(),
            what,
        };
        check_pretrain(&record, &file_name(path), &self.settings, &self.hash).map_err(invalid)?;
        let weights = self.weights_path(record.repetition);
        match file_sha256(&weights) {
            Ok(hash) if hash == record.weights_sha256 => Ok(record),
            Ok(_) => Err(invalid(format!(
                "{} is not the weights it recorded (SHA-256 differs)",
                weights.display()
            ))),
            Err(e) => Err(invalid(e.to_string())),
        }
    }

    /// The finished record at `path`, if there is one, verified ([`ResultsDir::read_run`]).
    pub fn finished_run(&self, path: &Path) -> Result<Option<RunRecord>> {
        if !path.exists() {
            return Ok(None);
        }
        self.read_run(path).map(Some)
    }

    /// The finished pretraining of `repetition`, if its record exists, verified with its
    /// weights ([`ResultsDir::read_pretrain`]).
    pub fn finished_pretrain(&self, repetition: u32) -> Result<Option<PretrainRecord>> {
        let path = self.pretrain_path(repetition);
        if !path.exists() {
            return Ok(None);
        }
        self.read_pretrain(&path).map(Some)
    }

    /// Waits for, then holds, the exclusive right to train and store the pretraining of
    /// `repetition` (a lock on a hidden file beside its record, released when the guard is
    /// dropped). Processes sharing the directory take it before looking for a stored
    /// pretraining, so a model and its record are always written by one process.
    pub fn lock_pretrain(&self, repetition: u32) -> Result<PretrainLock> {
        let path = self
            .root
            .join("pretrained")
            .join(format!(".rep-{repetition:02}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(PretrainLock { _file: file })
    }

    /// Writes a run record atomically, after its model if it names one (whose SHA-256 it
    /// records), with its checksum; returns the record as written.
    pub fn write_run(&self, record: &RunRecord) -> Result<RunRecord> {
        let path = self.run_path(&record.protocol.name, record.proportion, record.repetition);
        let mut record = record.clone();
        if let Some(model) = &mut record.model {
            let file = self.model_path(&record.protocol.name, record.proportion, record.repetition);
            model.sha256 = file_sha256(&file)?;
        }
        let (sealed, bytes) = record.sealed();
        write_atomic(&path, &bytes).map_err(io(&path))?;
        Ok(sealed)
    }

    /// Writes a pretraining record atomically, after its weights (whose SHA-256 it records),
    /// with its checksum; returns the record as written.
    pub fn write_pretrain(&self, record: &PretrainRecord) -> Result<PretrainRecord> {
        let mut record = record.clone();
        record.weights_sha256 = file_sha256(&self.weights_path(record.repetition))?;
        let (sealed, bytes) = record.sealed();
        let path = self.pretrain_path(record.repetition);
        write_atomic(&path, &bytes).map_err(io(&path))?;
        Ok(sealed)
    }

    /// Stores here the run `record`, read and verified from `from`, whose settings give that
    /// run the same numbers as this directory's ([`TrainingSettings::shared_key`]; refused
    /// otherwise): the record as trained, sealed with this directory's settings hash, its
    /// provenance naming `from`, a kept model copied with it. The copy is verified as any
    /// record read here, and returned.
    pub fn adopt_run(&self, from: &ResultsDir, record: &RunRecord) -> Result<RunRecord> {
        self.check_shared(from, RecordKind::Run(&record.protocol, record.repetition))?;
        let mut copy = record.clone();
        let (protocol, proportion, repetition) =
            (&record.protocol.name, record.proportion, record.repetition);
        if record.model.is_some() {
            let source = from.saved_model(record)?;
            let bytes = std::fs::read(&source).map_err(io(&source))?;
            let path = self.new_model_path(protocol, proportion, repetition)?;
            write_atomic(&path, &bytes).map_err(io(&path))?;
        }
        copy.settings_hash = self.hash.clone();
        copy.provenance.trained_in = Some(trained_in(from, self, &record.provenance));
        self.write_run(&copy)?;
        self.read_run(&self.run_path(protocol, proportion, repetition))
    }

    /// Stores here the pretraining of `repetition` verified in `from`, weights and record, as
    /// [`ResultsDir::adopt_run`] does a run (under this directory's lock of that pretraining);
    /// `None` when `from` holds none. One already stored here is returned as it is.
    pub fn adopt_pretrain(
        &self,
        from: &ResultsDir,
        repetition: u32,
    ) -> Result<Option<PretrainRecord>> {
        self.check_shared(from, RecordKind::Pretraining)?;
        let _lock = self.lock_pretrain(repetition)?;
        if let Some(stored) = self.finished_pretrain(repetition)? {
            return Ok(Some(stored));
        }
        let Some(record) = from.finished_pretrain(repetition)? else {
            return Ok(None);
        };
        let source = from.weights_path(repetition);
        let bytes = std::fs::read(&source).map_err(io(&source))?;
        if transfer_core::sha256_hex(&bytes) != record.weights_sha256 {
            return Err(StoreError::Invalid {
                path: source,
                what: "changed since its record was verified".into(),
            });
        }
        let weights = self.weights_path(repetition);
        write_atomic(&weights, &bytes).map_err(io(&weights))?;
        let mut copy = record.clone();
        copy.settings_hash = self.hash.clone();
        copy.provenance.trained_in = Some(trained_in(from, self, &record.provenance));
        self.write_pretrain(&copy)?;
        self.read_pretrain(&self.pretrain_path(repetition))
            .map(Some)
    }

    /// Refuses to take records of `kind` from `from` unless its settings give them the same
    /// numbers as this directory's.
    fn check_shared(&self, from: &ResultsDir, kind: RecordKind<'_>) -> Result<()> {
        if from.settings.shared_key(kind) == self.settings.shared_key(kind) {
            return Ok(());
        }
        let what = match kind {
            RecordKind::Run(protocol, _) => format!("runs of {}", protocol.name),
            RecordKind::Pretraining => "pretrainings".to_owned(),
        };
        Err(StoreError::NotShared {
            from: from.root.clone(),
            to: self.root.clone(),
            what,
            differences: differences(&from.settings, &self.settings),
        })
    }

    /// Stores the configuration of the study being run.
    pub fn write_study(&self, config: &StudyConfig) -> Result<()> {
        write_json(&self.root.join("study.json"), config)
    }

    /// The configuration last stored with [`ResultsDir::write_study`], if any, checked:
    /// valid, and made with this directory's settings.
    pub fn study(&self) -> Result<Option<StudyConfig>> {
        let path = self.root.join("study.json");
        if !path.exists() {
            return Ok(None);
        }
        let config: StudyConfig = read_json(&path)?;
        let invalid = |what: String| StoreError::Invalid {
            path: path.clone(),
            what,
        };
        config.validate().map_err(|e| invalid(e.to_string()))?;
        if config.training != self.settings {
            return Err(invalid(
                "its settings are not the directory's settings.json".into(),
            ));
        }
        Ok(Some(config))
    }

    /// Every run record in the directory, verified, sorted by protocol, repetition and
    /// proportion. Any record that fails verification, or two records giving one protocol
    /// name two definitions, make it an error naming every such file: no result is computed
    /// from a directory holding one.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        let mut runs = Vec::new();
        let mut failures = Vec::new();
        for path in self.record_files("runs")? {
            match self.read_run(&path) {
                Ok(record) => runs.push((path, record)),
                Err(e) => failures.push((path, reason(e))),
            }
        }
        for (i, (path, run)) in runs.iter().enumerate() {
            if let Some((first, _)) = runs[..i]
                .iter()
                .find(|(_, r)| r.protocol.name == run.protocol.name && r.protocol != run.protocol)
            {
                failures.push((
                    path.clone(),
                    format!(
                        "protocol '{}' is defined otherwise than in {}",
                        run.protocol.name,
                        first.display()
                    ),
                ));
            }
        }
        self.trusted(failures)?;
        let mut runs: Vec<RunRecord> = runs.into_iter().map(|(_, r)| r).collect();
        runs.sort_by(|a, b| {
            (a.protocol.name.as_str(), a.repetition)
                .cmp(&(b.protocol.name.as_str(), b.repetition))
                .then(a.proportion.total_cmp(&b.proportion))
        });
        Ok(runs)
    }

    /// Every pretraining record, verified with its weights, by repetition; an error naming
    /// every record that fails.
    pub fn pretrains(&self) -> Result<Vec<PretrainRecord>> {
        let mut records = Vec::new();
        let mut failures = Vec::new();
        for path in self.record_files("pretrained")? {
            match self.read_pretrain(&path) {
                Ok(record) => records.push(record),
                Err(e) => failures.push((path, reason(e))),
            }
        }
        self.trusted(failures)?;
        records.sort_by_key(|r| r.repetition);
        Ok(records)
    }

    /// Moves every record that fails verification (and a pretraining's weights with it) to
    /// `rejected/` under a name that keeps its original one, and says what was moved and why.
    /// Nothing is deleted. Safe while other processes work in the directory: they write
    /// records by rename, so only complete records are ever judged.
    pub fn set_aside_untrusted(&self) -> Result<Vec<SetAside>> {
        let mut moved = Vec::new();
        for path in self.record_files("runs")? {
            if let Err(e) = self.read_run(&path) {
                moved.extend(self.set_aside(&path, reason(e))?);
            }
        }
        for path in self.record_files("pretrained")? {
            if let Err(e) = self.read_pretrain(&path) {
                let why = reason(e);
                let weights = path.with_extension("bpk");
                moved.extend(self.set_aside(&path, why.clone())?);
                if weights.exists() {
                    moved.extend(self.set_aside(&weights, why)?);
                }
            }
        }
        Ok(moved)
    }

    fn set_aside(&self, path: &Path, why: String) -> Result<Option<SetAside>> {
        let dir = self.root.join("rejected");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let to = dir.join(format!(
            "{}.{nanos}.{}",
            file_name(path),
            std::process::id()
        ));
        match std::fs::rename(path, &to) {
            Ok(()) => Ok(Some(SetAside {
                from: path.to_owned(),
                to,
                why,
            })),
            // Another process set it aside first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path)(e)),
        }
    }

    fn trusted(&self, failures: Vec<(PathBuf, String)>) -> Result<()> {
        if failures.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Untrusted {
                dir: self.root.clone(),
                records: failures,
            })
        }
    }

    /// The record files of a subdirectory: `*.json`, not hidden (temporary files are).
    fn record_files(&self, sub: &str) -> Result<Vec<PathBuf>> {
        let dir = self.root.join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        paths.sort();
        Ok(paths)
    }
}

/// Where a record copied from `from` into `to` was trained: where `from`'s copy was, if it
/// was one; a directory beside `to` as `../NAME`, so that the two can move together.
fn trained_in(from: &ResultsDir, to: &ResultsDir, provenance: &crate::run::Provenance) -> String {
    if let Some(first) = &provenance.trained_in {
        return first.clone();
    }
    match (from.root.parent(), to.root.parent(), from.root.file_name()) {
        (Some(a), Some(b), Some(name)) if a == b => format!("../{}", name.to_string_lossy()),
        _ => from.root.display().to_string(),
    }
}

/// A file's name, lossily as text.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What is wrong with a record, without its path (which the caller names).
fn reason(e: StoreError) -> String {
    match e {
        StoreError::Invalid { what, .. } | StoreError::Parse { what, .. } => what,
        StoreError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Reads and checks a `settings.json`.
fn read_settings(path: &Path) -> Result<TrainingSettings> {
    let settings: TrainingSettings = read_json(path)?;
    settings.validate().map_err(|e| StoreError::Invalid {
        path: path.to_owned(),
        what: e.to_string(),
    })?;
    Ok(settings)
}

/// Names the fields in which two settings differ, `field: old -> new`.
fn differences(old: &TrainingSettings, new: &TrainingSettings) -> String {
    let (a, b) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    );
    let mut diffs = Vec::new();
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (key, va) in a {
            let vb = b.get(key).cloned().unwrap_or_default();
            if *va != vb {
                diffs.push(format!("{key}: {va} there, {vb} now"));
            }
        }
    }
    diffs.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("transfer-records-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn other_settings_are_refused_with_the_difference_named() {
        let dir = temp("mismatch");
        let settings = TrainingSettings::paper("flex");
        ResultsDir::create(&dir, &settings).unwrap();
        ResultsDir::create(&dir, &settings).unwrap();
        let mut other = settings.clone();
        other.iterations = 300;
        let err = ResultsDir::create(&dir, &other).unwrap_err().to_string();
        assert!(err.contains("iterations: 1000 there, 300 now"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = temp("atomic");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.json");
        write_atomic(&path, b"{}").unwrap();
        write_atomic(&path, b"[1]").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"[1]");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_the_file() {
        let dir = temp("damaged");
        let store = ResultsDir::create(&dir, &TrainingSettings::paper("flex")).unwrap();
        let path = store.run_path("raw", 0.1, 0);
        std::fs::write(&path, "{ not json").unwrap();
        let err = store.runs().unwrap_err().to_string();
        assert!(err.contains("raw-p0.1-rep-00.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A small directory's settings and a valid record of `raw` at `proportion`, `rep`.
    pub(crate) fn small_settings() -> TrainingSettings {
        let mut settings = TrainingSettings::paper("flex");
        (settings.iterations, settings.eval_every) = (20, 10);
        settings
    }

    pub(crate) fn record(store: &ResultsDir, proportion: f64, rep: u32) -> RunRecord {
        use crate::run::{BackendInfo, CurvePoint, LossPoint};
        let s = store.settings();
        let point = |iteration, accuracy| CurvePoint {
            iteration,
            accuracy,
        };
        let loss = |iteration, loss| LossPoint { iteration, loss };
        RunRecord {
            protocol: crate::Protocol::preset("raw").unwrap(),
            proportion,
            repetition: rep,
            seed: crate::run_seed(s.seed, "raw", proportion, rep),
            pretrain_seed: None,
            train_samples: 200,
            iterations: 20,
            test_samples: Some(3969),
            curve: vec![point(10, 0.5), point(20, 0.75 + f64::from(rep) / 100.0)],
            loss_curve: vec![loss(10, 1.0), loss(20, 0.5)],
            diverged_at: None,
            final_accuracy: 0.75 + f64::from(rep) / 100.0,
            wall_seconds: 1.5,
            backend: BackendInfo {
                backend: "flex".into(),
                device: "cpu".into(),
                driver: String::new(),
                threads: 2,
            },
            settings_hash: store.settings_hash().to_owned(),
            model: None,
            provenance: crate::Provenance {
                program: "test".into(),
                commit: String::new(),
                dataset: s.dataset.clone(),
                date: crate::utc_timestamp(0),
                command: String::new(),
                trained_in: None,
            },
            checksum: String::new(),
        }
    }

    fn edit(path: &Path, from: &str, to: &str) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(from), "{text}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }

    #[test]
    fn records_read_back_only_as_written() {
        let dir = temp("verified");
        let store = ResultsDir::create(&dir, &small_settings()).unwrap();
        let written = store.write_run(&record(&store, 0.1, 0)).unwrap();
        assert_eq!(store.runs().unwrap(), std::slice::from_ref(&written));
        let path = store.run_path("raw", 0.1, 0);
        // An edited value, even one in range.
        edit(&path, "\"final_accuracy\": 0.75", "\"final_accuracy\": 0.7");
        let err = store.runs().unwrap_err().to_string();
        assert!(
            err.contains("raw-p0.1-rep-00.json") && err.contains("checksum"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_under_another_runs_name_is_not_counted_twice() {
        let dir = temp("copied");
        let store = ResultsDir::create(&dir, &small_settings()).unwrap();
        store.write_run(&record(&store, 0.1, 0)).unwrap();
        std::fs::copy(store.run_path("raw", 0.1, 0), store.run_path("raw", 0.1, 1)).unwrap();
        std::fs::copy(store.run_path("raw", 0.1, 0), dir.join("runs/copy.json")).unwrap();
        let err = store.runs().unwrap_err().to_string();
        assert!(err.starts_with("2 record(s)"), "{err}");
        assert!(
            err.contains("raw-p0.1-rep-01.json: not trusted")
                || err.contains("raw-p0.1-rep-01.json: it holds raw p=0.1 rep 0"),
            "{err}"
        );
        let moved = store.set_aside_untrusted().unwrap();
        assert_eq!(moved.len(), 2);
        assert!(
            moved
                .iter()
                .all(|m| m.to.starts_with(dir.join("rejected")) && m.to.exists())
        );
        assert_eq!(store.runs().unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn out_of_range_and_foreign_records_are_named_with_the_reason() {
        let dir = temp("ranges");
        let store = ResultsDir::create(&dir, &small_settings()).unwrap();
        type Change = Box<dyn Fn(&mut RunRecord)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|r| r.final_accuracy = 7.5), "final accuracy 7.5"),
            (Box::new(|r| r.curve[0].accuracy = -0.1), "outside [0, 1]"),
            (Box::new(|r| r.seed ^= 1), "not this run's seed"),
            (Box::new(|r| r.iterations = 30), "30 iterations"),
            (Box::new(|r| r.settings_hash = "x".into()), "other settings"),
            (
                Box::new(|r| r.loss_curve.pop().map(|_| ()).unwrap_or(())),
                "not marked diverged",
            ),
            (
                Box::new(|r| r.diverged_at = Some(10)),
                "marked diverged at iteration 10",
            ),
            (Box::new(|r| r.wall_seconds = -1.0), "wall time"),
            (Box::new(|r| r.train_samples = 5), "fewer than one batch"),
            (
                Box::new(|r| r.protocol.name = "../x".into()),
                "protocol is invalid",
            ),
        ];
        for (change, expected) in &cases {
            let mut bad = record(&store, 0.1, 0);
            change(&mut bad);
            // Written with a valid checksum, as a careless program might.
            let path = store.run_path("raw", 0.1, 0);
            write_atomic(&path, &bad.sealed().1).unwrap();
            let err = store.runs().unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_run_is_adopted_only_where_its_settings_give_it_the_same_numbers() {
        let (a, b, c) = (temp("adopt-a"), temp("adopt-b"), temp("adopt-c"));
        let from = ResultsDir::create(&a, &small_settings()).unwrap();
        let mut longer_pretraining = small_settings();
        longer_pretraining.pretrain_iterations = 300;
        let to = ResultsDir::create(&b, &longer_pretraining).unwrap();
        let written = from.write_run(&record(&from, 0.1, 0)).unwrap();
        // A raw run reads nothing of the pretraining: it is the other directory's too.
        let adopted = to.adopt_run(&from, &written).unwrap();
        assert_eq!(adopted.settings_hash, to.settings_hash());
        assert_eq!(adopted.curve, written.curve);
        let beside = format!("../{}", a.file_name().unwrap().to_string_lossy());
        assert_eq!(
            adopted.provenance.trained_in.as_deref(),
            Some(beside.as_str())
        );
        assert_eq!(to.runs().unwrap(), vec![adopted.clone()]);
        // Copied on, it still names where it was trained.
        let mut same = small_settings();
        same.pretrain_iterations = 400;
        let third = ResultsDir::create(&c, &same).unwrap();
        let again = third.adopt_run(&to, &adopted).unwrap();
        assert_eq!(again.provenance.trained_in, adopted.provenance.trained_in);
        // Other target settings, or a run from a pretrained backbone, are refused.
        let mut other = written.clone();
        other.protocol = crate::Protocol::preset("frozen").unwrap();
        let err = to.adopt_run(&from, &other).unwrap_err().to_string();
        assert!(
            err.contains("runs of frozen")
                && err.contains("pretrain_iterations: 1000 there, 300 now"),
            "{err}"
        );
        let mut longer = small_settings();
        longer.iterations = 30;
        std::fs::remove_dir_all(&c).unwrap();
        let third = ResultsDir::create(&c, &longer).unwrap();
        let err = third.adopt_run(&from, &written).unwrap_err().to_string();
        assert!(err.contains("iterations: 20 there, 30 now"), "{err}");
        for dir in [a, b, c] {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn shared_keys_follow_what_each_record_reads() {
        let base = small_settings();
        let raw = crate::Protocol::preset("raw").unwrap();
        let frozen = crate::Protocol::preset("frozen").unwrap();
        let key = |s: &TrainingSettings, kind| s.shared_key(kind);
        type Edit = fn(&mut TrainingSettings);
        // (edit, raw runs the same, frozen runs the same, pretrainings the same)
        let cases: [(Edit, bool, bool, bool); 8] = [
            (|s| s.pretrain_iterations = 300, true, false, false),
            (|s| s.pretrain_learning_rate = 1e-4, true, false, false),
            (|s| s.source_classes = vec![0, 1, 2], true, false, false),
            (|s| s.iterations = 30, false, false, true),
            (
                |s| s.subset = crate::SubsetRule::Stratified,
                false,
                false,
                true,
            ),
            (|s| s.target_classes = vec![6, 7], false, false, true),
            (|s| s.network.fc_width = 64, false, false, false),
            (|s| s.batch_size = 50, false, false, false),
        ];
        for (i, (edit, raw_same, frozen_same, pretrain_same)) in cases.into_iter().enumerate() {
            let mut other = base.clone();
            edit(&mut other);
            assert_eq!(
                key(&base, RecordKind::Run(&raw, 1)) == key(&other, RecordKind::Run(&raw, 1)),
                raw_same,
                "case {i}"
            );
            assert_eq!(
                key(&base, RecordKind::Run(&frozen, 1)) == key(&other, RecordKind::Run(&frozen, 1)),
                frozen_same,
                "case {i}"
            );
            assert_eq!(
                key(&base, RecordKind::Pretraining) == key(&other, RecordKind::Pretraining),
                pretrain_same,
                "case {i}"
            );
        }
        // The evaluation interval reaches a pretraining only through its own interval.
        let mut long = base.clone();
        long.pretrain_iterations = 1000;
        let mut other = long.clone();
        other.eval_every = 20;
        assert_eq!(long.pretrain_eval_every(), other.pretrain_eval_every());
        assert_eq!(
            key(&long, RecordKind::Pretraining),
            key(&other, RecordKind::Pretraining)
        );
        // Protocols of one name but other definitions never share.
        let mut slower = raw.clone();
        slower.learning_rate = 1e-4;
        assert_ne!(
            key(&base, RecordKind::Run(&raw, 1)),
            key(&base, RecordKind::Run(&slower, 1))
        );
    }

    #[test]
    fn shared_keys_follow_the_sources_a_run_draws_from() {
        let base = small_settings();
        let raw = crate::Protocol::preset("raw").unwrap();
        let frozen = crate::Protocol::preset("frozen").unwrap();
        let held = |sources: &str| TrainingSettings {
            vary: Some(sources.parse().unwrap()),
            ..base.clone()
        };
        let key = |s: &TrainingSettings, kind| s.shared_key(kind);
        // Repetition 0 draws every source from its own seed, whatever varies.
        for protocol in [&raw, &frozen] {
            assert_eq!(
                key(&base, RecordKind::Run(protocol, 0)),
                key(&held("order"), RecordKind::Run(protocol, 0))
            );
            assert_ne!(
                key(&base, RecordKind::Run(protocol, 1)),
                key(&held("order"), RecordKind::Run(protocol, 1))
            );
        }
        // A source a protocol does not draw from changes nothing of its runs.
        assert_eq!(
            key(&held("init,order"), RecordKind::Run(&raw, 3)),
            key(
                &held("init,order,pretraining,dropout"),
                RecordKind::Run(&raw, 3)
            )
        );
        assert_ne!(
            key(&held("init,order"), RecordKind::Run(&frozen, 3)),
            key(&held("init,order,pretraining"), RecordKind::Run(&frozen, 3))
        );
        // Naming every variable source is the default, in the key and in the hash.
        let all = held("init,order,dropout,pretraining");
        assert_eq!(
            key(&base, RecordKind::Run(&frozen, 2)),
            key(&all, RecordKind::Run(&frozen, 2))
        );
        assert_eq!(all.clone().canonical().hash(), base.hash());
        assert_ne!(all.hash(), base.hash());
        // Pretrainings do not read it.
        assert_eq!(
            key(&base, RecordKind::Pretraining),
            key(&held("init"), RecordKind::Pretraining)
        );
    }

    #[test]
    fn a_diverged_record_reads_back() {
        let dir = temp("diverged");
        let store = ResultsDir::create(&dir, &small_settings()).unwrap();
        let mut diverged = record(&store, 0.1, 0);
        diverged.loss_curve.truncate(1);
        diverged.diverged_at = Some(20);
        store.write_run(&diverged).unwrap();
        let text = std::fs::read_to_string(store.run_path("raw", 0.1, 0)).unwrap();
        assert!(
            text.contains("\"diverged_at\": 20") && !text.contains("\"loss\": null"),
            "{text}"
        );
        assert_eq!(store.runs().unwrap()[0].diverged_at, Some(20));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_creators_with_other_settings_agree_on_one() {
        let dir = temp("race");
        let outcomes: Vec<bool> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8u32)
                .map(|i| {
                    let dir = &dir;
                    scope.spawn(move || {
                        let mut settings = small_settings();
                        settings.iterations = 20 + 10 * (i % 2);
                        ResultsDir::create(dir, &settings).is_ok()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        // Exactly the workers sharing the winner's settings succeed.
        let winner = ResultsDir::open(&dir).unwrap().settings().iterations;
        for (i, ok) in outcomes.iter().enumerate() {
            assert_eq!(*ok, 20 + 10 * (i as u32 % 2) == winner, "worker {i}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn a_link_in_the_way_is_replaced_never_followed() {
        let dir = temp("link");
        std::fs::create_dir_all(&dir).unwrap();
        let outside = dir.join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        let path = dir.join("table.csv");
        std::os::unix::fs::symlink(&outside, &path).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any bytes under a record's name, or a written record with bytes changed, are
            /// refused in one line naming the file; never a panic, never counted.
            #[test]
            fn the_record_reader_takes_arbitrary_bytes(
                noise in prop::collection::vec(any::<u8>(), 0..300),
                flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
                use_noise in any::<bool>(),
            ) {
                let dir = temp(&format!("fuzz-{}", noise.len()));
                let store = ResultsDir::create(&dir, &small_settings()).unwrap();
                let path = store.run_path("raw", 0.1, 0);
                let bytes = if use_noise {
                    noise
                } else {
                    let (_, mut bytes) = record(&store, 0.1, 0).sealed();
                    for (at, xor) in flips {
                        let i = at.index(bytes.len());
                        bytes[i] ^= xor;
                    }
                    bytes
                };
                std::fs::write(&path, &bytes).unwrap();
                let err = store.runs().unwrap_err().to_string();
                prop_assert!(err.contains("raw-p0.1-rep-00.json") && !err.contains('\n'), "{}", err);
                prop_assert!(store.finished_run(&path).is_err());
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
    }
}
