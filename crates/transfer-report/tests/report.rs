//! The report from synthetic records: files, table shape, claims and figures.

use transfer_records::{
    BackendInfo, ClaimSpec, CurvePoint, LossPoint, PretrainRecord, Protocol, Provenance,
    ResultsDir, RunRecord, TrainingSettings, pretrain_seed, run_seed,
};
use transfer_report::{
    AnalysisOptions, CSV_HEADER, DEFAULT_EQUIVALENCE_MARGIN, PlannedCells, ReportContext,
    StudyResults, SweepAxis, SweepPointResults, SweepResults, Verdict, analyse, analyse_sweep,
    write_report, write_sweep_report,
};

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

/// The settings of the synthetic records: 100 iterations, scored every 10.
fn settings() -> TrainingSettings {
    let mut settings = TrainingSettings::paper("flex");
    (settings.iterations, settings.pretrain_iterations) = (100, 100);
    settings
}

fn provenance(settings: &TrainingSettings) -> Provenance {
    Provenance {
        program: "mnist-transfer 0.1.0".into(),
        commit: "0123abcd".into(),
        dataset: settings.dataset.clone(),
        date: "2026-11-30T12:00:00Z".into(),
        command: "study --preset paper".into(),
        trained_in: None,
    }
}

fn backend() -> BackendInfo {
    BackendInfo {
        backend: "flex".into(),
        device: "cpu".into(),
        driver: String::new(),
        threads: 2,
    }
}

