//! Where one call's time goes: with the environment variable `VA_TRACE`
//! set (to anything but `0`), [`begin`] opens a record on this thread, each
//! [`mark`] waits for the device (its closure) and notes the time since the
//! previous mark, and the record prints one line to stderr when its guard
//! drops: `va-trace index.search 5.061 ms: probe 0.871 | scan 1.930 | ...`.
//! Unset, a mark costs one load of a cached flag. Waiting at each mark
//! serialises the host and the device, so a traced call runs slower than
//! an untraced one; the stages' shares are what a trace is for.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Instant;

/// Whether `VA_TRACE` asks for traces (read once per process).
fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("VA_TRACE").is_some_and(|v| !v.is_empty() && v != "0"))
}

/// The open record of this thread.
struct Record {
    name: &'static str,
    start: Instant,
    last: Instant,
    stages: Vec<(&'static str, f64)>,
}

thread_local! {
    static OPEN: RefCell<Option<Record>> = const { RefCell::new(None) };
}

/// Closes the record [`begin`] opened (and prints it) when dropped.
#[must_use = "the record closes when the guard drops"]
pub(crate) struct Span {
    owner: bool,
}

/// Opens a record named `name` on this thread, unless tracing is off or a
/// record is open already (a nested call's marks join the outer record).
pub(crate) fn begin(name: &'static str) -> Span {
    if !enabled() {
        return Span { owner: false };
    }
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        if open.is_some() {
            return Span { owner: false };
        }
        let now = Instant::now();
        *open = Some(Record {
            name,
            start: now,
            last: now,
            stages: Vec::new(),
        });
        Span { owner: true }
    })
}

/// Ends stage `stage` of the open record: `wait` (a device synchronisation)
/// runs first, then the time since the previous mark is noted. Nothing
/// happens, `wait` included, without an open record.
pub(crate) fn mark(stage: &'static str, wait: impl FnOnce()) {
    if !enabled() {
        return;
    }
    OPEN.with(|open| {
        if let Some(r) = open.borrow_mut().as_mut() {
            wait();
            let now = Instant::now();
            r.stages.push((stage, ms(now - r.last)));
            r.last = now;
        }
    });
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Drop for Span {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let Some(r) = OPEN.with(|open| open.borrow_mut().take()) else {
            return;
        };
        let now = Instant::now();
        let mut line = format!("va-trace {} {:.3} ms:", r.name, ms(now - r.start));
        for (i, (stage, t)) in r.stages.iter().enumerate() {
            let sep = if i == 0 { " " } else { " | " };
            line.push_str(&format!("{sep}{stage} {t:.3}"));
        }
        line.push_str(&format!(" | rest {:.3}", ms(now - r.last)));
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_without_a_record_do_nothing() {
        let mut waited = false;
        mark("stage", || waited = true);
        assert!(!waited, "no record is open on this thread");
    }
}
