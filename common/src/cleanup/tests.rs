use super::*;
use std::collections::BTreeSet;

/// Records `a` … `f`; the odd ones are stale.
struct Fake {
    removed: Mutex<BTreeSet<String>>,
}

const IDS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

impl Cleaner for Fake {
    fn clean_step(&self, after: &str, _c: &CleanupConfig) -> Result<Option<Cleaned>, String> {
        let Some((i, id)) = IDS.iter().enumerate().find(|(_, id)| **id > after) else {
            return Ok(None);
        };
        let mut removed = Vec::new();
        if i % 2 == 1 {
            lock(&self.removed).insert(id.to_string());
            removed.push(("fake", 1));
        }
        Ok(Some(Cleaned {
            id: id.to_string(),
            removed,
        }))
    }
}

async fn health(c: &Coordinator) -> Value {
    let m = c
        .answer(&PiggyCommand::RetrieveHealth, Duration::from_secs(1))
        .await
        .expect("health");
    m["statusInfo"]["details"][0]["INFO"].clone()
}

async fn until(c: &Coordinator, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let h = health(c).await;
        if f(&h) {
            return h;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {h}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn no_credits_while_writes_are_slow_then_it_catches_up_and_keeps_the_live() {
    let fake = Arc::new(Fake {
        removed: Mutex::new(BTreeSet::new()),
    });
    let config = CleanupConfig {
        interval: Duration::from_millis(20),
        timer_threshold: Duration::from_millis(5),
        credits_per_batch: 1,
        quiet_period: Duration::from_secs(3600),
        ..Default::default()
    };
    // A write load slower than the threshold, before the coordinator starts.
    let load = AbortOnDrop::spawn(async {
        loop {
            record_write(Duration::from_millis(50));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let (c, _task) = Coordinator::start(config, fake.clone());
    let h = until(&c, "throttled intervals", |h| {
        h["throttled-intervals"].as_u64() >= Some(5)
    })
    .await;
    assert_eq!(h["credits"], 0, "credits under a slow load: {h}");
    assert_eq!(h["state"], "THROTTLED", "{h}");
    assert!(lock(&fake.removed).is_empty());
    drop(load);

    // The load stops: it catches up, one credit per interval, and rests.
    let h = until(&c, "a whole pass", |h| h["passes"] == 1).await;
    assert_eq!(h["state"], "IN_QUIET_PERIOD", "{h}");
    assert_eq!(h["removed"], 3, "{h}");
    let removed: Vec<String> = lock(&fake.removed).iter().cloned().collect();
    assert_eq!(removed, ["b", "d", "f"], "only the stale went");

    // modifyConfig: bad keys named, nothing changed; last-pid and a short quiet period run
    // a partial pass from there.
    let bad = Map::from_iter([("credits-per-batch".to_string(), json!("many"))]);
    let e = c
        .answer(
            &PiggyCommand::ModifyConfig { config: bad },
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("credits-per-batch") && e.http_status() == 400,
        "{e}"
    );
    let unknown = Map::from_iter([("speed".to_string(), json!(1))]);
    assert!(c
        .answer(
            &PiggyCommand::ModifyConfig { config: unknown },
            Duration::from_secs(1)
        )
        .await
        .unwrap_err()
        .to_string()
        .contains("speed"));
    lock(&fake.removed).clear();
    let change = Map::from_iter([
        ("quiet-period".to_string(), json!("10ms")),
        ("last-pid".to_string(), json!("d")),
    ]);
    let r = c
        .answer(
            &PiggyCommand::ModifyConfig { config: change },
            Duration::from_secs(1),
        )
        .await
        .expect("modified");
    assert_eq!(r["config"]["quiet-period"], "10ms");
    assert_eq!(r["config"]["credits-per-batch"], 1);
    until(&c, "the next pass", |h| h["passes"].as_u64() >= Some(2)).await;
    assert!(lock(&fake.removed).contains("f"));
    let config = c
        .answer(&PiggyCommand::RetrieveConfig, Duration::from_secs(1))
        .await
        .expect("config");
    assert_eq!(config["config"]["timer-threshold"], "5ms");
}

#[test]
fn config_keys_read_as_written_and_bad_ones_are_named() {
    let c: CleanupConfig =
        serde_json::from_value(json!({"interval": "2s", "credits_per_batch": 5})).expect("config");
    assert_eq!(
        (c.interval, c.credits_per_batch),
        (Duration::from_secs(2), 5)
    );
    let z = CleanupConfig {
        reads_per_query: 0,
        ..Default::default()
    };
    assert!(z
        .validate("cleanup")
        .unwrap_err()
        .contains("cleanup.reads_per_query"));
}
