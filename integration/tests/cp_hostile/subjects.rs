//! `probe_inputs.py`, "three streams of 10,000 subjects": the overlap check compared each new
//! subject with every stored one on the Raft thread, so the third stream blocked every
//! catalogue read and write for 12.8 s.

use crate::member::{within, Member};
use anyhow::{ensure, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::Code;
use tributary_integration::entities::{stream, well};
use tributary_proto::v1::{EntityKind, EntityRef};

fn subjects(word: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{word}.s{i}")).collect()
}

fn stream_of(name: &str, subjects: &[String]) -> tributary_proto::v1::Entity {
    let s: Vec<&str> = subjects.iter().map(String::as_str).collect();
    stream(name, &s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_subjects_take_milliseconds_and_block_no_read() -> Result<()> {
    let _one = crate::serial().await;
    let limit = (
        "TRIBUTARY_LIMITS__MAX_SUBJECTS_PER_STREAM",
        "10000".to_string(),
    );
    let m = Member::start(&[limit]).await?;
    let mut cat = m.catalog()?;
    cat.create(well("default:base", &["base"])).await?;

    // Reads all along, as the probe's poller.
    let stop = Arc::new(AtomicBool::new(false));
    let worst_us = Arc::new(AtomicU64::new(0));
    let poller = {
        let (stop, worst_us, mut cat) = (stop.clone(), worst_us.clone(), m.catalog()?);
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = cat
                    .get(EntityRef {
                        kind: EntityKind::Well as i32,
                        name: "default:base".into(),
                    })
                    .await;
                worst_us.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                r?;
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            anyhow::Ok(n)
        })
    };
    let mut slowest = Duration::ZERO;
    for (k, word) in ["one", "two", "three"].into_iter().enumerate() {
        let t = Instant::now();
        cat.create(stream_of(&format!("SUBJ{k}"), &subjects(word, 10_000)))
            .await?;
        let took = t.elapsed();
        println!(
            "stream #{} of 10,000 subjects (against {} stored): {took:?}",
            k + 1,
            k * 10_000
        );
        slowest = slowest.max(took);
    }
    let t = Instant::now();
    cat.create(stream("SUBJ9", &["nine.only"])).await?;
    println!("then a 1-subject stream: {:?}", t.elapsed());
    // An overlap among 30,000 stored subjects is still found, and named.
    let err = cat
        .create(stream("CLASH", &["x.y", "two.*"]))
        .await
        .expect_err("overlap");
    ensure!(
        err.code() == Code::InvalidArgument
            && err.message().contains("\"two.*\" overlaps \"two.s")
            && err.message().contains("stream default:SUBJ1"),
        "{err:?}"
    );
    stop.store(true, Ordering::Relaxed);
    let polls = poller.await??;
    // Debug build on a shared 2-core machine; the quadratic check took 12.8 s.
    within("slowest create, ms", slowest.as_millis() as u64, 2_000)?;
    within(
        &format!("worst concurrent Get of {polls}, ms"),
        worst_us.load(Ordering::Relaxed) / 1000,
        2_000,
    )?;

    // With the default limit, 10,000 subjects are refused, naming it.
    drop(m);
    let m = Member::start(&[]).await?;
    let err = m
        .catalog()?
        .create(stream_of("BIG", &subjects("big", 10_000)))
        .await
        .expect_err("over the limit");
    ensure!(
        err.code() == Code::InvalidArgument
            && err.message().contains("limits.max_subjects_per_stream"),
        "{err:?}"
    );
    Ok(())
}
