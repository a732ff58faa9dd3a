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

#[cfg(test)]
mod tests {
    use super::*;

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