/// Records that pass the results directory's verification.
fn records(settings: &TrainingSettings, reps: u32) -> Vec<RunRecord> {
    let mut runs = Vec::new();
    for protocol in Protocol::presets() {
        for p in [0.005, 0.01, 0.1, 1.0] {
            for rep in 0..reps {
                let acc = accuracy(&protocol.name, p, rep);
                runs.push(RunRecord {
                    seed: run_seed(settings.seed, &protocol.name, p, rep),
                    pretrain_seed: protocol
                        .needs_pretraining()
                        .then(|| pretrain_seed(settings.seed, rep)),
                    protocol: protocol.clone(),
                    proportion: p,
                    repetition: rep,
                    train_samples: (23_983.0 * p) as usize,
                    iterations: 100,
                    test_samples: Some(4000),
                    curve: (1..=10)
                        .map(|i| CurvePoint {
                            iteration: i * 10,
                            accuracy: acc - 0.3 / f64::from(i * i) + 0.003,
                        })
                        .collect(),
                    loss_curve: (1..=10)
                        .map(|i| LossPoint {
                            iteration: i * 10,
                            loss: 1.0 / f64::from(i),
                        })
                        .collect(),
                    diverged_at: None,
                    final_accuracy: acc,
                    wall_seconds: 1.0,
                    backend: backend(),
                    settings_hash: settings.hash(),
                    model: None,
                    provenance: provenance(settings),
                    checksum: String::new(),
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
    let settings = settings();
    let store = ResultsDir::create(&dir, &settings).unwrap();
    for run in records(&settings, 3) {
        store.write_run(&run).unwrap();
    }
    std::fs::write(store.weights_path(0), b"weights").unwrap();
    store
        .write_pretrain(&PretrainRecord {
            repetition: 0,
            seed: pretrain_seed(settings.seed, 0),
            iterations: 100,
            train_samples: 36_017,
            curve: vec![CurvePoint {
                iteration: 100,
                accuracy: 0.98,
            }],
            loss_curve: vec![LossPoint {
                iteration: 100,
                loss: 0.1,
            }],
            diverged_at: None,
            source_test_accuracy: 0.98,
            wall_seconds: 1.0,
            backend: backend(),
            settings_hash: settings.hash(),
            weights_file: "rep-00.bpk".into(),
            weights_sha256: String::new(),
            provenance: provenance(&settings),
            checksum: String::new(),
        })
        .unwrap();
    let results = StudyResults::read(&dir).unwrap();
    let files = write_report(&dir, &results, &ReportContext::default()).unwrap();
    for name in ["table.tex", "table-robust.csv"] {
        assert!(files.contains(&dir.join(name)), "{name} not written");
    }
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
    let runs = std::fs::read_to_string(dir.join("runs.csv")).unwrap();
    let rows: Vec<&str> = runs.lines().collect();
    assert_eq!(rows[0], transfer_report::RUNS_HEADER);
    assert_eq!(rows.len(), 1 + 48);
    let seed = run_seed(settings.seed, "raw", 0.005, 0);
    let fields: Vec<&str> = rows[1].split(',').collect();
    assert_eq!(fields[..5], ["raw", "0.005", "0", &seed.to_string(), "119"]);
    let acc: f64 = fields[5].parse().unwrap();
    assert!(
        (acc - accuracy("raw", 0.005, 0)).abs() < 1e-15,
        "{}",
        rows[1]
    );
    assert_eq!(fields[6..], ["0.1", "false", "1", "flex"]);
    let curves = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    let rows: Vec<&str> = curves.lines().collect();
    assert_eq!(rows[0], transfer_report::CURVES_HEADER);
    assert_eq!(rows.len(), 1 + 48 * 10);
    assert!(rows[1].starts_with("raw,0.005,0,10,"), "{}", rows[1]);
    assert!(rows[1].ends_with(",1"), "{}", rows[1]);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Dropout beats raw training"));
    assert!(
        md.contains("commit `0123abcd`") && md.contains("study --preset paper"),
        "{md}"
    );
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
    // Accuracy and gain by proportion, 4 protocol and 4 proportion figures, the pretraining:
    // each as SVG and PNG.
    let figures: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with(dir.join("figures")))
        .collect();
    assert_eq!(figures.len(), 22);
    for stem in ["accuracy-vs-proportion", "gain-over-raw", "pretraining"] {
        assert!(dir.join(format!("figures/{stem}.png")).is_file(), "{stem}");
        let svg = std::fs::read_to_string(dir.join(format!("figures/{stem}.svg"))).unwrap();
        assert!(svg.contains("published") || stem == "pretraining", "{stem}");
    }
    for f in figures {
        assert!(
            std::fs::metadata(f).unwrap().len() > 2000,
            "{f:?} is nearly empty"
        );
    }
    let png = std::fs::read(dir.join("figures/protocol-raw.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let analysis = results.analysis();
    let numbers: Vec<String> = analysis
        .cells
        .iter()
        .map(|c| {
            format!(
                "{:.4} ± {:.4}",
                c.summary.mean,
                c.summary.half_width().unwrap()
            )
        })
        .collect();
    check_in_a_browser(&dir.join("report.html"), &numbers, 11);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `page` is self-contained (no request of any kind) and renders in a real browser, headless
/// Chromium with name resolution off: its script runs to the end, the console stays empty,
/// and `numbers` and at least `charts` charts are in the rendered page. Without Chromium the
/// check is skipped, unless `REQUIRE_BROWSER` is set (as in CI), which makes a missing browser
/// a failure.
fn check_in_a_browser(page: &std::path::Path, numbers: &[String], charts: usize) {
    let html = std::fs::read_to_string(page).unwrap();
    for external in ["http://", "https://", "<link", " src=", "@import", "url("] {
        assert!(
            !html.contains(external),
            "report.html asks for something outside itself: {external}"
        );
    }
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(browser) = browser else {
        assert!(
            std::env::var_os("REQUIRE_BROWSER").is_none(),
            "REQUIRE_BROWSER is set but no Chromium was found"
        );
        eprintln!("report.html not opened in a browser: no chromium on PATH");
        return;
    };
    let profile = page.with_file_name("browser-profile");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg("--host-resolver-rules=MAP * ~NOTFOUND")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{browser} failed: {log}");
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    assert!(
        dom.contains("data-rendered=\"yes\""),
        "the page's script did not finish:\n{dom}"
    );
    for n in numbers {
        assert!(dom.contains(n.as_str()), "{n} is not in the rendered page");
    }
    assert!(
        dom.matches("<svg").count() >= charts,
        "every figure is drawn"
    );
    let _ = std::fs::remove_dir_all(profile);
}

#[test]
fn a_sweeps_page_holds_its_table_and_figures_and_renders_in_a_browser() {
    let dir = std::env::temp_dir().join(format!("transfer-sweep-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let settings = settings();
    // Two points of a pretraining axis; the second's pretrained protocols gain 0.002, and its
    // last repetition of finetune at p = 1 is missing.
    let point = |iterations: u32, at: usize| {
        let mut runs = records(&settings, 3);
        for run in &mut runs {
            if at == 1 && run.protocol.needs_pretraining() {
                run.final_accuracy += 0.002;
            }
        }
        if at == 1 {
            runs.retain(|r| {
                !(r.protocol.name == "finetune" && r.proportion == 1.0 && r.repetition == 2)
            });
        }
        SweepPointResults {
            name: format!("pretrain-iters={iterations}"),
            at: vec![at],
            results: Some(StudyResults {
                config: None,
                settings: settings.clone(),
                runs,
                pretrains: Vec::new(),
            }),
            planned_runs: 48,
        }
    };
    let results = SweepResults {
        axes: vec![SweepAxis {
            name: "pretrain-iters".into(),
            labels: vec!["100".into(), "300".into()],
            values: Some(vec![100.0, 300.0]),
            log_scale: false,
        }],
        points: vec![point(100, 0), point(300, 1)],
        protocols: ["raw", "frozen", "finetune", "dropout"]
            .map(String::from)
            .to_vec(),
        proportions: vec![0.005, 0.01, 0.1, 1.0],
    };
    let files = write_sweep_report(&dir, &results, &ReportContext::default()).unwrap();
    assert!(files.contains(&dir.join("report.html")));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("INCOMPLETE: made from 95 of the 96 planned runs."),
        "{html}"
    );
    assert!(html.contains("pretrain-iters=300 (47 of 48)"));
    let analysis = analyse_sweep(&results);
    let mut numbers = Vec::new();
    for (i, point) in analysis.points.iter().enumerate() {
        for cell in &point.cells {
            let c = analysis.cell(i, &cell.protocol, cell.proportion).unwrap();
            let half = c.summary.half_width().unwrap();
            numbers.push(format!("{:.4} ± {half:.4}", c.summary.mean));
        }
    }
    assert_eq!(numbers.len(), 32);
    // The step's difference in the effect table, as sweep.md prints it.
    let frozen = analysis.effects[0]
        .steps
        .iter()
        .find(|s| s.protocol == "frozen" && s.proportion == 0.005)
        .unwrap();
    assert!((frozen.difference.unwrap() - 0.002).abs() < 1e-9);
    numbers.push("+0.0020".into());
    // Accuracy and gain against the axis, a panel per proportion: 8 charts.
    assert_eq!(html.matches("<svg").count(), 8);
    check_in_a_browser(&dir.join("report.html"), &numbers, 8);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_vary_sweep_says_where_the_spread_comes_from() {
    let dir = std::env::temp_dir().join(format!("transfer-vary-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let settings = settings();
    // Three values of the vary axis: each run's accuracy spread by a factor per value.
    let labels = ["init", "order", "all"];
    let scale = [1.0, 0.25, 1.2];
    let point = |at: usize| {
        let mut runs = records(&settings, 4);
        for run in &mut runs {
            let centre = accuracy(&run.protocol.name, run.proportion, 0);
            run.final_accuracy = centre + (run.final_accuracy - centre) * scale[at];
        }
        SweepPointResults {
            name: format!("vary={}", labels[at]),
            at: vec![at],
            results: Some(StudyResults {
                config: None,
                settings: settings.clone(),
                runs,
                pretrains: Vec::new(),
            }),
            planned_runs: 64,
        }
    };
    let results = SweepResults {
        axes: vec![SweepAxis {
            name: "vary".into(),
            labels: labels.map(String::from).to_vec(),
            values: None,
            log_scale: false,
        }],
        points: (0..3).map(point).collect(),
        protocols: ["raw", "frozen", "finetune", "dropout"]
            .map(String::from)
            .to_vec(),
        proportions: vec![0.005, 0.01, 0.1, 1.0],
    };
    let analysis = analyse_sweep(&results);
    assert_eq!(analysis.spreads.len(), 16);
    let raw = &analysis.spreads[0];
    assert_eq!((raw.protocol.as_str(), raw.proportion), ("raw", 0.005));
    let sd = |i: usize| raw.values[i].1.unwrap().sd;
    let finals: Vec<f64> = analysis.cell(0, "raw", 0.005).unwrap().finals.clone();
    assert!((sd(0) - transfer_report::stats::summarize(&finals).std).abs() < 1e-12);
    assert!((sd(1) / sd(0) - 0.25).abs() < 1e-9 && (sd(2) / sd(0) - 1.2).abs() < 1e-9);
    let d = &raw.decomposition;
    assert_eq!(d.largest.as_ref().unwrap().0, "init");
    assert!(
        (d.sum_over_all.unwrap() - (1.0 + 0.0625) / 1.44).abs() < 1e-9,
        "{d:?}"
    );
    // The test set's error at the all-source mean, on the 4000 test images the records name.
    let mean = analysis.cell(2, "raw", 0.005).unwrap().summary.mean;
    assert!((raw.test_se.unwrap() - (mean * (1.0 - mean) / 4000.0).sqrt()).abs() < 1e-12);

    let files = write_sweep_report(&dir, &results, &ReportContext::default()).unwrap();
    let md = std::fs::read_to_string(dir.join("sweep.md")).unwrap();
    assert!(md.contains("## Where the spread comes from"), "{md}");
    assert!(
        md.contains(
            "| protocol | init: sd [95%] | order: sd [95%] | all: sd [95%] | sqrt(sum of single) | sum/all | test SE |"
        ),
        "{md}"
    );
    assert!(md.contains("raw: init alone gives the most spread"), "{md}");
    // Repetitions for a 95% interval of ±0.005 at each value's spread, as transfer-stats
    // sizes them, in the finding and in sweep.json.
    let reps = |i: usize| transfer_stats::repetitions_for_half_width(sd(i), 0.005, 10_000);
    assert_eq!(
        raw.repetitions_for_goal,
        (0..3)
            .map(|i| (labels[i].to_owned(), reps(i)))
            .collect::<Vec<_>>()
    );
    let reps_text = |i: usize| reps(i).map_or("more than 10000".to_owned(), |n| n.to_string());
    let sizing = format!(
        "a 95% interval of ±0.005 takes {} repetitions varying every source, {} varying init alone",
        reps_text(2),
        reps_text(0)
    );
    assert!(md.contains(&sizing), "{sizing}\n{md}");
    for p in ["0.005", "0.01", "0.1", "1"] {
        for ext in ["svg", "png"] {
            let figure = dir.join(format!("figures/sweep-spread-p{p}.{ext}"));
            assert!(files.contains(&figure), "{}", figure.display());
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let spread = raw.values[0].1.unwrap();
    let hover = format!(
        "raw, init: sd {:.4}, 95% interval [{:.4}, {:.4}]",
        spread.sd, spread.sd_low, spread.sd_high
    );
    assert!(html.contains(&hover), "{hover}");
    // Accuracy and gain against the axis (8 panels) and a spread chart per proportion.
    assert_eq!(html.matches("<svg").count(), 12);
    check_in_a_browser(&dir.join("report.html"), &[hover], 12);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn claims_are_judged_from_the_numbers() {
    let settings = settings();
    let runs = records(&settings, 4);
    let options = options(None);
    let analysis = analyse(&runs, &[], &options);
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
    let analysis = analyse(&flipped, &[], &options);
    assert_eq!(analysis.claims[2].verdict, Verdict::DoesNotHold);
}

#[test]
fn a_gain_largest_at_the_smallest_proportion_is_tested_not_read_off_the_means() {
    let runs = records(&settings(), 4);
    let options = options(None);
    let trend = |runs: &[RunRecord]| {
        let analysis = analyse(runs, &[], &options);
        let claim = analysis.claims[1].clone();
        let labels: Vec<String> = claim
            .comparisons
            .iter()
            .filter(|c| c.label.contains(" gain at p = "))
            .map(|c| c.label.clone())
            .collect();
        (claim, labels)
    };
    // Frozen's gain over raw shrinks with data in the synthetic records: tested, it holds.
    let (claim, labels) = trend(&runs);
    assert_eq!(claim.verdict, Verdict::Holds, "{claim:?}");
    assert_eq!(
        labels,
        [
            "frozen - raw gain at p = 0.005 vs at p = 0.01",
            "frozen - raw gain at p = 0.005 vs at p = 0.1",
            "frozen - raw gain at p = 0.005 vs at p = 1",
        ]
    );
    let edit = |shift: f64, noise: f64| -> Vec<RunRecord> {
        runs.iter()
            .cloned()
            .map(|mut r| {
                if r.protocol.name == "frozen" && r.proportion == 0.005 {
                    let sign = if r.repetition % 2 == 0 { 1.0 } else { -1.0 };
                    r.final_accuracy += shift + sign * noise;
                }
                r
            })
            .collect()
    };
    // The same gain at 0.005 as at 0.01 but for 0.0001, with a spread of 0.002 between
    // repetitions: larger in the means, not shown larger. Every gain over raw stays significant.
    let gain_at_001 = 0.01;
    let gain_at_0005 = 0.01 / 0.5f64.sqrt();
    let (claim, _) = trend(&edit(gain_at_001 + 0.0001 - gain_at_0005, 0.002));
    assert_eq!(claim.verdict, Verdict::DirectionOnly, "{claim:?}");
    let trend_first = &claim.comparisons[claim.comparisons.len() - 3];
    assert!(
        trend_first.p_holm.is_some_and(|p| p > 0.05),
        "{trend_first:?}"
    );
    assert!(
        claim.comparisons[..claim.comparisons.len() - 3]
            .iter()
            .all(|c| c.p_holm.is_some_and(|p| p < 0.05)),
        "{claim:?}"
    );
    // Smaller at 0.005 than at 0.01: it does not hold.
    let (claim, _) = trend(&edit(gain_at_001 - 0.002 - gain_at_0005, 0.0));
    assert_eq!(claim.verdict, Verdict::DoesNotHold, "{claim:?}");
}

#[test]
fn diverged_runs_are_left_out_and_shown() {
    let settings = settings();
    let mut runs = records(&settings, 3);
    for run in &mut runs {
        let all = run.protocol.name == "dropout" && run.proportion == 0.1;
        if all || (run.protocol.name == "raw" && run.proportion == 1.0 && run.repetition == 1) {
            run.loss_curve.truncate(4);
            run.diverged_at = Some(50);
        }
    }
    let analysis = analyse(&runs, &[], &options(None));
    let raw = analysis.cell("raw", 1.0).unwrap();
    assert_eq!((raw.summary.n, raw.diverged, raw.finals.len()), (2, 1, 2));
    let csv = transfer_report::table_csv(&analysis);
    assert!(csv.contains("\nraw,1,23983,2,"), "{csv}");
    assert!(
        csv.contains("\ndropout,0.1,2398,0,,,,,0.984500,\n"),
        "{csv}"
    );
    let md = transfer_report::table_md(&analysis);
    assert!(md.contains(", 1 of 3 diverged |"), "{md}");
    assert!(md.contains(" diverged (3 of 3) |"), "{md}");
    assert!(md.contains("4 run(s) diverged"), "{md}");
    // The claim about dropout at p = 0.1 has nothing to compare there.
    let dropout = &analysis.claims[2];
    assert_eq!(dropout.comparisons.len(), 3, "{dropout:?}");
}

#[test]
fn a_report_names_the_machines_its_records_were_trained_on() {
    let dir = std::env::temp_dir().join(format!("transfer-report-machines-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = settings();
    let store = ResultsDir::create(&dir, &settings).unwrap();
    for (i, mut run) in records(&settings, 2).into_iter().enumerate() {
        if i % 4 == 0 {
            run.backend.device = "Intel Xeon".into();
            run.backend.threads = 16;
        }
        store.write_run(&run).unwrap();
    }
    let results = StudyResults::read(&dir).unwrap();
    assert_eq!(
        results.machines(),
        [
            format!(
                "{}, backend `flex`, 2 CPU threads (24 runs)",
                backend().device
            ),
            "Intel Xeon, backend `flex`, 16 CPU threads (8 runs)".to_owned()
        ]
    );
    write_report(&dir, &results, &ReportContext::default()).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("- trained on: ")
            && md.contains("Intel Xeon, backend `flex`, 16 CPU threads (8 runs)"),
        "{md}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Intel Xeon, backend <code>flex</code>, 16 CPU threads (8 runs)"));
    assert!(!html.contains('`'), "Markdown in the page");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_repetition_gives_no_interval_and_no_verdict() {
    let dir = std::env::temp_dir().join(format!("transfer-report-one-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = settings();
    let store = ResultsDir::create(&dir, &settings).unwrap();
    for run in records(&settings, 1) {
        store.write_run(&run).unwrap();
    }
    let results = StudyResults::read(&dir).unwrap();
    write_report(&dir, &results, &ReportContext::default()).unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    // table.csv: mean, then empty std and interval.
    let csv = read("table.csv");
    let raw = csv.lines().find(|l| l.starts_with("raw,0.005,")).unwrap();
    let fields: Vec<&str> = raw.split(',').collect();
    assert_eq!(fields[3], "1", "{raw}");
    assert_eq!(&fields[5..8], ["", "", ""], "{raw}");
    let robust = read("table-robust.csv");
    assert!(
        robust
            .lines()
            .skip(1)
            .all(|l| l.contains(",,,,") || l.ends_with(",,")),
        "{robust}"
    );
    for name in ["table.md", "report.md", "report.html"] {
        let text = read(name);
        assert!(!text.contains("± 0.0000"), "{name}: {text}");
        assert!(text.contains("± n/a"), "{name}");
        assert_eq!(
            text.matches("a cell of 1 repetition has no confidence interval")
                .count(),
            1,
            "{name}"
        );
    }
    assert!(read("table.tex").contains("(n/a)"));
    let report = read("report.md");
    assert!(!report.contains("does not hold"), "{report}");
    assert!(
        report.contains("undecided (fewer than 2 repetitions)"),
        "{report}"
    );
    let summary: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
    let cell = &summary["analysis"]["cells"][0]["summary"];
    assert!(
        cell["ci95_low"].is_null() && cell["ci95_high"].is_null(),
        "{cell}"
    );
    for claim in summary["analysis"]["claims"].as_array().unwrap() {
        assert_eq!(claim["verdict"], "undecided", "{claim}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn another_task_is_never_set_against_the_published_table() {
    let dir = std::env::temp_dir().join(format!("transfer-report-other-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut settings = settings();
    assert!(settings.is_published_task());
    (settings.source_classes, settings.target_classes) = (vec![6, 7, 8, 9], vec![0, 1, 2, 3]);
    assert!(!settings.is_published_task());
    let store = ResultsDir::create(&dir, &settings).unwrap();
    for run in records(&settings, 3) {
        store.write_run(&run).unwrap();
    }
    let results = StudyResults::read(&dir).unwrap();
    write_report(&dir, &results, &ReportContext::default()).unwrap();
    let csv = std::fs::read_to_string(dir.join("table.csv")).unwrap();
    for line in csv.lines().skip(1) {
        assert!(
            line.ends_with(",,"),
            "a published value or delta in: {line}"
        );
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(!report.contains("published value inside"), "{report}");
    assert!(!report.contains("(report 0."), "{report}");
    assert!(
        report.contains("no published value is set against it"),
        "{report}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let compact: String = summary.split_whitespace().collect();
    assert!(!compact.contains("\"report_value\":0."), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The published task's options, the presets in their order, planned as `planned` says.
fn options(planned: Option<PlannedCells>) -> AnalysisOptions {
    AnalysisOptions {
        protocol_order: Protocol::PRESET_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        shared_subsets: true,
        published: true,
        equivalence_margin: DEFAULT_EQUIVALENCE_MARGIN,
        planned,
        seed: 2016,
        claims: ClaimSpec::published(),
        randomness: transfer_report::Randomness::of(&settings(), Some(3969)),
    }
}

#[test]
fn an_incomplete_study_says_what_it_lacks() {
    let settings = settings();
    let mut runs = records(&settings, 3);
    runs.retain(|r| !(r.protocol.name == "frozen" && r.proportion == 0.01 && r.repetition == 2));
    let planned = PlannedCells {
        protocols: Protocol::PRESET_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        proportions: vec![0.005, 0.01, 0.1, 1.0],
        repetitions: 3,
    };
    let analysis = analyse(&runs, &[], &options(Some(planned.clone())));
    let c = &analysis.completeness;
    assert_eq!((c.planned_runs, c.runs, c.complete), (Some(48), 47, false));
    assert_eq!(c.short_cells, [("frozen".to_owned(), 0.01, 2, 3)]);
    // Only the claims that compare the short cell are provisional.
    let incomplete: Vec<bool> = analysis.claims.iter().map(|c| !c.complete).collect();
    assert_eq!(
        incomplete,
        [true, true, false, false],
        "{:?}",
        analysis.claims
    );
    let md = transfer_report::table_md(&analysis);
    assert_eq!(md.matches("only 2 of 3 runs").count(), 1, "{md}");
    let whole = analyse(&records(&settings, 3), &[], &options(Some(planned)));
    assert!(!transfer_report::table_md(&whole).contains("only"));
    assert!(whole.completeness.complete && whole.claims.iter().all(|c| c.complete));
}

#[test]
fn every_tested_comparison_carries_power_and_equivalence() {
    let analysis = analyse(&records(&settings(), 4), &[], &options(None));
    for claim in &analysis.claims {
        for c in &claim.comparisons {
            let (p, e) = (c.planning.unwrap(), c.equivalence.unwrap());
            assert!((0.0..=1.0).contains(&p.power_at_observed), "{c:?}");
            assert!(p.detectable_difference >= 0.0, "{c:?}");
            assert_eq!(e.margin, DEFAULT_EQUIVALENCE_MARGIN);
            assert!((0.0..=1.0).contains(&e.p), "{c:?}");
            let (b, i) = (c.bootstrap.unwrap(), c.improvement.unwrap());
            assert!(b.low <= b.high, "{c:?}");
            assert!(i.interval.low <= i.probability && i.probability <= i.interval.high);
        }
    }
    for cell in &analysis.cells {
        let b = cell.bootstrap.unwrap();
        assert!(
            0.0 <= b.low
                && b.low <= cell.summary.mean
                && cell.summary.mean <= b.high
                && b.high <= 1.0
        );
    }
    // Deterministic: the same records and seed give the same intervals, another seed others.
    let again = analyse(&records(&settings(), 4), &[], &options(None));
    assert_eq!(again.cells, analysis.cells);
    let other = AnalysisOptions {
        seed: 1,
        ..options(None)
    };
    assert_ne!(
        analyse(&records(&settings(), 4), &[], &other).cells,
        analysis.cells
    );
    let csv = transfer_report::table_robust_csv(&analysis);
    assert!(csv.starts_with(&format!("{}\n", transfer_report::ROBUST_CSV_HEADER)));
    assert_eq!(csv.lines().count(), analysis.cells.len() + 1);
}

#[test]
fn the_latex_table_bolds_the_best_and_sets_the_published_values_apart() {
    let analysis = analyse(&records(&settings(), 3), &[], &options(None));
    let tex = transfer_report::table_tex(&analysis);
    assert!(
        tex.contains("\\begin{tabular}{lcccc}\n\\toprule\n"),
        "{tex}"
    );
    assert!(tex.ends_with("\\bottomrule\n\\end{tabular}\n"), "{tex}");
    // One bold cell per proportion: the best mean there.
    assert_eq!(tex.matches("\\mathbf{").count(), 4, "{tex}");
    for &p in &analysis.proportions {
        let best = analysis
            .cells
            .iter()
            .filter(|c| c.proportion == p)
            .max_by(|a, b| a.summary.mean.total_cmp(&b.summary.mean))
            .unwrap();
        let half = best.summary.half_width().unwrap();
        let bold = format!("$\\mathbf{{{:.4} \\pm {half:.4}}}$", best.summary.mean);
        assert!(tex.contains(&bold), "{bold} in {tex}");
    }
    assert!(
        tex.contains("raw (published) & $0.8559$ & $0.9016$ & $0.9806$ & $0.9919$ \\\\"),
        "{tex}"
    );
    let other = AnalysisOptions {
        published: false,
        ..options(None)
    };
    let analysis = analyse(&records(&settings(), 3), &[], &other);
    assert!(!transfer_report::table_tex(&analysis).contains("published"));
}

#[test]
fn a_claim_in_direction_only_prints_the_command_that_decides_it() {
    // Two repetitions whose dropout-over-raw differences vary: significant nowhere.
    let mut runs = records(&settings(), 2);
    for r in &mut runs {
        if r.protocol.name == "dropout" {
            r.final_accuracy += if r.repetition == 0 { 0.004 } else { -0.0035 };
        }
    }
    let results = StudyResults {
        config: None,
        settings: settings(),
        runs,
        pretrains: Vec::new(),
    };
    let analysis = results.analysis();
    let dropout = &analysis.claims[2];
    assert_eq!(dropout.verdict, Verdict::DirectionOnly, "{dropout:?}");
    let ctx = ReportContext {
        command: "study --preset quick --reps 2 --out results/quick".into(),
        ..ReportContext::default()
    };
    let md = transfer_report::report_md(&results, &analysis, &ctx);
    let needed = dropout
        .comparisons
        .iter()
        .filter_map(|c| c.planning.and_then(|p| p.repetitions_for_80))
        .max()
        .unwrap();
    let command = format!("cargo xtask study --preset quick --out results/quick --reps {needed}");
    assert!(md.contains(&command), "{command} not in\n{md}");
    assert!(md.contains("no study configuration"), "{md}");
}

#[test]
fn a_studys_own_claims_are_tested_and_corrected_like_the_published_ones() {
    let runs = records(&settings(), 4);
    let mine = vec![
        ClaimSpec {
            statement: "Frozen beats finetune where data is scarce.".into(),
            test: transfer_records::ClaimTest::Better,
            better: vec!["frozen".into()],
            than: vec!["finetune".into()],
            proportions: vec![0.005, 0.01],
            largest_at_smallest: false,
            margin: None,
        },
        ClaimSpec {
            statement: "Everything ties with raw at p = 1 within 0.5.".into(),
            test: transfer_records::ClaimTest::Equivalent,
            better: vec!["*".into()],
            than: vec!["raw".into()],
            proportions: vec![1.0],
            largest_at_smallest: false,
            margin: Some(0.5),
        },
    ];
    let analysis = analyse(
        &runs,
        &[],
        &AnalysisOptions {
            claims: mine,
            ..options(None)
        },
    );
    assert_eq!(analysis.claims.len(), 2);
    let labels: Vec<&str> = analysis.claims[0]
        .comparisons
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "frozen vs finetune at p = 0.005",
            "frozen vs finetune at p = 0.01"
        ]
    );
    let p: Vec<f64> = analysis.claims[0]
        .comparisons
        .iter()
        .map(|c| c.test.unwrap().p_greater)
        .collect();
    let holm = transfer_report::stats::holm(&p);
    for (c, h) in analysis.claims[0].comparisons.iter().zip(holm) {
        assert_eq!(c.p_holm, Some(h));
    }
    // raw is not compared with itself; a margin of 0.5 holds every tie.
    let ties = &analysis.claims[1];
    let labels: Vec<&str> = ties.comparisons.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "frozen vs raw at p = 1",
            "finetune vs raw at p = 1",
            "dropout vs raw at p = 1"
        ]
    );
    assert_eq!(ties.verdict, Verdict::Holds, "{ties:?}");
    assert!(
        ties.comparisons
            .iter()
            .all(|c| c.equivalence.unwrap().margin == 0.5)
    );
    let strict = ClaimSpec {
        margin: Some(1e-9),
        ..ties_spec()
    };
    let analysis = analyse(
        &runs,
        &[],
        &AnalysisOptions {
            claims: vec![strict],
            ..options(None)
        },
    );
    assert_eq!(analysis.claims[0].verdict, Verdict::NotEquivalent);
}

fn ties_spec() -> ClaimSpec {
    ClaimSpec {
        statement: "ties".into(),
        test: transfer_records::ClaimTest::Equivalent,
        better: vec!["frozen".into()],
        than: vec!["raw".into()],
        proportions: vec![1.0],
        largest_at_smallest: false,
        margin: None,
    }
}
