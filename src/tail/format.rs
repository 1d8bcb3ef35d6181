//! How `encore tail` prints a record: one JSON object per line, or aligned columns for people.

use std::io::{self, Write};

use serde_json::{Map, Value};

use crate::kafka::dlq;

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `human` on a terminal, `json` otherwise.
    Auto,
    /// One JSON object per line: topic, partition, offset, timestamp, key, value, headers.
    Json,
    /// Aligned columns.
    Human,
}

/// One record as read.
#[derive(Clone, Debug, Default)]
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch (None: the record has none).
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl Record<'_> {
    /// The value parsed as JSON, None when it is not.
    pub fn parse_value(&self) -> Option<Value> {
        self.value.and_then(|v| serde_json::from_slice(v).ok())
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.map(|v| String::from_utf8_lossy(v).into_owned()))
    }
}

/// A JSON line, its fields in this order.
#[derive(Debug, serde::Serialize)]
pub struct Line<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Value>,
    value: Option<Value>,
    headers: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter: Option<Letter>,
}

/// The JSON line of a record; `value` is its value parsed (None: shown as a string). A dead
/// letter also gets `dead_letter`: its reason, error and source position, from its headers.
pub fn json_line<'a>(r: &Record<'a>, value: Option<Value>, dead_letter: bool) -> Line<'a> {
    let text = |b: &[u8]| Value::String(String::from_utf8_lossy(b).into_owned());
    Line {
        topic: r.topic,
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key.map(text),
        value: value.or_else(|| r.value.map(text)),
        headers: r
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.map_or(Value::Null, text)))
            .collect(),
        dead_letter: dead_letter.then(|| letter(r)),
    }
}

/// A dead letter's headers, read: why it was rejected and where it came from.
#[derive(Debug, serde::Serialize)]
struct Letter {
    reason: Option<String>,
    error: Option<String>,
    topic: Option<String>,
    partition: Option<i64>,
    offset: Option<i64>,
    timestamp: Option<i64>,
    /// Set when the value was cut to fit the dead-letter topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    original_size: Option<i64>,
}

fn letter(r: &Record) -> Letter {
    let num = |name| r.header(name).and_then(|v| v.parse::<i64>().ok());
    Letter {
        reason: r.header(dlq::REASON),
        error: r.header(dlq::ERROR),
        topic: r.header(dlq::TOPIC),
        partition: num(dlq::PARTITION),
        offset: num(dlq::OFFSET),
        timestamp: num(dlq::TIMESTAMP),
        original_size: num(dlq::ORIGINAL_SIZE),
    }
}

/// The human view: a header line before the first record, then a line per record (a dead
/// letter adds indented lines: error, key, value, other headers).
#[derive(Debug, Default)]
pub struct Human {
    pub dead_letters: bool,
    started: bool,
}

/// Longest value text shown in the human view; the JSON view shows every byte.
const SHOWN: usize = 1000;
/// Where a dead letter's details start.
const INDENT: &str = "      ";

impl Human {
    pub fn new(dead_letters: bool) -> Human {
        Human {
            dead_letters,
            started: false,
        }
    }

    pub fn write(
        &mut self,
        out: &mut impl Write,
        r: &Record,
        value: Option<&Value>,
    ) -> io::Result<()> {
        if !std::mem::replace(&mut self.started, true) {
            let last = if self.dead_letters {
                format!("{:<18}  SOURCE", "REASON")
            } else {
                format!("{:<24}  {:<36}  VALUE", "TYPE", "USER")
            };
            writeln!(
                out,
                "{:>4}  {:>10}  {:<24}  {last}",
                "PART", "OFFSET", "TIMESTAMP"
            )?;
        }
        let ts = r.timestamp.map_or_else(|| "-".to_string(), time);
        write!(out, "{:>4}  {:>10}  {ts:<24}  ", r.partition, r.offset)?;
        if self.dead_letters {
            self.letter(out, r)
        } else {
            let field = |n| value.and_then(|v| v.get(n)).and_then(Value::as_str);
            let user = field("user_id")
                .map(str::to_string)
                .or_else(|| r.key.map(shown));
            writeln!(
                out,
                "{:<24}  {:<36}  {}",
                field("event_type").unwrap_or("-"),
                user.as_deref().unwrap_or("-"),
                r.value.map_or_else(|| "(null)".into(), shown)
            )
        }
    }

    fn letter(&self, out: &mut impl Write, r: &Record) -> io::Result<()> {
        let h = |n| r.header(n).unwrap_or_else(|| "?".into());
        writeln!(
            out,
            "{:<18}  {}/{}@{}",
            h(dlq::REASON),
            h(dlq::TOPIC),
            h(dlq::PARTITION),
            h(dlq::OFFSET)
        )?;
        writeln!(out, "{INDENT}error: {}", h(dlq::ERROR))?;
        if let Some(k) = r.key {
            writeln!(out, "{INDENT}key: {}", shown(k))?;
        }
        let len = r.value.map_or(0, <[u8]>::len);
        let value = r.value.map_or_else(String::new, shown);
        writeln!(out, "{INDENT}value ({len} bytes): {value}")?;
        let shown_above = [
            dlq::REASON,
            dlq::ERROR,
            dlq::TOPIC,
            dlq::PARTITION,
            dlq::OFFSET,
        ];
        let others: Vec<String> = r
            .headers
            .iter()
            .filter(|(k, _)| !shown_above.contains(k))
            .map(|(k, v)| format!("{k}={}", v.map_or_else(|| "(null)".into(), shown)))
            .collect();
        if !others.is_empty() {
            writeln!(out, "{INDENT}headers: {}", others.join(", "))?;
        }
        Ok(())
    }
}

