//! One background thread per process that sweeps every bounded in-memory table (the rate
//! limiter's buckets, the session store), so that no user has a task to spawn or a method to
//! call for memory to come back.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

/// A table the sweeper thread visits.
pub trait Sweep: Send + Sync + 'static {
    /// Sweeps if its interval has passed at `now`; returns when it next wants a visit.
    fn sweep_if_due(&self, now: Instant) -> Instant;
}

/// Tables registered for sweeping; the thread exits when none is left.
struct Sweeper {
    tables: Vec<Weak<dyn Sweep>>,
    running: bool,
}

static SWEEPER: OnceLock<Mutex<Sweeper>> = OnceLock::new();

fn sweeper() -> MutexGuard<'static, Sweeper> {
    let s = SWEEPER.get_or_init(|| {
        Mutex::new(Sweeper {
            tables: Vec::new(),
            running: false,
        })
    });
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands `table` to the process's sweeper thread, starting the thread if needed. The thread
/// holds only weak references: a dropped table's memory is freed, and the thread ends with
/// the last table. `name` names the thread in logs and debuggers.
///
/// # Errors
/// When the system refuses a thread. The table stays registered (the next registration tries
/// again); until then nothing is swept in the background, so every caller's table must stay
/// within its bounds on the request path too, by making room when full.
pub fn register_sweep<T: Sweep>(table: &Arc<T>, name: &str) -> std::io::Result<()> {
    let weak: Weak<dyn Sweep> = Arc::downgrade(table) as Weak<dyn Sweep>;
    let mut s = sweeper();
    s.tables.push(weak);
    if !s.running {
        std::thread::Builder::new()
            .name(format!("tower-plugins-{name}-sweeper"))
            .spawn(sweep_loop)?;
        s.running = true;
    }
    Ok(())
}

fn sweep_loop() {
    loop {
        let tables: Vec<Arc<dyn Sweep>> = {
            let mut s = sweeper();
            s.tables.retain(|w| w.strong_count() > 0);
            if s.tables.is_empty() {
                s.running = false;
                return;
            }
            s.tables.iter().filter_map(Weak::upgrade).collect()
        };
        let now = Instant::now();
        let next = (tables.iter())
            .map(|t| t.sweep_if_due(now))
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        drop(tables);
        let wait = next
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        std::thread::sleep(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    impl Sweep for Counting {
        fn sweep_if_due(&self, now: Instant) -> Instant {
            self.0.fetch_add(1, Ordering::Relaxed);
            now + Duration::from_millis(10)
        }
    }

    #[test]
    fn registered_tables_are_swept_and_dropped_ones_let_go() {
        let table = Arc::new(Counting(AtomicUsize::new(0)));
        register_sweep(&table, "test").unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while table.0.load(Ordering::Relaxed) < 2 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(table.0.load(Ordering::Relaxed) >= 2);
        let weak = Arc::downgrade(&table);
        drop(table);
        // The thread holds no strong reference between visits.
        let until = Instant::now() + Duration::from_secs(5);
        while weak.strong_count() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(weak.strong_count(), 0);
    }
}
