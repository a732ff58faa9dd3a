//! One JSON object per line in the shape of Logstash's `LogstashEncoder` (what Eclipse Ditto
//! writes to its log files), so the files import into ELK as they are: `@timestamp`,
//! `@version`, `message`, `logger_name` (the module path), `thread_name`, `level`,
//! `level_value`, then the fields of the enclosing spans (outermost first, inner ones win;
//! `trace_id`/`span_id` among them when a span carries them) and the event's own fields.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter; pair it with `JsonFields` so span fields are stored as JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logstash;

/// Logstash's (logback's) numeric levels.
fn level_value(l: &Level) -> u32 {
    match *l {
        Level::TRACE => 5_000,
        Level::DEBUG => 10_000,
        Level::INFO => 20_000,
        Level::WARN => 30_000,
        Level::ERROR => 40_000,
    }
}

/// An event's fields as JSON values (`message` among them).
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.0.insert(f.name().into(), v.to_string().into());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.0.insert(f.name().into(), format!("{v:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for Logstash
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut obj = Map::new();
        obj.insert(
            "@timestamp".into(),
            humantime::format_rfc3339_millis(std::time::SystemTime::now())
                .to_string()
                .into(),
        );
        obj.insert("@version".into(), "1".into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(fields) = ext.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(fields.as_str()) {
                    obj.extend(m);
                }
            }
        }
        let mut own = Map::new();
        event.record(&mut Fields(&mut own));
        let message = own
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        obj.extend(own);
        obj.insert("message".into(), message);
        obj.insert("logger_name".into(), meta.target().into());
        let thread = std::thread::current();
        let thread_name = match thread.name() {
            Some(n) => n.to_string(),
            None => format!("{:?}", thread.id()),
        };
        obj.insert("thread_name".into(), thread_name.into());
        obj.insert("level".into(), meta.level().as_str().into());
        obj.insert("level_value".into(), level_value(meta.level()).into());
        writeln!(writer, "{}", Value::Object(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            crate::sync::lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    #[test]
    fn events_become_logstash_lines_with_span_fields() {
        let buf = Buf::default();
        let sub = tracing_subscriber::fmt()
            .event_format(Logstash)
            .fmt_fields(JsonFields::new())
            .with_writer(buf.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            let outer = tracing::info_span!("rpc", trace_id = "4bf92f35", well = "acme:orders");
            let _o = outer.enter();
            let inner = tracing::info_span!("batch", span_id = "00f067aa", well = "acme:inner");
            let _i = inner.enter();
            tracing::warn!(entries = 3u64, "mirrored {}", "a batch");
        });
        let text = String::from_utf8(crate::sync::lock(&buf.0).clone()).expect("utf-8");
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["message"], "mirrored a batch");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["level_value"], 30_000);
        assert_eq!(line["logger_name"], module_path!());
        assert_eq!(line["trace_id"], "4bf92f35");
        assert_eq!(line["span_id"], "00f067aa");
        assert_eq!(line["well"], "acme:inner", "the inner span wins");
        assert_eq!(line["entries"], 3);
        assert_eq!(line["@version"], "1");
        assert!(line["thread_name"].as_str().is_some_and(|t| !t.is_empty()));
        let ts = line["@timestamp"].as_str().expect("timestamp");
        assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    }
}
