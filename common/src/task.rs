//! Background tasks owned by whoever started them.

use tokio::task::JoinHandle;

/// Aborts its task when dropped: dropping a supervisor's map of workers stops them all, and
/// a worker that panics or is replaced leaves nothing running behind.
#[derive(Debug)]
pub struct AbortOnDrop<T = ()>(pub JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    pub fn spawn<F>(f: F) -> Self
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        AbortOnDrop(tokio::spawn(f))
    }

    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A part of a process that an operator may restart or stop and start again (a supervisor,
/// the cleanup coordinator): `spawn` starts its tasks, which run until the next change. The
/// tasks live inside the one returned [`AbortOnDrop`], so they end with it.
pub struct Restartable {
    control: tokio::sync::watch::Sender<PartState>,
}

/// Whether a [`Restartable`] part runs, and how often it was restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartState {
    pub enabled: bool,
    pub restarts: u64,
}

impl Restartable {
    /// Starts the part (enabled); `stopped` runs after each stop (to clear what it reported).
    pub fn start(
        spawn: impl Fn() -> Vec<AbortOnDrop> + Send + 'static,
        stopped: impl Fn() + Send + 'static,
    ) -> (std::sync::Arc<Restartable>, AbortOnDrop) {
        let (control, mut rx) = tokio::sync::watch::channel(PartState {
            enabled: true,
            restarts: 0,
        });
        let task = AbortOnDrop::spawn(async move {
            loop {
                let state = *rx.borrow_and_update();
                let tasks = match state.enabled {
                    true => spawn(),
                    false => Vec::new(),
                };
                if rx.changed().await.is_err() {
                    return;
                }
                drop(tasks);
                stopped();
            }
        });
        (std::sync::Arc::new(Restartable { control }), task)
    }

    pub fn state(&self) -> PartState {
        *self.control.borrow()
    }

    /// Stops the part's tasks and starts them anew (Ditto's `common.commands:shutdown`).
    pub fn restart(&self) {
        self.control.send_modify(|s| s.restarts += 1);
    }

    /// Stops (false) or starts (true) the part; a no-op when it already is so.
    pub fn set_enabled(&self, enabled: bool) {
        self.control.send_if_modified(|s| {
            let changed = s.enabled != enabled;
            s.enabled = enabled;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_restartable_part_restarts_stops_and_ends_with_its_task() {
        let starts = Arc::new(AtomicU64::new(0));
        let stops = Arc::new(AtomicU64::new(0));
        let (s, st) = (starts.clone(), stops.clone());
        let (part, task) = Restartable::start(
            move || {
                s.fetch_add(1, Ordering::SeqCst);
                vec![AbortOnDrop::spawn(std::future::pending())]
            },
            move || {
                st.fetch_add(1, Ordering::SeqCst);
            },
        );
        let until = |n: &Arc<AtomicU64>, want: u64| {
            let n = n.clone();
            async move {
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                while n.load(Ordering::SeqCst) != want {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "never reached {want}"
                    );
                    tokio::task::yield_now().await;
                }
            }
        };
        until(&starts, 1).await;
        part.restart();
        until(&starts, 2).await;
        part.set_enabled(false);
        until(&stops, 2).await;
        assert_eq!(starts.load(Ordering::SeqCst), 2, "disabled: nothing starts");
        assert_eq!(
            part.state(),
            PartState {
                enabled: false,
                restarts: 1
            }
        );
        part.set_enabled(true);
        until(&starts, 3).await;
        drop(task);
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_task() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let t = AbortOnDrop::spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await
        });
        drop(t);
        // The task (and the sender it held) is gone: the channel closes.
        assert!(rx.recv().await.is_none());
    }
}
