//! The plan of a study: every run in canonical order, stacks of runs trained together, and
//! the slice of the plan a process runs (`Shard`).

use transfer_records::{Protocol, StudyConfig};

use crate::error::{Result, StudyError};

/// One target-task run of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// The protocol.
    pub protocol: Protocol,
    /// The proportion.
    pub proportion: f64,
    /// The repetition.
    pub repetition: u32,
}

impl PlannedRun {
    /// A short label: `frozen p=0.01 rep 3`.
    pub fn label(&self) -> String {
        format!(
            "{} p={} rep {}",
            self.protocol.name, self.proportion, self.repetition
        )
    }
}

/// Every run of the study in canonical order: repetition-major, so that an interrupted
/// study has complete repetitions rather than complete protocols, then protocol, then
/// proportion.
pub fn plan(config: &StudyConfig) -> Vec<PlannedRun> {
    let mut runs = Vec::with_capacity(config.num_runs());
    for repetition in 0..config.repetitions {
        for protocol in &config.protocols {
            for &proportion in &config.proportions {
                runs.push(PlannedRun {
                    protocol: protocol.clone(),
                    proportion,
                    repetition,
                });
            }
        }
    }
    runs
}

/// Runs trained together, in the plan's order: runs of one protocol and proportion whose
/// repetitions fall in the same block of `size` (`0..size`, `size..2 * size`, ...). A stack's
/// members depend only on the plan and `size`, never on what is already finished. With
/// `size` 1 every run is a stack of its own.
pub fn stacks(runs: &[PlannedRun], size: usize) -> Vec<Vec<PlannedRun>> {
    let size = size.max(1) as u32;
    let mut stacks: Vec<Vec<PlannedRun>> = Vec::new();
    for run in runs {
        let block = run.repetition / size;
        let same = |s: &&mut Vec<PlannedRun>| {
            s.first().is_some_and(|f| {
                f.protocol == run.protocol
                    && f.proportion.to_bits() == run.proportion.to_bits()
                    && f.repetition / size == block
            })
        };
        match stacks.iter_mut().find(same) {
            Some(stack) => stack.push(run.clone()),
            None => stacks.push(vec![run.clone()]),
        }
    }
    stacks
}

/// A short label for a stack: `frozen p=0.01 rep 3`, or `frozen p=0.01 reps 0-9`.
pub fn stack_label(stack: &[PlannedRun]) -> String {
    match stack {
        [] => String::new(),
        [run] => run.label(),
        [first, .., last] => format!(
            "{} p={} reps {}-{}",
            first.protocol.name, first.proportion, first.repetition, last.repetition
        ),
    }
}

/// A slice `index` of `count` of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based slice index.
    pub index: usize,
    /// Number of slices.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N`, or `auto/N` taking I from `SLURM_ARRAY_TASK_ID` (Slurm job arrays) or
    /// `JOB_COMPLETION_INDEX` (Kubernetes Indexed Jobs). `env` looks variables up.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let bad = |why: &str| {
            StudyError::Config(format!(
                "--shard {text}: {why} (expected I/N with 0 <= I < N, or auto/N)"
            ))
        };
        let (i, n) = text.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        let index: usize = if i.trim() == "auto" {
            let (var, value) = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
                .iter()
                .find_map(|v| env(v).map(|value| (*v, value)))
                .ok_or_else(|| {
                    bad("neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set")
                })?;
            value
                .trim()
                .parse()
                .map_err(|_| bad(&format!("{var}={value} is not a number")))?
        } else {
            i.trim().parse().map_err(|_| bad("I is not a number"))?
        };
        if count == 0 || index >= count {
            return Err(bad("out of range"));
        }
        Ok(Shard { index, count })
    }

    /// The runs (or stacks) of this slice: every `count`-th of them, starting at `index`, so
    /// each slice gets a similar mix of protocols and proportions.
    pub fn select<T: Clone>(&self, runs: &[T]) -> Vec<T> {
        runs.iter()
            .skip(self.index)
            .step_by(self.count)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preset;

    #[test]
    fn shards_partition_the_plan() {
        let config = Preset::Paper.config();
        let runs = plan(&config);
        assert_eq!(runs.len(), 160);
        let mut seen = Vec::new();
        for index in 0..7 {
            let shard = Shard { index, count: 7 };
            let part = shard.select(&runs);
            assert!(part.len() == 22 || part.len() == 23);
            seen.extend(part.into_iter().map(|r| r.label()));
        }
        seen.sort();
        let mut all: Vec<String> = runs.iter().map(PlannedRun::label).collect();
        all.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn stacks_hold_blocks_of_repetitions_of_one_protocol_and_proportion() {
        let config = Preset::Paper.config();
        let runs = plan(&config);
        let alone = stacks(&runs, 1);
        assert_eq!(alone.len(), 160);
        assert!(
            alone
                .iter()
                .zip(&runs)
                .all(|(s, r)| s.len() == 1 && s[0] == *r)
        );
        let by_four = stacks(&runs, 4);
        // Repetitions 0-3, 4-7 and 8-9 of each of the 16 protocol-proportion pairs.
        assert_eq!(by_four.len(), 48);
        for stack in &by_four {
            let first = &stack[0];
            assert!(stack.iter().all(|r| r.protocol == first.protocol
                && r.proportion == first.proportion
                && r.repetition / 4 == first.repetition / 4));
            assert_eq!(stack.len(), if first.repetition == 8 { 2 } else { 4 });
        }
        assert_eq!(stack_label(&by_four[0]), "raw p=0.005 reps 0-3");
        assert_eq!(by_four.iter().map(Vec::len).sum::<usize>(), 160);
    }

    #[test]
    fn shard_indices_come_from_slurm_or_kubernetes() {
        let slurm = |v: &str| (v == "SLURM_ARRAY_TASK_ID").then(|| "3".to_string());
        assert_eq!(
            Shard::parse("auto/4", slurm).unwrap(),
            Shard { index: 3, count: 4 }
        );
        let k8s = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "0".to_string());
        assert_eq!(
            Shard::parse("auto/2", k8s).unwrap(),
            Shard { index: 0, count: 2 }
        );
        assert!(
            Shard::parse("auto/2", |_| None)
                .unwrap_err()
                .to_string()
                .contains("SLURM_ARRAY_TASK_ID")
        );
        assert!(Shard::parse("4/4", |_| None).is_err());
        assert!(Shard::parse("1/0", |_| None).is_err());
        assert_eq!(
            Shard::parse("1/3", |_| None).unwrap(),
            Shard { index: 1, count: 3 }
        );
    }
}
