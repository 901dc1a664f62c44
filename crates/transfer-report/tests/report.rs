//! The report from synthetic records: files, table shape, claims and figures.

use transfer_records::{
    BackendInfo, CurvePoint, LossPoint, PretrainRecord, Protocol, ResultsDir, RunRecord,
    TrainingSettings,
};
use transfer_report::{CSV_HEADER, ReportContext, StudyResults, Verdict, analyse, write_report};

/// Accuracy of a synthetic run: rises with data, frozen helps at small p.
fn accuracy(protocol: &str, p: f64, rep: u32) -> f64 {
    let base = 0.99 - 0.02 / (p * 100.0).sqrt();
    let bonus = match protocol {
        "frozen" => 0.01 / (p * 100.0).sqrt(),
        "finetune" => 0.005 / (p * 100.0).sqrt() + 0.001,
        "dropout" => 0.001,
        _ => 0.0,
    };
    base + bonus + f64::from(rep) * 1e-4
}

fn records(settings: &TrainingSettings, reps: u32) -> Vec<RunRecord> {
    let mut runs = Vec::new();
    for protocol in Protocol::presets() {
        for p in [0.005, 0.01, 0.1, 1.0] {
            for rep in 0..reps {
                let acc = accuracy(&protocol.name, p, rep);
                runs.push(RunRecord {
                    protocol: protocol.clone(),
                    proportion: p,
                    repetition: rep,
                    seed: 1,
                    pretrain_seed: None,
                    train_samples: (23_983.0 * p) as usize,
                    iterations: 100,
                    curve: (1..=10)
                        .map(|i| CurvePoint {
                            iteration: i * 10,
                            accuracy: acc - 0.3 / f64::from(i * i),
                        })
                        .collect(),
                    loss_curve: vec![LossPoint {
                        iteration: 100,
                        loss: 0.1,
                    }],
                    final_accuracy: acc,
                    wall_seconds: 1.0,
                    backend: BackendInfo {
                        backend: "flex".into(),
                        device: "cpu".into(),
                        driver: String::new(),
                        threads: 2,
                    },
                    settings_hash: settings.hash(),
                });
            }
        }
    }
    runs
}

#[test]
fn writes_every_output_with_the_specified_table() {
    let dir = std::env::temp_dir().join(format!("transfer-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = TrainingSettings::paper("flex");
    let store = ResultsDir::create(&dir, &settings).unwrap();
    for run in records(&settings, 3) {
        store.write_run(&run).unwrap();
    }
    store
        .write_pretrain(&PretrainRecord {
            repetition: 0,
            seed: 1,
            iterations: 100,
            train_samples: 36_017,
            curve: vec![],
            loss_curve: vec![],
            source_test_accuracy: 0.98,
            wall_seconds: 1.0,
            backend: BackendInfo {
                backend: "flex".into(),
                device: "cpu".into(),
                driver: String::new(),
                threads: 2,
            },
            settings_hash: settings.hash(),
            weights_file: "rep-00.bpk".into(),
        })
        .unwrap();
    let results = StudyResults::read(&dir).unwrap();
    let files = write_report(&dir, &results, &ReportContext::default()).unwrap();
    let csv = std::fs::read_to_string(dir.join("table.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], CSV_HEADER);
    assert_eq!(lines.len(), 17);
    assert!(lines[1].starts_with("raw,0.005,119,3,"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(",0.855900,") || lines[1].contains(",0.855900,"),
        "{}",
        lines[1]
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Dropout beats raw training"));
    assert!(md.contains("0.9800"), "pretraining accuracy is reported");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["analysis"]["cells"].as_array().unwrap().len(), 16);
    assert_eq!(
        summary["analysis"]["curves"][0]["iterations"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    // 4 protocol figures and 4 proportion figures, each as SVG and PNG.
    let figures: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with(dir.join("figures")))
        .collect();
    assert_eq!(figures.len(), 16);
    for f in figures {
        assert!(
            std::fs::metadata(f).unwrap().len() > 2000,
            "{f:?} is nearly empty"
        );
    }
    let png = std::fs::read(dir.join("figures/protocol-raw.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn claims_are_judged_from_the_numbers() {
    let settings = TrainingSettings::paper("flex");
    let runs = records(&settings, 4);
    let order: Vec<String> = Protocol::PRESET_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let analysis = analyse(&runs, &[], &order);
    // The synthetic data is built so that every claim holds in direction; with the tiny
    // spread between repetitions every comparison is significant.
    for claim in &analysis.claims {
        assert_eq!(claim.verdict, Verdict::Holds, "{claim:?}");
    }
    // Flip dropout below raw: the third claim must fail.
    let flipped: Vec<RunRecord> = runs
        .into_iter()
        .map(|mut r| {
            if r.protocol.name == "dropout" {
                r.final_accuracy -= 0.01;
            }
            r
        })
        .collect();
    let analysis = analyse(&flipped, &[], &order);
    assert_eq!(analysis.claims[2].verdict, Verdict::DoesNotHold);
}
