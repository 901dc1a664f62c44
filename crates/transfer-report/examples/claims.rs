//! Prints each published claim's verdict and the comparisons behind it for a results
//! directory, writing nothing:
//!
//! ```sh
//! cargo run -p transfer-report --example claims -- results/paper
//! ```

use std::process::ExitCode;

use transfer_report::StudyResults;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: claims RESULTS_DIR");
        return ExitCode::from(2);
    };
    let results = match StudyResults::read(dir.as_ref()) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for claim in results.analysis().claims {
        println!("{}\n  verdict: {}", claim.statement, claim.verdict.words());
        for c in &claim.comparisons {
            match (c.test, c.p_holm) {
                (Some(t), Some(holm)) => println!(
                    "  {}: {:+.4} [{:+.4}, {:+.4}], Holm p = {:.2e}, effect size {:.2} [{:.2}, {:.2}]",
                    c.label,
                    t.difference,
                    t.ci95_low,
                    t.ci95_high,
                    holm,
                    t.effect_size,
                    t.effect_ci95_low,
                    t.effect_ci95_high
                ),
                _ => println!("  {}: {:+.4} (not tested)", c.label, c.mean_a - c.mean_b),
            }
        }
    }
    ExitCode::SUCCESS
}
