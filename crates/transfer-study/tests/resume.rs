//! The study library on real MNIST, without the command line: an interrupted, sharded study
//! resumes to the records of an uninterrupted one, training only what is missing, and its
//! events say so.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use transfer_data::{Dataset, Manifest, Silent};
use transfer_records::{PretrainRecord, ResultsDir, RunRecord};
use transfer_study::{
    BackendDevice, Execution, Jobs, Outcome, PlanSummary, PlannedRun, Preset, Shard, Split,
    StudyConfig, StudyEvents, Workspace, run_study,
};

fn mnist() -> Dataset {
    let dir = std::env::var_os("MNIST_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist"),
        PathBuf::from,
    );
    transfer_data::ensure_dataset(&dir, &Manifest::mnist(), &Silent)
        .unwrap_or_else(|e| panic!("real MNIST is needed: set MNIST_DIR ({e})"))
}

/// The smoke preset with two protocols (one pretrained) at two proportions.
fn config() -> StudyConfig {
    let mut config = Preset::Smoke.config();
    config
        .protocols
        .retain(|p| p.name == "raw" || p.name == "frozen");
    config.proportions = vec![0.01, 0.1];
    config
}

fn workspace(dataset: &Dataset, config: &StudyConfig, out: &Path) -> Workspace {
    let backend = BackendDevice::flex();
    Workspace::new(dataset, backend, out, &config.training, &config.proportions).unwrap()
}

/// What the events said: the plans, and the runs and pretrainings trained.
#[derive(Default)]
struct Log {
    plans: Mutex<Vec<PlanSummary>>,
    runs: Mutex<Vec<String>>,
    pretrained: Mutex<Vec<u32>>,
}

impl StudyEvents for Log {
    fn planned(&self, plan: &PlanSummary) {
        self.plans.lock().unwrap().push(plan.clone());
    }
    fn pretrained(&self, _label: &str, record: &PretrainRecord) {
        self.pretrained.lock().unwrap().push(record.repetition);
    }
    fn finished(&self, label: &str, _record: &RunRecord, _done: usize, _total: usize) {
        self.runs.lock().unwrap().push(label.to_owned());
    }
}

/// A run's numbers: its label, seed, test-accuracy curve and final accuracy.
type Numbers = (String, u64, Vec<(u32, f64)>, f64);

/// The numbers of every run record, by run.
fn numbers(dir: &Path) -> Vec<Numbers> {
    let mut runs: Vec<_> = ResultsDir::open(dir)
        .unwrap()
        .runs()
        .unwrap()
        .into_iter()
        .map(|r| {
            let curve = r.curve.iter().map(|p| (p.iteration, p.accuracy)).collect();
            let label = format!("{} {} {}", r.protocol.name, r.proportion, r.repetition);
            (label, r.seed, curve, r.final_accuracy)
        })
        .collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    runs
}

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("transfer-study-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn an_interrupted_sharded_study_resumes_to_the_uninterrupted_records() {
    let (dataset, config) = (mnist(), config());
    let whole = temp("whole");
    let log = Log::default();
    let exec = Execution {
        jobs: Jobs::Given(Split::shared(2)),
        ..Execution::default()
    };
    let outcome = run_study(&workspace(&dataset, &config, &whole), &config, &exec, &log).unwrap();
    assert!(matches!(outcome, Outcome::Complete(ref files) if !files.is_empty()));
    assert_eq!(log.runs.lock().unwrap().len(), 8);
    assert!(whole.join("table.csv").is_file());

    // Shard 0 of 2, then a run of it lost as if the process had been killed before storing it.
    let parts = temp("parts");
    let ws = workspace(&dataset, &config, &parts);
    let first = Execution {
        shard: Some(Shard { index: 0, count: 2 }),
        ..Execution::default()
    };
    let log = Log::default();
    assert_eq!(
        run_study(&ws, &config, &first, &log).unwrap(),
        Outcome::ShardDone
    );
    let trained = log.runs.lock().unwrap().clone();
    assert_eq!(trained.len(), 4);
    let lost = ws.store.run_path("raw", 0.01, 0);
    assert!(trained.contains(&"raw p=0.01 rep 0".to_owned()));
    std::fs::remove_file(&lost).unwrap();
    assert!(!parts.join("table.csv").exists());

    // The whole study on that directory trains the rest and the lost run, nothing else.
    let log = Log::default();
    let outcome = run_study(&ws, &config, &Execution::default(), &log).unwrap();
    assert!(matches!(outcome, Outcome::Complete(_)));
    let plan = log.plans.lock().unwrap()[0].clone();
    assert_eq!((plan.runs, plan.finished, plan.to_run()), (8, 3, 5));
    let mut resumed = log.runs.lock().unwrap().clone();
    resumed.sort();
    let mut expected: Vec<String> = ["raw p=0.01 rep 0"]
        .into_iter()
        .map(String::from)
        .chain(
            transfer_study::plan(&config)
                .iter()
                .map(PlannedRun::label)
                .filter(|label| !trained.contains(label)),
        )
        .collect();
    expected.sort();
    assert_eq!(resumed, expected);
    assert!(
        log.pretrained.lock().unwrap().is_empty(),
        "pretrainings are kept"
    );
    assert_eq!(numbers(&parts), numbers(&whole));
    assert_eq!(
        std::fs::read(parts.join("table.csv")).unwrap(),
        std::fs::read(whole.join("table.csv")).unwrap()
    );
    for dir in [whole, parts] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn the_workspace_binds_dataset_and_backend_and_refuses_another_configuration() {
    let (dataset, mut config) = (mnist(), config());
    // Whatever the caller left there, the settings name the data and device given.
    config.training.dataset.name = "not MNIST".into();
    config.training.backend = "cuda".into();
    let out = temp("bound");
    let ws = workspace(&dataset, &config, &out);
    assert_eq!(ws.settings().dataset.name, "MNIST");
    assert_eq!(ws.settings().backend, "flex");
    assert!(ws.settings().is_published_task());
    assert_eq!(&ws.study_config(&config).unwrap().training, ws.settings());

    let mut other = config.clone();
    other.training.iterations += 1;
    let err = run_study(&ws, &other, &Execution::default(), &Log::default()).unwrap_err();
    assert!(err.to_string().contains("not those the workspace"), "{err}");
    assert!(ResultsDir::open(&out).unwrap().runs().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(out);
}
