//! The file appender as logback configures Ditto's: a file name pattern from which the
//! rollover is inferred (`%d{yyyy-MM-dd}` daily, `…HH` hourly, `…mm` every minute; `%i`
//! numbered files rolled by size), gzip of rolled files when the pattern ends in `.gz`, the
//! number of rolled files kept, a cap on their total size, and that clean-up run at start.
//! Rolling and compressing is logroller's; the size cap and the clean-up at start (which it
//! lacks) are the sweep here, run at start and then every few seconds of logging.

use logroller::{Compression, LogRoller, LogRollerBuilder, Rotation, RotationAge, RotationSize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A bad setting: the key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad(pub &'static str, pub String);

/// What a pattern asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub dir: PathBuf,
    /// The file name as logroller takes it: a strftime template (time) or the live file (size).
    pub file: String,
    pub rollover: Rollover,
    pub gzip: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollover {
    Minutely,
    Hourly,
    Daily,
    /// Numbered files (`%i`), rolled past this many bytes.
    Size(u64),
}

/// `1GB`, `500MB`, `64KB`, `1024` (bytes), as logback's FileSize (1 KB = 1024 bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_uppercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().ok()?;
    let mult: u64 = match t[digits..]
        .trim()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A Java date pattern (`yyyy-MM-dd`) as strftime, and the finest unit it names.
fn java_to_strftime(p: &str) -> Result<(String, Rollover), String> {
    let mut out = String::new();
    let mut finest = None;
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|x| **x == c).count();
        let token = match (c, run) {
            ('y', 4) => "%Y",
            ('y', 2) => "%y",
            ('M', 2) => "%m",
            ('d', 2) => {
                finest = finest.or(Some(Rollover::Daily));
                "%d"
            }
            ('H', 2) => {
                finest = Some(match finest {
                    Some(Rollover::Minutely) => Rollover::Minutely,
                    _ => Rollover::Hourly,
                });
                "%H"
            }
            ('m', 2) => {
                finest = Some(Rollover::Minutely);
                "%M"
            }
            ('s', _) => return Err("rolling over every second is not supported".into()),
            (c, _) if c.is_ascii_alphabetic() => {
                return Err(format!("date token {:?} is not supported", &p[i..i + run]))
            }
            ('%' | '/', _) => return Err(format!("{c:?} in a date pattern")),
            _ => {
                out.extend(&chars[i..i + run]);
                i += run;
                continue;
            }
        };
        out.push_str(token);
        i += run;
    }
    let finest = finest.ok_or_else(|| {
        "the date pattern must name the day (dd), hour (HH) or minute (mm) to roll over on"
            .to_string()
    })?;
    Ok((out, finest))
}

/// Reads a logback file name pattern; `%d` alone is `%d{yyyy-MM-dd}`.
pub fn plan(pattern: &str, max_file_size: &str) -> Result<Plan, Bad> {
    let key = "logging.file_name_pattern";
    let bad = |why: String| Bad(key, format!("{pattern:?}: {why}"));
    let path = Path::new(pattern);
    let (dir, name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(d), Some(n)) => (d.to_path_buf(), n.to_string()),
        _ => return Err(bad("no file name".into())),
    };
    if dir.to_string_lossy().contains('%') {
        return Err(bad("the directory must not hold a pattern".into()));
    }
    let (name, gzip) = match name.strip_suffix(".gz") {
        Some(n) => (n.to_string(), true),
        None => (name, false),
    };
    let has_d = name.contains("%d");
    if has_d && name.contains("%i") {
        return Err(bad(
            "use %d (roll by time) or %i (roll by size), not both".into()
        ));
    }
    if let Some(live) = name.strip_suffix(".%i") {
        if live.is_empty() || live.contains('%') {
            return Err(bad("%i needs a plain file name before it".into()));
        }
        let size = parse_size(max_file_size)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                Bad(
                    "logging.max_log_file_size",
                    format!("{max_file_size:?} is not a size such as 100MB"),
                )
            })?;
        return Ok(Plan {
            dir,
            file: live.to_string(),
            rollover: Rollover::Size(size),
            gzip,
        });
    }
    if name.contains("%i") {
        return Err(bad(
            "%i must end the file name (`NAME.%i` or `NAME.%i.gz`)".into()
        ));
    }
    let start = name
        .find("%d")
        .ok_or_else(|| bad("no %d{…} (roll by time) or %i (roll by size) in it".into()))?;
    let rest = &name[start + 2..];
    let (java, after) = match rest.strip_prefix('{') {
        Some(r) => {
            let end = r.find('}').ok_or_else(|| bad("%d{ is not closed".into()))?;
            (&r[..end], &r[end + 1..])
        }
        None => ("yyyy-MM-dd", rest),
    };
    if name[..start].contains('%') || after.contains('%') {
        return Err(bad("only one %d{…} is supported".into()));
    }
    let (date, rollover) = java_to_strftime(java).map_err(bad)?;
    Ok(Plan {
        dir,
        file: format!("{}{date}{after}", &name[..start]),
        rollover,
        gzip,
    })
}

