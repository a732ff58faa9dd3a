//! The control plane under the audit's hostile input (issue 11, `acceptance/audit/probe_*.py`),
//! each probe replayed against a real member process: memory (its `VmRSS`) and disk stay
//! within a stated bound, the member stays up and serving, and nothing stored is lost.
//! The figures are printed (`cargo test … -- --nocapture`).

mod heartbeat;
mod member;
mod replies;
mod sizes;
mod subjects;
mod watch;

/// One attack at a time: each measures a process's memory or a latency, and two at once on
/// a 2-core machine would measure each other.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}
