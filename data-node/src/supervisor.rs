//! The loop every kind of worker runs under: whenever the catalogue changes (and every `tick`
//! besides), compare the workers this node should run with those it runs, stop the ones no
//! longer wanted and start the new ones. A worker is whatever stops its task when dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;
use tokio::sync::watch;

pub trait Workers: Send + 'static {
    type Key: Eq + Hash + Clone + Send;
    /// Stops its task when dropped.
    type Worker: Send;

    /// The workers wanted now, in the order reports should list them.
    fn wanted(&mut self) -> Vec<Self::Key>;
    fn start(&mut self, key: &Self::Key) -> Self::Worker;
    /// After a worker was stopped (dropped).
    fn stopped(&mut self, _key: &Self::Key) {}
    /// After any worker started or stopped, with what runs now in `wanted`'s order.
    fn changed(&mut self, _running: Vec<(&Self::Key, &Self::Worker)>) {}
}

/// Runs until the task is aborted (dropping every worker with it).
pub async fn supervise<W: Workers>(mut w: W, mut changes: watch::Receiver<u64>, tick: Duration) {
    let mut running: HashMap<W::Key, W::Worker> = HashMap::new();
    let mut tick = tokio::time::interval(tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // The sender lives as long as the node the workers hold.
            _ = changes.changed() => {}
        }
        let wanted = w.wanted();
        let gone: Vec<W::Key> = running
            .keys()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        for k in &gone {
            running.remove(k);
            w.stopped(k);
        }
        let mut started = 0;
        for k in &wanted {
            if !running.contains_key(k) {
                running.insert(k.clone(), w.start(k));
                started += 1;
            }
        }
        if started + gone.len() > 0 {
            tracing::debug!(started, stopped = gone.len(), "workers changed");
            let now = wanted
                .iter()
                .filter_map(|k| running.get_key_value(k))
                .collect();
            w.changed(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tributary_common::task::AbortOnDrop;

    struct Fake {
        want: Arc<Mutex<Vec<u32>>>,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Workers for Fake {
        type Key = u32;
        type Worker = AbortOnDrop;
        fn wanted(&mut self) -> Vec<u32> {
            self.want.lock().unwrap().clone()
        }
        fn start(&mut self, key: &u32) -> AbortOnDrop {
            self.log.lock().unwrap().push(format!("start {key}"));
            AbortOnDrop::spawn(std::future::pending())
        }
        fn stopped(&mut self, key: &u32) {
            self.log.lock().unwrap().push(format!("stop {key}"));
        }
        fn changed(&mut self, running: Vec<(&u32, &AbortOnDrop)>) {
            let keys: Vec<String> = running.iter().map(|(k, _)| k.to_string()).collect();
            self.log
                .lock()
                .unwrap()
                .push(format!("now {}", keys.join(",")));
        }
    }

    #[tokio::test]
    async fn starts_and_stops_workers_as_the_catalogue_changes() {
        let want = Arc::new(Mutex::new(vec![2, 1]));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(0);
        let f = Fake {
            want: want.clone(),
            log: log.clone(),
        };
        let task = AbortOnDrop::spawn(supervise(f, rx, Duration::from_secs(3600)));
        let until = |n: usize| {
            let log = log.clone();
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while log.lock().unwrap().len() < n {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{:?}",
                        log.lock().unwrap()
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        until(3).await;
        *want.lock().unwrap() = vec![1, 3];
        tx.send_modify(|n| *n += 1);
        until(6).await;
        drop(task);
        assert_eq!(
            *log.lock().unwrap(),
            ["start 2", "start 1", "now 2,1", "stop 2", "start 3", "now 1,3"]
        );
    }
}
