//! How a study's runs share the machine's cores: how many jobs train at once and the threads
//! each spreads its work over; which splits of the cores exist; and each split's costs,
//! measured with all its jobs at once, so that contention for the cores, caches and memory is
//! in the figures.

use crate::cost::Costs;
use crate::error::{Result, StudyError};

/// `jobs` runs (or stacks) trained at once, each spreading its work over a rayon pool of its
/// own of `threads` threads, or over the process's shared pool of a thread per core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Jobs at once (at least 1).
    pub jobs: usize,
    /// Threads of each job's own pool (`None`: the jobs share the process's pool).
    pub threads: Option<usize>,
}

impl Split {
    /// `jobs` jobs sharing the process's pool.
    pub fn shared(jobs: usize) -> Split {
        Split {
            jobs: jobs.max(1),
            threads: None,
        }
    }

    /// `jobs` jobs with pools of `threads` threads of their own.
    pub fn pools(jobs: usize, threads: usize) -> Split {
        Split {
            jobs: jobs.max(1),
            threads: Some(threads.max(1)),
        }
    }

    /// Every split of `cores` into jobs with pools of their own, at most `max_jobs` jobs and
    /// jobs x threads at most `cores`: one per number of threads that divides the cores
    /// (where the jobs it leaves are more than `max_jobs`, `max_jobs` jobs of as many threads
    /// as fit), fewest jobs first.
    pub fn candidates(cores: usize, max_jobs: usize) -> Vec<Split> {
        let (cores, max_jobs) = (cores.max(1), max_jobs.max(1));
        let mut splits: Vec<Split> = (1..=cores)
            .rev()
            .filter(|t| cores.is_multiple_of(*t))
            .map(|t| {
                let jobs = (cores / t).min(max_jobs);
                Split::pools(jobs, cores / jobs)
            })
            .collect();
        splits.dedup();
        splits
    }

    /// The pool a job of this split runs in, where it has one of its own.
    pub(crate) fn job_pool(&self) -> Result<Option<rayon::ThreadPool>> {
        self.threads
            .map(|threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| {
                        StudyError::Config(format!(
                            "--threads-per-job {threads}: cannot start a pool of threads: {e}"
                        ))
                    })
            })
            .transpose()
    }

    /// `measure` run by every job of the split at once, each in its own pool where it has one
    /// (else alone, as one job in the shared pool): the mean of the jobs' costs, what one job
    /// sees while the others run. Disturbed where any job's measurement was.
    pub fn costs_at_once(&self, measure: impl Fn() -> Result<Costs> + Sync) -> Result<Costs> {
        let at_once = if self.threads.is_some() { self.jobs } else { 1 };
        let measure = &measure;
        let costs: Vec<Costs> = std::thread::scope(|scope| {
            let jobs: Vec<_> = (0..at_once)
                .map(|_| {
                    scope.spawn(move || match self.job_pool()? {
                        Some(pool) => pool.install(measure),
                        None => measure(),
                    })
                })
                .collect();
            jobs.into_iter()
                .map(|job| job.join().unwrap_or(Err(StudyError::WorkerFailed)))
                .collect::<Result<_>>()
        })?;
        let n = costs.len() as f64;
        let mean = |f: fn(&Costs) -> f64| costs.iter().map(f).sum::<f64>() / n;
        Ok(Costs {
            step: mean(|c| c.step),
            frozen_step: mean(|c| c.frozen_step),
            eval_image: mean(|c| c.eval_image),
            frozen_reuses_features: costs.iter().all(|c| c.frozen_reuses_features),
            disturbed: costs.iter().any(|c| c.disturbed),
        })
    }

    /// Whether the split's jobs are measured all at once ([`Split::costs_at_once`]), so that a
    /// job's measured time divided by the jobs is the study's.
    pub fn measured_at_once(&self) -> bool {
        self.threads.is_some() || self.jobs == 1
    }
}

impl std::fmt::Display for Split {
    /// `2 jobs x 1 thread`, or `2 jobs sharing the cores`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        match self.threads {
            Some(t) => write!(f, "{} x {}", plural(self.jobs, "job"), plural(t, "thread")),
            None => write!(f, "{} sharing the cores", plural(self.jobs, "job")),
        }
    }
}

/// How a study chooses its split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// This split.
    Given(Split),
    /// The split of the `cores` into at most `max_jobs` jobs that the cost model, measuring
    /// each candidate ([`Split::candidates`]) with all its jobs at once, finds fastest for the
    /// plan at hand. Measured only where there is work to do.
    Fastest {
        /// The cores to split.
        cores: usize,
        /// The most jobs (what fits in memory).
        max_jobs: usize,
    },
}

impl Jobs {
    /// The splits to measure: the given one, or every candidate.
    pub fn splits(&self) -> Vec<Split> {
        match *self {
            Jobs::Given(split) => vec![split],
            Jobs::Fastest { cores, max_jobs } => Split::candidates(cores, max_jobs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_divide_the_cores_and_respect_the_most_jobs() {
        let of = |cores, max| {
            Split::candidates(cores, max)
                .iter()
                .map(|s| (s.jobs, s.threads.unwrap_or(0)))
                .collect::<Vec<_>>()
        };
        assert_eq!(of(2, 2), [(1, 2), (2, 1)]);
        assert_eq!(of(16, 16), [(1, 16), (2, 8), (4, 4), (8, 2), (16, 1)]);
        // Memory allows 3 jobs: the splits of more are 3 jobs of as many threads as fit.
        assert_eq!(of(16, 3), [(1, 16), (2, 8), (3, 5)]);
        assert_eq!(of(6, 6), [(1, 6), (2, 3), (3, 2), (6, 1)]);
        assert_eq!(of(1, 4), [(1, 1)]);
        for (cores, max) in [(2, 2), (16, 3), (12, 5), (7, 7)] {
            for s in Split::candidates(cores, max) {
                assert!(
                    s.jobs <= max && s.jobs * s.threads.unwrap_or(0) <= cores,
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn splits_read_as_words() {
        assert_eq!(Split::pools(2, 1).to_string(), "2 jobs x 1 thread");
        assert_eq!(Split::pools(1, 16).to_string(), "1 job x 16 threads");
        assert_eq!(Split::shared(2).to_string(), "2 jobs sharing the cores");
    }

    #[test]
    fn costs_at_once_are_the_mean_of_every_job_measured_together() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let measure = || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let threads = rayon::current_num_threads() as f64;
            Ok(Costs {
                step: threads,
                frozen_step: 1.0,
                eval_image: 0.5,
                frozen_reuses_features: true,
                disturbed: n == 2,
            })
        };
        let c = Split::pools(3, 2).costs_at_once(measure).unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        // Each job measured in its own pool of 2 threads; one was disturbed.
        assert_eq!((c.step, c.frozen_step, c.disturbed), (2.0, 1.0, true));
        let c = Split::shared(2).costs_at_once(measure).unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
        assert!(!c.disturbed && !Split::shared(2).measured_at_once());
    }
}
