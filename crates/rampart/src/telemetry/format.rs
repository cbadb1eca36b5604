//! The event formatter: JSON lines (or text) with redaction built in.
//!
//! Redaction lives here, in a [`FormatEvent`] and its [`FormatFields`],
//! because the formatter is what reads field values: a filtering layer could
//! not stop tracing-subscriber's own formatters from printing them.

use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::redact::{REDACTED, Redactor};
use super::settings::LogFormat;
use crate::clock::{Clock, SystemClock};

/// Between a stored field's name and its rendered value; never appears in
/// rendered output, where control characters are escaped.
const NAME_END: char = '\u{1f}';
/// After each stored field.
const FIELD_END: char = '\n';

/// Formats each event as one line, JSON (`{"timestamp":...}`) or text, with
/// sensitive fields and credential-looking values replaced by `[REDACTED]`
/// and control characters escaped. Use it with [`RedactingFields`], which
/// records span fields the same way.
#[derive(Debug, Clone)]
pub struct RedactingFormat {
    redactor: Arc<Redactor>,
    format: LogFormat,
    clock: Arc<dyn Clock>,
}

/// Records span fields for [`RedactingFormat`], redacted as event fields are.
#[derive(Debug, Clone)]
pub struct RedactingFields {
    redactor: Arc<Redactor>,
    format: LogFormat,
}

impl RedactingFormat {
    /// A formatter writing `format` with `redactor`, stamped by the system clock.
    pub fn new(format: LogFormat, redactor: Arc<Redactor>) -> RedactingFormat {
        RedactingFormat { redactor, format, clock: Arc::new(SystemClock) }
    }

    /// Takes timestamps from `clock`.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> RedactingFormat {
        self.clock = Arc::new(clock);
        self
    }

    /// The matching recorder of span fields.
    pub fn fields(&self) -> RedactingFields {
        RedactingFields { redactor: self.redactor.clone(), format: self.format }
    }
}

/// Buffers reused from event to event on each thread.
#[derive(Default)]
struct Scratch {
    line: String,
    message: String,
    fields: String,
    spans: String,
    value: String,
    entries: Vec<(usize, usize, usize)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's buffers, or fresh ones when they are in use
/// (a `Debug` impl that logs while being formatted) or gone (thread exit).
fn with_scratch<R>(mut f: impl FnMut(&mut Scratch) -> R) -> R {
    let reused = SCRATCH.try_with(|cell| cell.try_borrow_mut().ok().map(|mut s| f(&mut s)));
    match reused {
        Ok(Some(out)) => out,
        _ => f(&mut Scratch::default()),
    }
}

impl<S, N> FormatEvent<S, N> for RedactingFormat
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
        with_scratch(|s| {
            s.line.clear();
            s.message.clear();
            s.fields.clear();
            s.spans.clear();
            event.record(&mut Recorder {
                redactor: &self.redactor,
                format: self.format,
                out: &mut s.fields,
                value: &mut s.value,
                message: Some(&mut s.message),
            });
            // Span fields as RedactingFields stored them, root first.
            if let Some(scope) = ctx.event_scope() {
                for span in scope.from_root() {
                    if let Some(fields) =
                        span.extensions().get::<FormattedFields<RedactingFields>>()
                    {
                        s.spans.push_str(fields);
                    }
                }
            }
            let time = self.clock.system_time();
            match self.format {
                LogFormat::Json => self.json_line(s, event, time),
                LogFormat::Text => self.text_line(s, event, time),
            }
            writer.write_str(&s.line)
        })
    }
}

impl RedactingFormat {
    fn json_line(&self, s: &mut Scratch, event: &Event<'_>, time: SystemTime) {
        let meta = event.metadata();
        let line = &mut s.line;
        line.push_str("{\"timestamp\":\"");
        push_timestamp(line, time);
        line.push_str("\",\"level\":\"");
        line.push_str(level_str(*meta.level()));
        line.push_str("\",\"target\":");
        push_json_str(line, meta.target());
        if !s.message.is_empty() {
            line.push_str(",\"message\":\"");
            push_redacted(line, &s.message, &self.redactor, Escape::Json);
            line.push('"');
        }
        if let Some(module) = meta.module_path() {
            line.push_str(",\"module\":");
            push_json_str(line, module);
        }
        if let Some(file) = meta.file() {
            line.push_str(",\"file\":");
            push_json_str(line, file);
        }
        if let Some(n) = meta.line() {
            let _ = write!(line, ",\"line\":{n}");
        }
        // Event fields have distinct names; spans may repeat one another's.
        for (key, fields, dedup) in [("span", &s.spans, true), ("fields", &s.fields, false)] {
            if fields.is_empty() {
                continue;
            }
            line.push_str(if key == "span" { ",\"span\":{" } else { ",\"fields\":{" });
            let mut first = true;
            for_each_field(fields, dedup, &mut s.entries, |name, value| {
                if !first {
                    line.push(',');
                }
                first = false;
                push_json_str(line, name);
                line.push(':');
                line.push_str(value);
            });
            line.push('}');
        }
        line.push_str("}\n");
    }

