//! A sweep's written report and every file of it: `sweep.md` (from the analysis's tables) and
//! the writing of `sweep.csv`, `sweep.md`, `sweep.json`, `report.html` and the figures. The
//! layers run one way: the analysis (`sweep`), its figures (`sweep_figures`), its pages
//! (`sweep_html`, this module).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::sweep::{
    Column, SPREAD_METHOD, SweepAnalysis, SweepResults, analyse_sweep, completeness, effect_table,
    point_table, spread_tables, sweep_csv,
};
use crate::{ReportContext, ReportError, sweep_figures};

/// A Markdown table: the header from `columns`, then `rows`.
fn md_table(md: &mut String, columns: &[Column], rows: impl IntoIterator<Item = Vec<String>>) {
    let names: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
    let rules: Vec<&str> = columns
        .iter()
        .map(|c| if c.1 { "---:" } else { "---" })
        .collect();
    let _ = writeln!(md, "| {} |\n| {} |", names.join(" | "), rules.join(" | "));
    for row in rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    md.push('\n');
}

/// `sweep.md`: what the sweep holds, every point's table, and each axis's effect.
pub fn sweep_md(analysis: &SweepAnalysis, ctx: &ReportContext) -> String {
    let mut md = String::new();
    let axes: Vec<String> = analysis
        .axes
        .iter()
        .map(|a| format!("`{}` = {}", a.name, a.labels.join(", ")))
        .collect();
    let _ = writeln!(md, "# Sweep: {}\n", axes.join("; "));
    if !ctx.label.is_empty() {
        let _ = writeln!(md, "{}\n", ctx.label);
    }
    match completeness(analysis, |name| format!("`{name}`")) {
        (sentence, None) => {
            let _ = writeln!(md, "{sentence}\n");
        }
        (sentence, Some(which)) => {
            let _ = writeln!(md, "**{sentence}** {which}\n");
        }
    }
    if !ctx.command.is_empty() {
        let _ = writeln!(md, "Command: `{}`\n", ctx.command);
    }
    md.push_str("## Mean final test accuracy at every point\n\n");
    md.push_str(
        "Mean of the repetitions ± the half-width of its 95% t-interval (n runs where fewer than planned).\n\n",
    );
    let (columns, rows) = point_table(analysis).with_names(|name| format!("`{name}`"));
    md_table(&mut md, &columns, rows);
    for effect in &analysis.effects {
        let _ = writeln!(md, "## Effect of `{}`\n", effect.axis);
        let table = effect_table(analysis, effect);
        let _ = writeln!(md, "{}\n\n{}\n", table.method, table.findings);
        md_table(&mut md, &table.columns, table.rows);
    }
    let spreads = spread_tables(analysis);
    if !spreads.is_empty() {
        let _ = writeln!(md, "## Where the spread comes from\n\n{SPREAD_METHOD}\n");
        for table in spreads {
            let _ = writeln!(md, "### {}\n", table.title);
            md_table(&mut md, &table.columns, table.rows);
            for finding in &table.findings {
                let _ = writeln!(md, "- {finding}");
            }
            md.push('\n');
        }
    }
    md.push_str("## Figures\n\n");
    for stem in sweep_figures::stems(analysis) {
        let _ = writeln!(md, "![{stem}](figures/{stem}.svg)\n");
    }
    md.push_str(
        "Every point is an ordinary study: its own directory holds its records and its own report (`report.md`, `table.csv`, figures).\n",
    );
    md
}

/// Writes the sweep's report into `dir`: `sweep.csv`, `sweep.md`, `sweep.json`,
/// `report.html` and `figures/sweep-*.svg` and `.png`. Returns the files written, each written atomically.
pub fn write_sweep_report(
    dir: &Path,
    results: &SweepResults,
    ctx: &ReportContext,
) -> Result<Vec<PathBuf>, ReportError> {
    let analysis = analyse_sweep(results);
    let mut written = Vec::new();
    let mut put = |name: &str, text: String| crate::put_text(dir, name, &text, &mut written);
    put("sweep.csv", sweep_csv(results))?;
    put("sweep.md", sweep_md(&analysis, ctx))?;
    let json = serde_json::to_string_pretty(&analysis)
        .map_err(|e| ReportError::io(&dir.join("sweep.json"), std::io::Error::other(e)))?;
    put("sweep.json", json)?;
    put("report.html", crate::sweep_html(&analysis, ctx))?;
    written.extend(sweep_figures::write(&analysis, &dir.join("figures"))?);
    Ok(written)
}