/// Rolled files and the cap on them.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_history: u64,
    pub total_size: u64,
}

impl Plan {
    pub fn roller(&self, max_history: u64) -> Result<LogRoller, Bad> {
        let rotation = match self.rollover {
            Rollover::Minutely => Rotation::AgeBased(RotationAge::Minutely),
            Rollover::Hourly => Rotation::AgeBased(RotationAge::Hourly),
            Rollover::Daily => Rotation::AgeBased(RotationAge::Daily),
            Rollover::Size(n) => Rotation::SizeBased(RotationSize::Bytes(n)),
        };
        let mut b = LogRollerBuilder::new(self.dir.as_path(), Path::new(&self.file))
            .rotation(rotation)
            .max_keep_files(max_history.max(1));
        if self.gzip {
            b = b.compression(Compression::Gzip);
        }
        b.build()
            .map_err(|e| Bad("logging.file_name_pattern", e.to_string()))
    }

    /// Whether `name` (a file in `dir`) is one this pattern writes.
    fn matches(&self, name: &str) -> bool {
        let name = name.strip_suffix(".gz").unwrap_or(name);
        match self.rollover {
            Rollover::Size(_) => name
                .strip_prefix(&self.file)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
            _ => shape_of(&self.file) == shape_of(name) && !name.contains('%'),
        }
    }

    /// The rolled files, oldest first, with their sizes, and the bytes of the live one.
    fn rolled(&self) -> (Vec<(PathBuf, u64)>, u64) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return (Vec::new(), 0);
        };
        let mut files: Vec<(String, u64)> = dir
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                Some((name, meta.len()))
            })
            .collect();
        let mut live = 0;
        if let Rollover::Size(_) = self.rollover {
            live = files
                .iter()
                .find(|(n, _)| *n == self.file)
                .map_or(0, |f| f.1);
        }
        files.retain(|(n, _)| self.matches(n));
        match self.rollover {
            // Higher numbers are older.
            Rollover::Size(_) => files.sort_by_key(|(n, _)| std::cmp::Reverse(index(n))),
            // Dates sort as they happened; the newest, when not gzipped, is the live one.
            _ => {
                files.sort();
                if files.last().is_some_and(|(n, _)| !n.ends_with(".gz")) {
                    live = files.pop().map_or(0, |f| f.1);
                }
            }
        }
        let files = files
            .into_iter()
            .map(|(n, s)| (self.dir.join(n), s))
            .collect();
        (files, live)
    }

    /// Removes the oldest rolled files beyond `max_history` and beyond `total_size` (the live
    /// file counting towards it); returns what it removed.
    pub fn sweep(&self, r: Retention) -> Vec<PathBuf> {
        let (mut rolled, live) = self.rolled();
        let mut removed = Vec::new();
        let mut total: u64 = live + rolled.iter().map(|f| f.1).sum::<u64>();
        let keep = usize::try_from(r.max_history).unwrap_or(usize::MAX);
        while !rolled.is_empty() && (rolled.len() > keep || total > r.total_size) {
            let (path, size) = rolled.remove(0);
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(size);
                removed.push(path);
            }
        }
        removed
    }
}

/// A name with every digit made `#`: what files of one template have in common.
fn shape_of(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('Y') => out.push_str("####"),
                Some(_) => out.push_str("##"),
                None => out.push('%'),
            },
            c if c.is_ascii_digit() => out.push('#'),
            c => out.push(c),
        }
    }
    out
}

fn index(name: &str) -> u64 {
    let n = name.strip_suffix(".gz").unwrap_or(name);
    n.rsplit('.')
        .next()
        .and_then(|i| i.parse().ok())
        .unwrap_or(0)
}

