//! Log levels per logger, changed at runtime (Eclipse Ditto's `/devops/logging`): a logger is
//! a module path (`tributary_data_node::ditto`, what `tracing` calls a target) or `ROOT`, the
//! level of everything without one of its own. The process's filter is rebuilt from this
//! table and swapped in through tracing-subscriber's reload layer, so a change applies at once
//! without a restart.

use crate::sync::lock;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The logger that stands for every other one.
pub const ROOT: &str = "ROOT";

/// The levels an operator may set, as Ditto spells them.
pub const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Bad input to a level change: the value named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error("unknown level {0:?}: use one of trace, debug, info, warn, error, off")]
    Level(String),
    #[error(
        "unknown logger {0:?}: a logger is ROOT or a module path such as tributary_data_node::ditto"
    )]
    Logger(String),
}

/// `level`, lowercased, if it is one of [`LEVELS`].
pub fn parse_level(level: &str) -> Result<LevelFilter, LevelError> {
    let l = level.trim().to_ascii_lowercase();
    if !LEVELS.contains(&l.as_str()) {
        return Err(LevelError::Level(level.to_string()));
    }
    l.parse().map_err(|_| LevelError::Level(level.to_string()))
}

/// `logger` as stored: `ROOT` (any case), or a module path checked for its shape.
pub fn parse_logger(logger: &str) -> Result<String, LevelError> {
    let l = logger.trim();
    if l.eq_ignore_ascii_case(ROOT) {
        return Ok(ROOT.to_string());
    }
    let ident = |s: &str| {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    };
    if l.len() > 200 || !l.split("::").all(ident) {
        return Err(LevelError::Logger(logger.to_string()));
    }
    Ok(l.to_string())
}

fn name(l: LevelFilter) -> String {
    l.to_string().to_ascii_lowercase()
}

type Reload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

struct State {
    root: LevelFilter,
    loggers: BTreeMap<String, LevelFilter>,
    /// `RUST_LOG` directives that are more than `target=level` (span filters): kept as given,
    /// after the table's own.
    extra: Vec<String>,
    reload: Option<Reload>,
}

/// The process's level table (one per process: every server in it shares the subscriber).
pub struct LogLevels(Mutex<State>);

/// The table of this process.
pub fn levels() -> &'static LogLevels {
    static LEVELS_OF_PROCESS: OnceLock<LogLevels> = OnceLock::new();
    LEVELS_OF_PROCESS.get_or_init(|| {
        LogLevels(Mutex::new(State {
            root: LevelFilter::INFO,
            loggers: BTreeMap::new(),
            extra: Vec::new(),
            reload: None,
        }))
    })
}

impl State {
    fn directives(&self) -> String {
        let mut d = vec![name(self.root)];
        d.extend(
            self.loggers
                .iter()
                .map(|(l, v)| format!("{l}={}", name(*v))),
        );
        d.extend(self.extra.iter().cloned());
        d.join(",")
    }

    fn filter(&self) -> EnvFilter {
        EnvFilter::builder()
            .parse(self.directives())
            // Only the table's own directives can get here, and they are checked.
            .unwrap_or_else(|_| EnvFilter::new(name(self.root)))
    }
}

impl LogLevels {
    /// Sets the table at start: ROOT, per-logger levels, then `RUST_LOG` (when set) on top.
    /// Returns the filter to install; the error names the bad level or logger.
    pub(super) fn configure(
        &self,
        root: &str,
        loggers: &BTreeMap<String, String>,
        rust_log: Option<&str>,
    ) -> Result<EnvFilter, (String, LevelError)> {
        let mut st = lock(&self.0);
        st.root = parse_level(root).map_err(|e| ("level".to_string(), e))?;
        st.loggers.clear();
        st.extra.clear();
        for (logger, level) in loggers {
            let key = format!("loggers.{logger}");
            let l = parse_logger(logger).map_err(|e| (key.clone(), e))?;
            let v = parse_level(level).map_err(|e| (key, e))?;
            st.loggers.insert(l, v);
        }
        for d in rust_log.unwrap_or("").split(',').map(str::trim) {
            match d.split_once('=') {
                _ if d.is_empty() => {}
                None if parse_level(d).is_ok() => st.root = parse_level(d).unwrap_or(st.root),
                Some((t, l)) if parse_logger(t).is_ok() && parse_level(l).is_ok() => {
                    let (t, l) = (parse_logger(t), parse_level(l));
                    if let (Ok(t), Ok(l)) = (t, l) {
                        st.loggers.insert(t, l);
                    }
                }
                _ => {
                    EnvFilter::builder().parse(d).map_err(|e| {
                        (
                            "RUST_LOG".to_string(),
                            LevelError::Logger(format!("{d}: {e}")),
                        )
                    })?;
                    st.extra.push(d.to_string());
                }
            }
        }
        Ok(st.filter())
    }