/// A record time as RFC 3339 in UTC, to the millisecond.
fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

/// Bytes as one line of text: invalid UTF-8 replaced, control characters escaped, at most
/// `SHOWN` characters.
fn shown(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    let mut s = String::with_capacity(text.len().min(SHOWN));
    for c in text.chars().take(SHOWN) {
        if c.is_control() {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
    }
    if text.chars().nth(SHOWN).is_some() {
        // A value cut to fit is often padding: its end says nothing.
        s.truncate(s.trim_end().len());
        s.push_str(&format!("… ({} bytes)", b.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a_letter() -> Record<'static> {
        Record {
            topic: "t.dlq",
            partition: 1,
            offset: 7,
            timestamp: Some(1_767_225_600_123),
            key: None,
            value: Some(b"{\"trac"),
            headers: vec![
                (dlq::REASON, Some(b"invalid_json")),
                (dlq::ERROR, Some(b"not a JSON event: EOF")),
                (dlq::TOPIC, Some(b"t")),
                (dlq::PARTITION, Some(b"1")),
                (dlq::OFFSET, Some(b"300")),
                (dlq::TIMESTAMP, Some(b"1767225600000")),
            ],
        }
    }

    #[test]
    fn json_lines_carry_the_record_and_the_value_parsed_when_it_is_json() {
        let r = Record {
            topic: "t",
            partition: 2,
            offset: 5,
            timestamp: Some(10),
            key: Some(b"k"),
            value: Some(b"{\"a\": 1}"),
            headers: vec![("h", Some(b"v")), ("n", None)],
        };
        let text = serde_json::to_string(&json_line(&r, r.parse_value(), false)).unwrap();
        assert!(
            text.starts_with(r#"{"topic":"t","partition":2,"offset":5,"#),
            "{text}"
        );
        let j: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            j,
            json!({"topic": "t", "partition": 2, "offset": 5, "timestamp": 10, "key": "k",
                   "value": {"a": 1}, "headers": {"h": "v", "n": null}})
        );
        let raw = Record {
            value: Some(b"not json\xff"),
            key: None,
            timestamp: None,
            ..r
        };
        let j = serde_json::to_value(json_line(&raw, raw.parse_value(), false)).unwrap();
        assert_eq!(j["value"], "not json\u{fffd}");
        assert_eq!(j["key"], Value::Null);
        assert_eq!(j["timestamp"], Value::Null);
    }

    #[test]
    fn dead_letters_show_their_reason_and_source() {
        let r = a_letter();
        let j = serde_json::to_value(json_line(&r, r.parse_value(), true)).unwrap();
        assert_eq!(
            j["dead_letter"],
            json!({"reason": "invalid_json", "error": "not a JSON event: EOF", "topic": "t",
                   "partition": 1, "offset": 300, "timestamp": 1767225600000i64})
        );
        assert_eq!(j["value"], "{\"trac");
        let mut out = Vec::new();
        let mut h = Human::new(true);
        h.write(&mut out, &r, None).unwrap();
        h.write(&mut out, &r, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 9, "one header, four lines a letter:\n{text}");
        assert!(
            lines[0].starts_with("PART      OFFSET  TIMESTAMP"),
            "{text}"
        );
        assert_eq!(
            lines[1],
            "   1           7  2026-01-01T00:00:00.123Z  invalid_json        t/1@300"
        );
        assert_eq!(lines[2], "      error: not a JSON event: EOF");
        assert_eq!(lines[3], "      value (6 bytes): {\"trac");
        assert_eq!(lines[4], "      headers: encore.timestamp_ms=1767225600000");
    }

    #[test]
    fn the_human_view_aligns_events_and_keeps_one_line_per_record() {
        // A newline between tokens: valid JSON, shown escaped.
        let v = b"{\"event_type\":\"track_like\",\n\"user_id\":\"u1\"}";
        let r = Record {
            topic: "t",
            partition: 0,
            offset: 12345,
            timestamp: Some(0),
            value: Some(v),
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut h = Human::new(false);
        h.write(&mut out, &r, r.parse_value().as_ref()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let value_at = lines[0].find("VALUE").unwrap();
        assert_eq!(lines[1].find("{\"event_type\""), Some(value_at), "{text}");
        assert!(
            lines[1].contains("  track_like  ") && lines[1].contains(",\\n\"user_id"),
            "{text}"
        );
        assert!(lines[1].starts_with("   0       12345  1970-01-01T00:00:00.000Z"));
        let long = vec![b'x'; 5000];
        assert_eq!(shown(&long), format!("{}… (5000 bytes)", "x".repeat(SHOWN)));
        let padded = [&b"{}"[..], &[b' '; 3000]].concat();
        assert_eq!(shown(&padded), "{}… (3002 bytes)");
    }
}