/// logroller's writer with the size cap swept every few seconds of logging.
pub struct Swept {
    roller: LogRoller,
    plan: Plan,
    retention: Retention,
    next_sweep: Instant,
}

const SWEEP_EVERY: Duration = Duration::from_secs(5);

impl Swept {
    pub fn new(roller: LogRoller, plan: Plan, retention: Retention) -> Swept {
        Swept {
            roller,
            plan,
            retention,
            next_sweep: Instant::now() + SWEEP_EVERY,
        }
    }
}

impl Write for Swept {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.roller.write(buf)?;
        if Instant::now() >= self.next_sweep {
            self.next_sweep = Instant::now() + SWEEP_EVERY;
            self.plan.sweep(self.retention);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.roller.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_say_how_to_roll() {
        let p = plan("/var/log/tributary/cp.log.%d{yyyy-MM-dd}.gz", "1MB").unwrap();
        assert_eq!(p.dir, PathBuf::from("/var/log/tributary"));
        assert_eq!(
            (p.file.as_str(), p.rollover, p.gzip),
            ("cp.log.%Y-%m-%d", Rollover::Daily, true)
        );
        let p = plan("/l/x.%d{yyyy-MM-dd_HH}.log", "1MB").unwrap();
        assert_eq!(
            (p.file.as_str(), p.rollover, p.gzip),
            ("x.%Y-%m-%d_%H.log", Rollover::Hourly, false)
        );
        let p = plan("/l/x.log.%d{yyyy-MM-dd-HH-mm}.gz", "1MB").unwrap();
        assert_eq!(p.rollover, Rollover::Minutely);
        assert_eq!(
            plan("/l/x.log.%d", "1MB").unwrap().rollover,
            Rollover::Daily
        );
        let p = plan("/l/x.log.%i.gz", "64KB").unwrap();
        assert_eq!(
            (p.file.as_str(), p.rollover),
            ("x.log", Rollover::Size(65_536))
        );
        for bad in [
            "/l/x.log",
            "/l/x.%d{yyyy-MM}.log",
            "/l/x.%d{yyyy-MM-dd-HH-mm-ss}",
            "/l/%d/x.%d",
            "/l/x.%d.%i",
            "/l/x.%d{yyyy-MM-dd",
            "/l/x.%i.log",
        ] {
            let e = plan(bad, "1MB").expect_err(bad);
            assert_eq!(e.0, "logging.file_name_pattern", "{bad}");
            assert!(e.1.contains(bad), "{e:?}");
        }
        assert_eq!(
            plan("/l/x.%i", "lots").unwrap_err().0,
            "logging.max_log_file_size"
        );
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("10 kb"), Some(10 << 10));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("5 parsecs"), None);
    }

    #[test]
    fn the_sweep_keeps_history_and_the_size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = dir.path().join("cp.log.%d{yyyy-MM-dd}.gz");
        let p = plan(pattern.to_str().unwrap(), "1MB").unwrap();
        for (name, size) in [
            ("cp.log.2026-01-01.gz", 100),
            ("cp.log.2026-01-02.gz", 100),
            ("cp.log.2026-01-03.gz", 100),
            ("cp.log.2026-01-04", 50),
            ("other.log", 1_000),
        ] {
            std::fs::write(dir.path().join(name), vec![b'x'; size]).unwrap();
        }
        let gone = p.sweep(Retention {
            max_history: 2,
            total_size: 1 << 20,
        });
        assert_eq!(gone, vec![dir.path().join("cp.log.2026-01-01.gz")]);
        let gone = p.sweep(Retention {
            max_history: 10,
            total_size: 160,
        });
        assert_eq!(gone, vec![dir.path().join("cp.log.2026-01-02.gz")]);
        assert!(
            dir.path().join("cp.log.2026-01-04").exists(),
            "the live file stays"
        );
        assert!(dir.path().join("other.log").exists());

        let p = plan(dir.path().join("dn.log.%i.gz").to_str().unwrap(), "1KB").unwrap();
        for name in ["dn.log", "dn.log.1.gz", "dn.log.2.gz", "dn.log.3.gz"] {
            std::fs::write(dir.path().join(name), b"abc").unwrap();
        }
        let gone = p.sweep(Retention {
            max_history: 1,
            total_size: 1 << 20,
        });
        assert_eq!(
            gone,
            vec![
                dir.path().join("dn.log.3.gz"),
                dir.path().join("dn.log.2.gz")
            ]
        );
    }
}
