//! A progress bar on stderr that appears only when a run takes longer than
//! a second, so quick runs print nothing.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run may take before the bar is shown.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A bar counting `len` units, hidden at first.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    /// Tells the thread that would show the bar to stop waiting.
    stop: Option<Sender<()>>,
    shower: Option<JoinHandle<()>>,
}

impl Progress {
    /// A bar of `len` units named `unit`; never shown when `enabled` is false.
    pub fn new(len: u64, unit: &str, enabled: bool) -> Self {
        let template = format!(
            "{{elapsed_precise}} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit} \
             ({{per_sec}}, eta {{eta}})"
        );
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
            .with_style(style);
        Self::start(bar, enabled)
    }

    /// Shows `bar` (ticking) once a second has passed, if `enabled`.
    fn start(bar: ProgressBar, enabled: bool) -> Self {
        if !enabled {
            return Self {
                bar,
                stop: None,
                shower: None,
            };
        }
        let (stop, wait) = mpsc::channel::<()>();
        let shown = bar.clone();
        let shower = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(SHOW_AFTER) {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(250));
            }
        });
        Self {
            bar,
            stop: Some(stop),
            shower: Some(shower),
        }
    }

    /// Advances by `n` units.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// A handle that moves the bar from another thread or a callback:
    /// `(position, length)`.
    pub fn updater(&self) -> impl Fn(u64, u64) + Send + Sync + 'static {
        let bar = self.bar.clone();
        move |pos, len| {
            bar.set_length(len);
            bar.set_position(pos);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.shower.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}
