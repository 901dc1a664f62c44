//! Tidy data: `runs.csv`, one row per run, and `curves.csv`, one row per evaluation, for
//! loading every number of a study into a data frame in one line.

use std::fmt::Write;

use transfer_records::RunRecord;

/// The exact header of `runs.csv`.
pub const RUNS_HEADER: &str = "protocol,proportion,repetition,seed,train_samples,final_accuracy,final_loss,diverged,wall_seconds,backend";

/// The exact header of `curves.csv`.
pub const CURVES_HEADER: &str = "protocol,proportion,repetition,iteration,accuracy,loss";

/// Runs in table order: `protocol_order` first, then by proportion and repetition.
fn ordered<'a>(runs: &'a [RunRecord], protocol_order: &[String]) -> Vec<&'a RunRecord> {
    let rank = |name: &str| {
        protocol_order
            .iter()
            .position(|p| p == name)
            .unwrap_or(protocol_order.len())
    };
    let mut sorted: Vec<&RunRecord> = runs.iter().collect();
    sorted.sort_by(|a, b| {
        (rank(&a.protocol.name), &a.protocol.name)
            .cmp(&(rank(&b.protocol.name), &b.protocol.name))
            .then(a.proportion.total_cmp(&b.proportion))
            .then(a.repetition.cmp(&b.repetition))
    });
    sorted
}

/// `runs.csv`: every run's outcome. `final_loss` is the mean training loss of the last
/// evaluation interval, empty for a diverged run; numbers are written in full precision.
pub fn runs_csv(runs: &[RunRecord], protocol_order: &[String]) -> String {
    let mut out = format!("{RUNS_HEADER}\n");
    for r in ordered(runs, protocol_order) {
        let final_loss = match (r.diverged_at, r.loss_curve.last()) {
            (None, Some(last)) => last.loss.to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{final_loss},{},{},{}",
            r.protocol.name,
            r.proportion,
            r.repetition,
            r.seed,
            r.train_samples,
            r.final_accuracy,
            r.diverged_at.is_some(),
            r.wall_seconds,
            r.backend.backend
        );
    }
    out
}

/// `curves.csv`: test accuracy and mean training loss at every evaluation of every run; the
/// loss is empty from the point a run diverged.
pub fn curves_csv(runs: &[RunRecord], protocol_order: &[String]) -> String {
    let mut out = format!("{CURVES_HEADER}\n");
    for r in ordered(runs, protocol_order) {
        for (i, point) in r.curve.iter().enumerate() {
            let loss = r
                .loss_curve
                .get(i)
                .map(|l| l.loss.to_string())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{},{},{},{},{},{loss}",
                r.protocol.name, r.proportion, r.repetition, point.iteration, point.accuracy
            );
        }
    }
    out
}
