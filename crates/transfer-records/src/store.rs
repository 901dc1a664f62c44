//! The results directory: one JSON record per finished run and per pretrained model, each
//! written atomically, so a study killed at any moment resumes where it stopped.
//!
//! ```text
//! DIR/settings.json              the TrainingSettings every record here was made with
//! DIR/study.json                 the last study configuration run into DIR
//! DIR/pretrained/rep-03.json     a PretrainRecord; rep-03.bpk beside it holds the weights
//! DIR/runs/frozen-p0.01-rep-03.json   a RunRecord
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{StudyConfig, TrainingSettings};
use crate::run::{PretrainRecord, RunRecord};

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

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync,
/// rename, fsync of the directory. Readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Parse {
        path: path.to_owned(),
        what: e.to_string(),
    })?;
    write_atomic(path, &json).map_err(io(path))
}

/// Reads a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Parse {
        path: path.to_owned(),
        what: e.to_string(),
    })
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
    /// other settings is refused, naming the settings that differ.
    pub fn create(root: &Path, settings: &TrainingSettings) -> Result<ResultsDir> {
        for sub in ["runs", "pretrained"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        let path = root.join("settings.json");
        if path.exists() {
            let existing: TrainingSettings = read_json(&path)?;
            if existing != *settings {
                return Err(StoreError::Mismatch {
                    dir: root.to_owned(),
                    what: differences(&existing, settings),
                });
            }
        } else {
            write_json(&path, settings)?;
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
        let settings: TrainingSettings = read_json(&path)?;
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
            .join(format!("{protocol}-p{proportion}-rep-{repetition:02}.json"))
    }

    /// Where the record of the pretraining of `repetition` lives.
    pub fn pretrain_path(&self, repetition: u32) -> PathBuf {
        self.root
            .join("pretrained")
            .join(format!("rep-{repetition:02}.json"))
    }

    /// Where the pretrained backbone weights of `repetition` live.
    pub fn weights_path(&self, repetition: u32) -> PathBuf {
        self.root
            .join("pretrained")
            .join(format!("rep-{repetition:02}.bpk"))
    }

    /// The finished record at `path`, if there is one. A record of other settings is an
    /// error, never silently reused.
    pub fn finished_run(&self, path: &Path) -> Result<Option<RunRecord>> {
        if !path.exists() {
            return Ok(None);
        }
        let record: RunRecord = read_json(path)?;
        self.check_hash(path, &record.settings_hash)?;
        Ok(Some(record))
    }

    /// The finished pretraining of `repetition`, if both its record and weights exist.
    pub fn finished_pretrain(&self, repetition: u32) -> Result<Option<PretrainRecord>> {
        let path = self.pretrain_path(repetition);
        if !path.exists() || !self.weights_path(repetition).exists() {
            return Ok(None);
        }
        let record: PretrainRecord = read_json(&path)?;
        self.check_hash(&path, &record.settings_hash)?;
        Ok(Some(record))
    }

    fn check_hash(&self, path: &Path, hash: &str) -> Result<()> {
        if hash != self.hash {
            return Err(StoreError::Mismatch {
                dir: path.to_owned(),
                what: "its settings hash differs from settings.json".into(),
            });
        }
        Ok(())
    }

    /// Writes a run record atomically.
    pub fn write_run(&self, record: &RunRecord) -> Result<PathBuf> {
        let path = self.run_path(&record.protocol.name, record.proportion, record.repetition);
        write_json(&path, record)?;
        Ok(path)
    }

    /// Writes a pretraining record atomically (after its weights).
    pub fn write_pretrain(&self, record: &PretrainRecord) -> Result<PathBuf> {
        let path = self.pretrain_path(record.repetition);
        write_json(&path, record)?;
        Ok(path)
    }

    /// Stores the configuration of the study being run.
    pub fn write_study(&self, config: &StudyConfig) -> Result<()> {
        write_json(&self.root.join("study.json"), config)
    }

    /// The configuration last stored with [`ResultsDir::write_study`], if any.
    pub fn study(&self) -> Result<Option<StudyConfig>> {
        let path = self.root.join("study.json");
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Every run record in the directory, sorted by protocol, proportion and repetition.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        let mut runs: Vec<RunRecord> = self.records_in("runs")?;
        runs.sort_by(|a, b| {
            (a.protocol.name.as_str(), a.repetition)
                .cmp(&(b.protocol.name.as_str(), b.repetition))
                .then(a.proportion.total_cmp(&b.proportion))
        });
        Ok(runs)
    }

    /// Every pretraining record, by repetition.
    pub fn pretrains(&self) -> Result<Vec<PretrainRecord>> {
        let mut records: Vec<PretrainRecord> = self.records_in("pretrained")?;
        records.sort_by_key(|r| r.repetition);
        Ok(records)
    }

    fn records_in<T: DeserializeOwned + HasHash>(&self, sub: &str) -> Result<Vec<T>> {
        let dir = self.root.join(sub);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
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
        for path in paths {
            let record: T = read_json(&path)?;
            self.check_hash(&path, record.settings_hash())?;
            out.push(record);
        }
        Ok(out)
    }
}

trait HasHash {
    fn settings_hash(&self) -> &str;
}

impl HasHash for RunRecord {
    fn settings_hash(&self) -> &str {
        &self.settings_hash
    }
}

impl HasHash for PretrainRecord {
    fn settings_hash(&self) -> &str {
        &self.settings_hash
    }
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
}