    fn text_line(&self, s: &mut Scratch, event: &Event<'_>, time: SystemTime) {
        let meta = event.metadata();
        let line = &mut s.line;
        push_timestamp(line, time);
        let _ = write!(line, " {:>5} ", level_str(*meta.level()));
        escape(line, meta.target(), Escape::Text);
        line.push_str(": ");
        push_redacted(line, &s.message, &self.redactor, Escape::Text);
        for (fields, dedup) in [(&s.fields, false), (&s.spans, true)] {
            for_each_field(fields, dedup, &mut s.entries, |name, value| {
                line.push(' ');
                escape(line, name, Escape::Text);
                line.push('=');
                line.push_str(value);
            });
        }
        line.push('\n');
    }
}

/// Calls `f(name, rendered value)` for each stored field. With `dedup`, a
/// field whose name comes again later is skipped (a later value, or an inner
/// span's, wins); `entries` is a reusable buffer of offsets.
fn for_each_field<'a>(
    stored: &'a str,
    dedup: bool,
    entries: &mut Vec<(usize, usize, usize)>,
    mut f: impl FnMut(&'a str, &'a str),
) {
    entries.clear();
    let bytes = stored.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let Some(name_end) = bytes[start..].iter().position(|&b| b == NAME_END as u8) else {
            break;
        };
        let name_end = start + name_end;
        let end = bytes[name_end..]
            .iter()
            .position(|&b| b == FIELD_END as u8)
            .map_or(bytes.len(), |n| name_end + n);
        entries.push((start, name_end, end));
        start = end + 1;
    }
    for (i, &(start, name_end, end)) in entries.iter().enumerate() {
        let name = &stored[start..name_end];
        if dedup && entries[i + 1..].iter().any(|&(s, n, _)| &stored[s..n] == name) {
            continue;
        }
        f(name, &stored[name_end + 1..end]);
    }
}

impl<'writer> FormatFields<'writer> for RedactingFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut out = String::new();
        let mut value = String::new();
        fields.record(&mut Recorder {
            redactor: &self.redactor,
            format: self.format,
            out: &mut out,
            value: &mut value,
            message: None,
        });
        writer.write_str(&out)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // Entries are self-delimiting: no separator to add.
        self.format_fields(current.as_writer(), fields)
    }
}

/// Renders fields as `name NAME_END value FIELD_END` entries, values already
/// redacted and escaped for the format.
struct Recorder<'a> {
    redactor: &'a Redactor,
    format: LogFormat,
    out: &'a mut String,
    value: &'a mut String,
    /// Where the `message` field goes, for events.
    message: Option<&'a mut String>,
}

impl Recorder<'_> {
    fn begin(&mut self, field: &Field) -> bool {
        self.out.push_str(field.name());
        self.out.push(NAME_END);
        if self.redactor.is_sensitive_name(field.name()) {
            match self.format {
                LogFormat::Json => {
                    self.out.push('"');
                    self.out.push_str(REDACTED);
                    self.out.push('"');
                }
                LogFormat::Text => self.out.push_str(REDACTED),
            }
            self.out.push(FIELD_END);
            return false;
        }
        true
    }

    fn literal(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.begin(field) {
            let _ = self.out.write_fmt(value);
            self.out.push(FIELD_END);
        }
    }

    fn text(&mut self, field: &Field, value: &str) {
        if self.begin(field) {
            self.out.push('"');
            push_redacted(self.out, value, self.redactor, Escape::Json);
            self.out.push('"');
            self.out.push(FIELD_END);
        }
    }

    /// The scratch value buffer, filled by `fill`, as a text field.
    fn formatted(&mut self, field: &Field, fill: impl FnOnce(&mut String)) {
        let mut value = std::mem::take(self.value);
        value.clear();
        fill(&mut value);
        self.text(field, &value);
        *self.value = value;
    }
}

