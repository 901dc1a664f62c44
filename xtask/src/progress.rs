//! Progress on the terminal: indicatif bars on a terminal, plain log lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use transfer_protocols::Observer;
use transfer_records::CurvePoint;

/// Progress of a whole study (or one command): an overall bar and one bar per run in flight.
pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl Progress {
    /// Bars when stdout is a terminal and `quiet` is off; plain lines otherwise.
    pub fn new(total: u64, quiet: bool, what: &str) -> Progress {
        if quiet || !std::io::stdout().is_terminal() {
            return Progress { bars: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let overall = multi.add(ProgressBar::new(total));
        overall.set_style(
            ProgressStyle::with_template(&format!(
                "{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {what} (eta {{eta}})"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        overall.enable_steady_tick(Duration::from_millis(500));
        Progress {
            bars: Some((multi, overall)),
        }
    }

    /// A line above the bars (or on stdout).
    pub fn line(&self, text: &str) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => println!("{text}"),
        }
    }

    /// One unit of the overall bar is done.
    pub fn advance(&self) {
        if let Some((_, overall)) = &self.bars {
            overall.inc(1);
        }
    }

    /// An observer for a run of `iterations` labelled `label`.
    pub fn run(&self, label: &str, iterations: u32) -> RunProgress {
        let bar = self.bars.as_ref().map(|(multi, overall)| {
            let bar = multi.insert_before(overall, ProgressBar::new(u64::from(iterations)));
            bar.set_style(
                ProgressStyle::with_template("  {prefix:<28} [{bar:30}] {pos:>5}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(label.to_owned());
            bar
        });
        RunProgress { bar }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some((_, overall)) = &self.bars {
            overall.finish_and_clear();
        }
    }
}

/// Progress of one run, fed by the training loop.
pub struct RunProgress {
    bar: Option<ProgressBar>,
}

impl Observer for RunProgress {
    fn on_step(&mut self, iteration: u32) {
        if let Some(bar) = &self.bar {
            bar.set_position(u64::from(iteration));
        }
    }

    fn on_eval(&mut self, point: &CurvePoint) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("test acc {:.4}", point.accuracy));
        }
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A download progress bar (or nothing when stdout is not a terminal).
pub struct DownloadBar {
    bar: Mutex<Option<ProgressBar>>,
    fancy: bool,
}

impl DownloadBar {
    /// A bar drawn only on a terminal.
    pub fn new() -> DownloadBar {
        DownloadBar {
            bar: Mutex::new(None),
            fancy: std::io::stderr().is_terminal(),
        }
    }
}

impl transfer_data::DownloadProgress for DownloadBar {
    fn started(&self, file: &str, url: &str, total: Option<u64>, resumed_from: u64) {
        let resumed = if resumed_from > 0 {
            format!(" (resuming at {resumed_from} bytes)")
        } else {
            String::new()
        };
        eprintln!("downloading {file} from {url}{resumed}");
        if !self.fancy {
            return;
        }
        let bar = ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template("  [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(resumed_from);
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advanced(&self, bytes: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(bytes);
        }
    }

    fn ended(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }

    fn mirror_failed(&self, file: &str, url: &str, reason: &str) {
        eprintln!("  {file}: {url} failed: {reason}; trying the next mirror");
    }
}