    /// Where a change goes: the installed subscriber's reload handle.
    pub(super) fn attach(&self, reload: Reload) {
        lock(&self.0).reload = Some(reload);
    }

    /// ROOT first, then every logger with a level of its own.
    pub fn list(&self) -> Vec<(String, String)> {
        let st = lock(&self.0);
        std::iter::once((ROOT.to_string(), name(st.root)))
            .chain(st.loggers.iter().map(|(l, v)| (l.clone(), name(*v))))
            .collect()
    }

    /// The level `logger` logs at now (its own, else ROOT's).
    pub fn level_of(&self, logger: &str) -> String {
        let st = lock(&self.0);
        name(*st.loggers.get(logger).unwrap_or(&st.root))
    }

    /// Sets `logger` (or ROOT) to `level` and applies it to the running subscriber.
    pub fn set(&self, logger: &str, level: &str) -> Result<(), LevelError> {
        let logger = parse_logger(logger)?;
        let level = parse_level(level)?;
        let mut st = lock(&self.0);
        if logger == ROOT {
            st.root = level;
        } else {
            st.loggers.insert(logger.clone(), level);
        }
        let filter = st.filter();
        if let Some(reload) = &st.reload {
            if let Err(e) = reload(filter) {
                tracing::warn!(error = %e, "the new log levels could not be applied");
            }
        }
        drop(st);
        tracing::info!(%logger, level = %name(level), "log level changed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_loggers_are_checked() {
        assert_eq!(parse_level("DEBUG"), Ok(LevelFilter::DEBUG));
        assert_eq!(parse_level("off"), Ok(LevelFilter::OFF));
        assert!(matches!(parse_level("loud"), Err(LevelError::Level(l)) if l == "loud"));
        assert_eq!(parse_logger("root").as_deref(), Ok(ROOT));
        assert_eq!(
            parse_logger("tributary_data_node::ditto").as_deref(),
            Ok("tributary_data_node::ditto")
        );
        for bad in ["", "a b", "x::", "::x", "1abc", "a=debug"] {
            assert!(parse_logger(bad).is_err(), "{bad}");
        }
        let e = parse_logger("no such").unwrap_err().to_string();
        assert!(e.contains("no such"), "{e}");
    }

    #[test]
    fn the_table_lists_root_first_and_builds_directives() {
        let t = LogLevels(Mutex::new(State {
            root: LevelFilter::INFO,
            loggers: BTreeMap::new(),
            extra: Vec::new(),
            reload: None,
        }));
        let loggers = BTreeMap::from([("tributary_common".to_string(), "warn".to_string())]);
        t.configure("info", &loggers, Some("debug,h2=error,[span{a=1}]=trace"))
            .expect("configure");
        assert_eq!(
            t.list(),
            vec![
                (ROOT.into(), "debug".into()),
                ("h2".into(), "error".into()),
                ("tributary_common".into(), "warn".into())
            ]
        );
        t.set("tributary_common", "TRACE").expect("set");
        assert_eq!(t.level_of("tributary_common"), "trace");
        assert_eq!(t.level_of("elsewhere"), "debug");
        assert!(t.set("ROOT", "chatty").is_err());
        let bad = t.configure("nope", &BTreeMap::new(), None).unwrap_err();
        assert_eq!(bad.0, "level");
    }
}