impl Visit for Recorder<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match &mut self.message {
            Some(message) if field.name() == "message" => message.push_str(value),
            _ => self.text(field, value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match &mut self.message {
            Some(message) if field.name() == "message" => {
                let _ = write!(message, "{value:?}");
            }
            _ => self.formatted(field, |out| {
                let _ = write!(out, "{value:?}");
            }),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn StdError + 'static)) {
        self.formatted(field, |out| {
            let _ = write!(out, "{value}");
            let mut source = value.source();
            while let Some(cause) = source {
                let _ = write!(out, ": {cause}");
                source = cause.source();
            }
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.literal(field, format_args!("{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.literal(field, format_args!("{value}"));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.literal(field, format_args!("{value}"));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.literal(field, format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.literal(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.literal(field, format_args!("{value}"));
        } else {
            // JSON has no NaN or infinity.
            self.text(field, &value.to_string());
        }
    }
}

fn level_str(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Inside a JSON string: `"`, `\` and control characters.
    Json,
    /// Free text: control characters only.
    Text,
}

fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    escape(out, text, Escape::Json);
    out.push('"');
}

/// `text` with its secrets replaced, escaped.
fn push_redacted(out: &mut String, text: &str, redactor: &Redactor, how: Escape) {
    let mut last = 0;
    redactor.for_each_secret(text, |start, end| {
        escape(out, &text[last..start], how);
        out.push_str(REDACTED);
        last = end;
    });
    escape(out, &text[last..], how);
}

/// Bytes that need a look in JSON strings: controls, DEL, `"`, `\\`, and
/// 0xC2 (which starts the C1 controls).
const JSON_SPECIAL: [bool; 256] = special_bytes(true);
/// The same for free text, where quotes and backslashes stay.
const TEXT_SPECIAL: [bool; 256] = special_bytes(false);

const fn special_bytes(json: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[0x7f] = true;
    table[0xc2] = true;
    table[b'"' as usize] = json;
    table[b'\\' as usize] = json;
    table
}

/// Appends `text`, escaping what could break the line or the terminal:
/// C0 controls, DEL and C1 controls always (as `\n`, `\u001b`...), and in
/// JSON also `"` and `\`.
fn escape(out: &mut String, text: &str, how: Escape) {
    let table = if how == Escape::Json { &JSON_SPECIAL } else { &TEXT_SPECIAL };
    let bytes = text.as_bytes();
    let mut last = 0;
    let mut i = 0;
    while let Some(n) = bytes[i..].iter().position(|&b| table[usize::from(b)]) {
        i += n;
        let b = bytes[i];
        // C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8.
        let c1 = b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
        if b == 0xc2 && !c1 {
            i += 1;
            continue;
        }
        out.push_str(&text[last..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0xc2 => {
                let _ = write!(out, "\\u{:04x}", bytes[i + 1]);
            }
            other => {
                let _ = write!(out, "\\u{other:04x}");
            }
        }
        i += if c1 { 2 } else { 1 };
        last = i;
    }
    out.push_str(&text[last..]);
}

/// RFC 3339 in UTC with microseconds: `2025-01-01T00:00:00.000000Z`.
fn push_timestamp(out: &mut String, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_micros()
    );
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |secs: u64, micros: u64| {
            let mut s = String::new();
            push_timestamp(
                &mut s,
                UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros),
            );
            s
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_735_689_600, 7), "2025-01-01T00:00:00.000007Z");
        assert_eq!(at(951_782_400 + 86_399, 999_999), "2000-02-29T23:59:59.999999Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
    }

    #[test]
    fn control_characters_are_escaped_in_both_formats() {
        let nasty = "a\"b\\c\nd\re\tf\u{1b}[31mg\u{7f}h\u{9b}i\u{85}é";
        let mut json = String::new();
        escape(&mut json, nasty, Escape::Json);
        assert_eq!(json, "a\\\"b\\\\c\\nd\\re\\tf\\u001b[31mg\\u007fh\\u009bi\\u0085é");
        let parsed: String = serde_json::from_str(&format!("\"{json}\"")).expect("valid JSON");
        assert_eq!(parsed, nasty);
        let mut text = String::new();
        escape(&mut text, nasty, Escape::Text);
        assert_eq!(text, "a\"b\\c\\nd\\re\\tf\\u001b[31mg\\u007fh\\u009bi\\u0085é");
        assert!(!text.chars().any(char::is_control));
    }

    #[test]
    fn later_fields_win() {
        let stored = "a\u{1f}1\nb\u{1f}2\na\u{1f}3\n";
        let mut seen = Vec::new();
        for_each_field(stored, true, &mut Vec::new(), |k, v| seen.push(format!("{k}={v}")));
        assert_eq!(seen, ["b=2", "a=3"]);
        seen.clear();
        for_each_field(stored, false, &mut Vec::new(), |k, v| seen.push(format!("{k}={v}")));
        assert_eq!(seen, ["a=1", "b=2", "a=3"]);
    }
}
