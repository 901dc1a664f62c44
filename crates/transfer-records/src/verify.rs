//! What a record read back must satisfy before it is trusted: its bytes are the ones written
//! (checksum), its content matches its file name and the settings of its directory, and its
//! values are in range.

use serde::Serialize;

use crate::config::TrainingSettings;
use crate::run::{CurvePoint, LossPoint, PretrainRecord, RunRecord};
use crate::seeds::{pretrain_seed, run_seed};

const CHECKSUM_KEY: &[u8] = b"\"checksum\": \"";
const PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where the checksum's 64 hex digits sit in a record's bytes: after the last `"checksum": "`
/// (the record's last field, so no text of another field can follow it).
fn checksum_span(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = bytes
        .windows(CHECKSUM_KEY.len())
        .rposition(|w| w == CHECKSUM_KEY)?
        + CHECKSUM_KEY.len();
    let end = start + PLACEHOLDER.len();
    (bytes.len() > end && bytes[end] == b'"').then_some(start..end)
}

/// A record whose file carries a checksum of its own bytes: the SHA-256 of the file with the
/// checksum's 64 hex digits replaced by zeros.
pub(crate) trait Checksummed: Serialize + Clone {
    fn checksum_field(&mut self) -> &mut String;

    /// The record as it is written (checksum set) and its file's bytes (pretty JSON).
    fn sealed(&self) -> (Self, Vec<u8>) {
        let mut sealed = self.clone();
        *sealed.checksum_field() = PLACEHOLDER.to_owned();
        let mut bytes = serde_json::to_vec_pretty(&sealed).unwrap_or_default();
        let hash = crate::sha256_hex_bytes(&bytes);
        if let Some(span) = checksum_span(&bytes) {
            bytes[span].copy_from_slice(hash.as_bytes());
        }
        *sealed.checksum_field() = hash;
        (sealed, bytes)
    }
}

/// Checks that a record file's bytes are the ones written: its checksum matches them.
pub(crate) fn check_bytes(bytes: &[u8]) -> Result<(), String> {
    let Some(span) = checksum_span(bytes) else {
        return Err("it carries no checksum (not written by this version of the study)".into());
    };
    let stored = bytes[span.clone()].to_vec();
    let mut blank = bytes.to_vec();
    blank[span].copy_from_slice(PLACEHOLDER.as_bytes());
    if stored != crate::sha256_hex_bytes(&blank).as_bytes() {
        return Err("its checksum does not match its bytes (edited or damaged)".into());
    }
    Ok(())
}

impl Checksummed for RunRecord {
    fn checksum_field(&mut self) -> &mut String {
        &mut self.checksum
    }
}

impl Checksummed for PretrainRecord {
    fn checksum_field(&mut self) -> &mut String {
        &mut self.checksum
    }
}

/// The file name of the record of a run.
pub fn run_file_name(protocol: &str, proportion: f64, repetition: u32) -> String {
    format!("{protocol}-p{proportion}-rep-{repetition:02}.json")
}

/// The file name of the record of a pretraining.
pub fn pretrain_file_name(repetition: u32) -> String {
    format!("rep-{repetition:02}.json")
}

/// The file name of the weights of a pretraining.
pub fn weights_file_name(repetition: u32) -> String {
    format!("rep-{repetition:02}.bpk")
}

/// The iterations at which a run of `iterations` scored every `eval_every` is evaluated:
/// every multiple of `eval_every`, and the last iteration.
pub fn eval_points(iterations: u32, eval_every: u32) -> Vec<u32> {
    let every = eval_every.max(1);
    let mut points: Vec<u32> = (1..=iterations / every).map(|k| k * every).collect();
    if !iterations.is_multiple_of(every) {
        points.push(iterations);
    }
    points
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn fraction(value: f64) -> bool {
    value.is_finite() && (0.0..=1.0).contains(&value)
}

/// Checks an accuracy curve ending at `iterations` and its loss curve (cut at `diverged_at`).
fn check_curves(
    curve: &[CurvePoint],
    loss_curve: &[LossPoint],
    diverged_at: Option<u32>,
    iterations: u32,
) -> Result<(), String> {
    check(!curve.is_empty(), || "its accuracy curve is empty".into())?;
    for (i, point) in curve.iter().enumerate() {
        check(fraction(point.accuracy), || {
            format!(
                "accuracy {} at iteration {} is outside [0, 1]",
                point.accuracy, point.iteration
            )
        })?;
        check(
            point.iteration >= 1
                && point.iteration <= iterations
                && (i == 0 || point.iteration > curve[i - 1].iteration),
            || {
                format!(
                    "curve point at iteration {} is out of order",
                    point.iteration
                )
            },
        )?;
    }
    check(
        curve.last().map(|p| p.iteration) == Some(iterations),
        || format!("its accuracy curve does not end at iteration {iterations}"),
    )?;
    let kept = loss_curve.len();
    check(kept <= curve.len(), || {
        "its loss curve is longer than its accuracy curve".into()
    })?;
    for (loss, point) in loss_curve.iter().zip(curve) {
        check(loss.iteration == point.iteration, || {
            format!(
                "loss point at iteration {} matches no accuracy point",
                loss.iteration
            )
        })?;
        check(loss.loss.is_finite() && loss.loss >= 0.0, || {
            format!(
                "loss {} at iteration {} is not a finite non-negative number",
                loss.loss, loss.iteration
            )
        })?;
    }
    match diverged_at {
        None => check(kept == curve.len(), || {
            "its loss curve stops early but the run is not marked diverged".into()
        }),
        Some(at) => check(curve.get(kept).map(|p| p.iteration) == Some(at), || {
            format!("it is marked diverged at iteration {at}, which its curves do not show")
        }),
    }
}

fn check_settings_hash(recorded: &str, directory: &str) -> Result<(), String> {
    check(recorded == directory, || {
        "it was made with other settings than its directory's settings.json".into()
    })
}

/// Checks a run record against the file name it was read from and its directory's settings.
/// The error is a sentence without the path; callers add it.
pub(crate) fn check_run(
    record: &RunRecord,
    file_name: &str,
    settings: &TrainingSettings,
    settings_hash: &str,
) -> Result<(), String> {
    check_settings_hash(&record.settings_hash, settings_hash)?;
    record
        .protocol
        .validate()
        .map_err(|e| format!("its protocol is invalid ({e})"))?;
    check(record.proportion > 0.0 && record.proportion <= 1.0, || {
        format!("proportion {} is outside (0, 1]", record.proportion)
    })?;
    let expected = run_file_name(&record.protocol.name, record.proportion, record.repetition);
    check(file_name == expected, || {
        format!(
            "it holds {} p={} rep {}, whose record is named {expected}",
            record.protocol.name, record.proportion, record.repetition
        )
    })?;
    let seed = run_seed(
        settings.seed,
        &record.protocol.name,
        record.proportion,
        record.repetition,
    );
    check(record.seed == seed, || {
        format!("seed {} is not this run's seed {seed}", record.seed)
    })?;
    let pretrained = record.protocol.needs_pretraining().then(|| {
        let pretraining = settings.draw_of(crate::vary::Source::Pretraining, record.repetition);
        pretrain_seed(settings.seed, pretraining)
    });
    check(record.pretrain_seed == pretrained, || {
        format!(
            "pretrained-model seed {:?} is not this run's {pretrained:?}",
            record.pretrain_seed
        )
    })?;
    check(record.iterations == settings.iterations, || {
        format!(
            "{} iterations where the settings have {}",
            record.iterations, settings.iterations
        )
    })?;
    check(record.train_samples >= settings.batch_size, || {
        format!(
            "{} training images, fewer than one batch of {}",
            record.train_samples, settings.batch_size
        )
    })?;
    check_curves(
        &record.curve,
        &record.loss_curve,
        record.diverged_at,
        record.iterations,
    )?;
    let points: Vec<u32> = record.curve.iter().map(|p| p.iteration).collect();
    check(
        points == eval_points(settings.iterations, settings.eval_every),
        || {
            format!(
                "its evaluation points are not every {} iterations",
                settings.eval_every
            )
        },
    )?;
    let last = record.curve.last().map(|p| p.accuracy);
    check(
        last.map(f64::to_bits) == Some(record.final_accuracy.to_bits()),
        || {
            format!(
                "final accuracy {} is not its curve's last value",
                record.final_accuracy
            )
        },
    )?;
    check(
        record.wall_seconds.is_finite() && record.wall_seconds >= 0.0,
        || format!("wall time {} is not a duration", record.wall_seconds),
    )
}

/// Checks a pretraining record against its file name and its directory's settings (not its
/// weights file, which the caller hashes).
pub(crate) fn check_pretrain(
    record: &PretrainRecord,
    file_name: &str,
    settings: &TrainingSettings,
    settings_hash: &str,
) -> Result<(), String> {
    check_settings_hash(&record.settings_hash, settings_hash)?;
    let expected = pretrain_file_name(record.repetition);
    check(file_name == expected, || {
        format!(
            "it holds the pretraining of rep {}, whose record is named {expected}",
            record.repetition
        )
    })?;
    let weights = weights_file_name(record.repetition);
    check(record.weights_file == weights, || {
        format!(
            "its weights file {:?} is not {weights}",
            record.weights_file
        )
    })?;
    let seed = pretrain_seed(settings.seed, record.repetition);
    check(record.seed == seed, || {
        format!("seed {} is not this pretraining's seed {seed}", record.seed)
    })?;
    check(record.iterations == settings.pretrain_iterations, || {
        format!(
            "{} iterations where the settings have {}",
            record.iterations, settings.pretrain_iterations
        )
    })?;
    check_curves(
        &record.curve,
        &record.loss_curve,
        record.diverged_at,
        record.iterations,
    )?;
    let last = record.curve.last().map(|p| p.accuracy);
    check(
        last.map(f64::to_bits) == Some(record.source_test_accuracy.to_bits()),
        || "its source test accuracy is not its curve's last value".into(),
    )?;
    check(
        record.wall_seconds.is_finite() && record.wall_seconds >= 0.0,
        || format!("wall time {} is not a duration", record.wall_seconds),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_points_are_the_multiples_and_the_last_iteration() {
        assert_eq!(eval_points(20, 10), [10, 20]);
        assert_eq!(eval_points(25, 10), [10, 20, 25]);
        assert_eq!(eval_points(5, 10), [5]);
    }

    #[test]
    fn any_changed_byte_fails_the_checksum() {
        #[derive(Serialize, Clone)]
        struct R {
            device: String,
            checksum: String,
        }
        impl Checksummed for R {
            fn checksum_field(&mut self) -> &mut String {
                &mut self.checksum
            }
        }
        let record = R {
            device: "a \"checksum\": \"trap".into(),
            checksum: String::new(),
        };
        let (sealed, bytes) = record.sealed();
        assert_eq!(sealed.checksum.len(), 64);
        assert_eq!(check_bytes(&bytes), Ok(()));
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            assert!(check_bytes(&changed).is_err(), "byte {i}");
        }
        assert!(check_bytes(b"{}").unwrap_err().contains("no checksum"));
    }
}
