//! The CRI container log format and the `containerLogs` options, as pure functions.
//!
//! containerd writes one record per line: `<RFC 3339 timestamp> <stdout|stderr> <tag> <text>`,
//! where the tag's first `:`-separated field is `F` (the text ends a line) or `P` (a partial
//! line the runtime split, to be joined with the next record of the same stream). This
//! module parses records, joins partial lines, renders entries as `kubectl logs` expects
//! them, finds where the last N lines start, and parses the request's options. It does no
//! IO: `logs.rs` reads the files.

use chrono::{DateTime, SecondsFormat, Utc};

/// Which output stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One line of a CRI log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: DateTime<Utc>,
    pub stream: Stream,
    /// The runtime split a long line; the text continues in the next record.
    pub partial: bool,
    /// The text, without the line's newline.
    pub text: &'a [u8],
}

/// Parse one line of a CRI log file (without its trailing newline).
pub fn parse_record(line: &[u8]) -> Result<Record<'_>, String> {
    let (timestamp, rest) = split_field(line).ok_or("timestamp is not found")?;
    let timestamp = std::str::from_utf8(timestamp).map_err(|_| "timestamp is not UTF-8")?;
    let time = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|e| format!("unexpected timestamp {timestamp:?}: {e}"))?
        .with_timezone(&Utc);
    let (stream, rest) = split_field(rest).ok_or("stream type is not found")?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        other => {
            return Err(format!(
                "unexpected stream type {:?}",
                String::from_utf8_lossy(other)
            ))
        }
    };
    // containerd always writes the space after the tag, even for an empty line; accept a
    // bare tag anyway rather than lose the record.
    let (tag, text) = split_field(rest).unwrap_or((rest, b""));
    // Tags are `:`-separated for forward compatibility; only the first one means anything.
    let partial = tag.split(|b| *b == b':').next() == Some(b"P");
    Ok(Record {
        time,
        stream,
        partial,
        text,
    })
}

fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = line.iter().position(|b| *b == b' ')?;
    Some((&line[..at], &line[at + 1..]))
}

/// A whole log line (partial records joined), stamped with the time of its first part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub time: DateTime<Utc>,
    pub stream: Stream,
    /// The text, ending in `\n` unless the line was never finished.
    pub text: Vec<u8>,
}

/// A line that keeps arriving in partial records is handed out in pieces of this size
/// rather than held in memory without bound.
const MAX_PENDING: usize = 1024 * 1024;

/// Joins partial records into whole lines, per stream (stdout and stderr interleave).
#[derive(Debug, Default)]
pub struct Assembler {
    pending: [Option<(DateTime<Utc>, Vec<u8>)>; 2],
}

impl Assembler {
    /// Take one record; returns a line when this record completes one.
    pub fn push(&mut self, record: &Record<'_>) -> Option<Entry> {
        let slot = &mut self.pending[record.stream.index()];
        let (time, text) = slot.get_or_insert_with(|| (record.time, Vec::new()));
        let time = *time;
        text.extend_from_slice(record.text);
        if !record.partial {
            text.push(b'\n');
        } else if text.len() < MAX_PENDING {
            return None;
        }
        let (_, text) = slot.take().expect("just filled");
        Some(Entry {
            time,
            stream: record.stream,
            text,
        })
    }

    /// The unfinished lines, oldest first (used when a log ends without finishing them).
    pub fn drain(&mut self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .filter_map(|stream| {
                let (time, text) = self.pending[stream.index()].take()?;
                Some(Entry { time, stream, text })
            })
            .collect();
        entries.sort_by_key(|e| e.time);
        entries
    }
}

/// Append an entry as `kubectl logs` shows it; `--timestamps` prefixes the time in UTC
/// with nanoseconds, as upstream's kubelet prints it.
pub fn render(entry: &Entry, timestamps: bool, out: &mut Vec<u8>) {
    if timestamps {
        out.extend_from_slice(
            entry
                .time
                .to_rfc3339_opts(SecondsFormat::Nanos, true)
                .as_bytes(),
        );
        out.push(b' ');
    }
    out.extend_from_slice(&entry.text);
}

/// Turns the bytes of a log file into what the client sees, applying `sinceTime`,
/// `timestamps` and `limitBytes`. Bytes may arrive in any chunking; a record is handled
/// once its newline has arrived.
#[derive(Debug)]
pub struct Renderer {
    assembler: Assembler,
    /// Bytes of a record whose newline has not arrived yet.
    carry: Vec<u8>,
    since: Option<DateTime<Utc>>,
    timestamps: bool,
    /// Bytes the client may still receive (`limitBytes`).
    remaining: Option<u64>,
    /// Lines that were not CRI records and were skipped.
    pub skipped: u64,
}

impl Renderer {
    pub fn new(options: &LogOptions) -> Renderer {
        Renderer {
            assembler: Assembler::default(),
            carry: Vec::new(),
            since: options.since,
            timestamps: options.timestamps,
            remaining: options.limit_bytes,
            skipped: 0,
        }
    }

    /// Whether `limitBytes` has been reached: nothing more will be written.
    pub fn done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Take bytes read from the file and append the output they complete to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while let Some(newline) = data.iter().position(|b| *b == b'\n') {
            if self.carry.is_empty() {
                self.line(&data[..newline], out);
            } else {
                let mut line = std::mem::take(&mut self.carry);
                line.extend_from_slice(&data[..newline]);
                self.line(&line, out);
            }
            data = &data[newline + 1..];
        }
        self.carry.extend_from_slice(data);
    }

    /// The file will not grow any more: write its unterminated last record and any
    /// unfinished partial lines.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let carry = std::mem::take(&mut self.carry);
        if !carry.is_empty() {
            self.line(&carry, out);
        }
        for entry in self.assembler.drain() {
            self.emit(&entry, out);
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if line.is_empty() {
            return;
        }
        let record = match parse_record(line) {
            Ok(record) => record,
            Err(_) => {
                self.skipped += 1;
                return;
            }
        };
        if let Some(entry) = self.assembler.push(&record) {
            self.emit(&entry, out);
        }
    }

    fn emit(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        if self.done() || self.since.is_some_and(|since| entry.time < since) {
            return;
        }
        let start = out.len();
        render(entry, self.timestamps, out);
        if let Some(remaining) = &mut self.remaining {
            let written = (out.len() - start) as u64;
            if written >= *remaining {
                out.truncate(start + *remaining as usize);
                *remaining = 0;
            } else {
                *remaining -= written;
            }
        }
    }
}

/// Where the last `lines` whole log lines start in `window`, the tail end of a log file
/// (`at_file_start`: the window is the whole file). `None` when the window is too short to
/// tell and more of the file must be read. Partial records count as part of the line
/// their final record ends, so `--tail` counts the lines users see, not file lines.
pub fn tail_start(window: &[u8], at_file_start: bool, lines: u64) -> Option<usize> {
    if lines == 0 {
        return Some(window.len());
    }
    let mut line_ends_seen = 0;
    // Walk the file's lines backwards; `end` is the offset just past the current line's
    // newline (or the window's end for an unterminated last line).
    let mut end = window.len();
    loop {
        let body_end = if end > 0 && window[end - 1] == b'\n' {
            end - 1
        } else {
            end
        };
        let start = match window[..body_end].iter().rposition(|b| *b == b'\n') {
            Some(newline) => newline + 1,
            // The first line of a window that is not the file's start may be cut short.
            None if !at_file_start => return None,
            None => 0,
        };
        let line = &window[start..body_end];
        let ends_a_line = !line.is_empty() && parse_record(line).map_or(true, |r| !r.partial);
        if ends_a_line {
            if line_ends_seen == lines {
                return Some(end);
            }
            line_ends_seen += 1;
        }
        if start == 0 {
            return Some(0);
        }
        end = start;
    }
}

/// The query options of `GET /containerLogs/...` (upstream's `PodLogOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<u64>,
    pub timestamps: bool,
    /// Only lines stamped at or after this time (from `sinceSeconds` or `sinceTime`).
    pub since: Option<DateTime<Utc>>,
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Parse and validate the query pairs; `now` anchors `sinceSeconds`. Errors are the
    /// messages upstream's validation gives.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: DateTime<Utc>,
    ) -> Result<LogOptions, String> {
        let mut options = LogOptions::default();
        let mut since_seconds = None;
        let mut since_time = None;
        for (key, value) in pairs {
            match key {
                "follow" => options.follow = boolean(key, value)?,
                "previous" => options.previous = boolean(key, value)?,
                "timestamps" => options.timestamps = boolean(key, value)?,
                "tailLines" => {
                    let n: i64 = number(key, value)?;
                    if n < 0 {
                        return Err(
                            "tailLines: Invalid value: must be greater than or equal to 0".into(),
                        );
                    }
                    options.tail_lines = Some(n as u64);
                }
                "limitBytes" => {
                    let n: i64 = number(key, value)?;
                    if n < 1 {
                        return Err("limitBytes: Invalid value: must be greater than 0".into());
                    }
                    options.limit_bytes = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n: i64 = number(key, value)?;
                    if n < 1 {
                        return Err("sinceSeconds: Invalid value: must be greater than 0".into());
                    }
                    since_seconds = Some(n);
                }
                "sinceTime" => {
                    let time = DateTime::parse_from_rfc3339(value)
                        .map_err(|e| format!("sinceTime: Invalid value: {value:?}: {e}"))?;
                    since_time = Some(time.with_timezone(&Utc));
                }
                _ => {}
            }
        }
        options.since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into())
            }
            (Some(seconds), None) => Some(now - chrono::Duration::seconds(seconds)),
            (None, time) => time,
        };
        Ok(options)
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "" | "true" | "1" | "True" | "TRUE" => Ok(true),
        "false" | "0" | "False" | "FALSE" => Ok(false),
        _ => Err(format!("{key}: Invalid value: {value:?}: not a boolean")),
    }
}

fn number(key: &str, value: &str) -> Result<i64, String> {
    value
        .parse()
        .map_err(|_| format!("{key}: Invalid value: {value:?}: not an integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_full_partial_and_empty_records() {
        let r = parse_record(b"2024-05-01T10:00:00.123456789Z stdout F hello world").unwrap();
        assert_eq!(r.time, time("2024-05-01T10:00:00.123456789Z"));
        assert_eq!(
            (r.stream, r.partial, r.text),
            (Stream::Stdout, false, &b"hello world"[..])
        );
        let r = parse_record(b"2024-05-01T12:00:00.5+02:00 stderr P part").unwrap();
        assert_eq!(r.time, time("2024-05-01T10:00:00.5Z"));
        assert_eq!(
            (r.stream, r.partial, r.text),
            (Stream::Stderr, true, &b"part"[..])
        );
        // Text keeps its own spaces; an empty line has an empty text.
        let r = parse_record(b"2024-05-01T10:00:00Z stdout F  two  spaces ").unwrap();
        assert_eq!(r.text, b" two  spaces ");
        assert_eq!(
            parse_record(b"2024-05-01T10:00:00Z stdout F ")
                .unwrap()
                .text,
            b""
        );
        assert_eq!(
            parse_record(b"2024-05-01T10:00:00Z stdout F").unwrap().text,
            b""
        );
        // Extra tags after `:` are ignored.
        assert!(
            parse_record(b"2024-05-01T10:00:00Z stdout P:x y")
                .unwrap()
                .partial
        );
    }

    #[test]
    fn rejects_malformed_records() {
        assert!(parse_record(b"garbage").is_err());
        assert!(parse_record(b"yesterday stdout F x")
            .unwrap_err()
            .contains("timestamp"));
        assert!(parse_record(b"2024-05-01T10:00:00Z stdin F x")
            .unwrap_err()
            .contains("stream type"));
        assert!(parse_record(b"2024-05-01T10:00:00Z").is_err());
    }

    fn record(ts: &str, stream: Stream, partial: bool, text: &'static str) -> Record<'static> {
        Record {
            time: time(ts),
            stream,
            partial,
            text: text.as_bytes(),
        }
    }

    #[test]
    fn joins_partial_records_per_stream() {
        let mut a = Assembler::default();
        assert_eq!(
            a.push(&record("2024-05-01T10:00:01Z", Stream::Stdout, true, "hel")),
            None
        );
        // stderr interleaves without breaking the stdout line.
        let err = a
            .push(&record(
                "2024-05-01T10:00:02Z",
                Stream::Stderr,
                false,
                "oops",
            ))
            .unwrap();
        assert_eq!(err.text, b"oops\n");
        assert!(a.pending[0].is_some());
        let out = a
            .push(&record("2024-05-01T10:00:03Z", Stream::Stdout, false, "lo"))
            .unwrap();
        assert_eq!(out.text, b"hello\n");
        assert_eq!(out.time, time("2024-05-01T10:00:01Z"));
        assert!(a.pending.iter().all(Option::is_none));
    }

    #[test]
    fn drains_unfinished_lines_without_newline() {
        let mut a = Assembler::default();
        a.push(&record("2024-05-01T10:00:02Z", Stream::Stderr, true, "b"));
        a.push(&record("2024-05-01T10:00:01Z", Stream::Stdout, true, "a"));
        let drained = a.drain();
        assert_eq!(drained.len(), 2);
        assert_eq!(drained[0].text, b"a");
        assert_eq!(drained[1].text, b"b");
        assert!(a.pending.iter().all(Option::is_none));
    }

    #[test]
    fn renders_with_and_without_timestamps() {
        let entry = Entry {
            time: time("2024-05-01T12:00:00.5+02:00"),
            stream: Stream::Stdout,
            text: b"hi\n".to_vec(),
        };
        let mut out = Vec::new();
        render(&entry, false, &mut out);
        assert_eq!(out, b"hi\n");
        out.clear();
        render(&entry, true, &mut out);
        assert_eq!(out, b"2024-05-01T10:00:00.500000000Z hi\n");
    }

    #[test]
    fn renderer_handles_any_chunking_and_options() {
        let log = "2024-05-01T10:00:01Z stdout F one\n\
                   2024-05-01T10:00:02Z stdout P tw\n\
                   2024-05-01T10:00:03Z stdout F o\n\
                   not a record\n\
                   2024-05-01T10:00:04Z stderr F three";
        let run = |options: LogOptions, chunk: usize| {
            let mut r = Renderer::new(&options);
            let mut out = Vec::new();
            for piece in log.as_bytes().chunks(chunk) {
                r.feed(piece, &mut out);
            }
            r.finish(&mut out);
            (String::from_utf8(out).unwrap(), r.skipped)
        };
        for chunk in [1, 3, 7, 1000] {
            assert_eq!(
                run(LogOptions::default(), chunk),
                ("one\ntwo\nthree\n".to_string(), 1)
            );
        }
        let since = LogOptions {
            since: Some(time("2024-05-01T10:00:02Z")),
            ..Default::default()
        };
        // A joined line is as old as its first part.
        assert_eq!(run(since, 5).0, "two\nthree\n");
        let stamped = LogOptions {
            timestamps: true,
            limit_bytes: Some(40),
            ..Default::default()
        };
        assert_eq!(
            run(stamped, 4).0,
            "2024-05-01T10:00:01.000000000Z one\n2024-"
        );
    }

    const LOG: &str = "2024-05-01T10:00:01Z stdout F one\n\
                       2024-05-01T10:00:02Z stdout P tw\n\
                       2024-05-01T10:00:03Z stdout F o\n\
                       2024-05-01T10:00:04Z stderr F three\n";

    #[test]
    fn tail_counts_joined_lines() {
        let log = LOG.as_bytes();
        let at = |n| tail_start(log, true, n).map(|i| std::str::from_utf8(&log[i..]).unwrap());
        assert_eq!(at(0), Some(""));
        assert_eq!(at(1), Some("2024-05-01T10:00:04Z stderr F three\n"));
        assert!(at(2)
            .unwrap()
            .starts_with("2024-05-01T10:00:02Z stdout P tw"));
        assert_eq!(at(3), Some(LOG));
        assert_eq!(at(10), Some(LOG));
    }

    #[test]
    fn tail_asks_for_more_when_the_window_is_short() {
        let log = LOG.as_bytes();
        // A window starting mid-line cannot answer for more lines than it fully holds.
        let window = &log[10..];
        assert_eq!(
            tail_start(window, false, 1).map(|i| &window[i..]),
            Some(&b"2024-05-01T10:00:04Z stderr F three\n"[..])
        );
        assert_eq!(tail_start(window, false, 3), None);
        // An unterminated last line (being written) still counts.
        let unterminated = &log[..log.len() - 1];
        assert_eq!(
            tail_start(unterminated, true, 1).map(|i| &unterminated[i..]),
            Some(&b"2024-05-01T10:00:04Z stderr F three"[..])
        );
    }

    #[test]
    fn options_from_query() {
        let now = time("2024-05-01T10:00:00Z");
        let o = LogOptions::from_pairs(
            [
                ("follow", "true"),
                ("tailLines", "5"),
                ("timestamps", "1"),
                ("sinceSeconds", "60"),
                ("limitBytes", "100"),
                ("previous", "false"),
            ],
            now,
        )
        .unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.tail_lines, Some(5));
        assert_eq!(o.limit_bytes, Some(100));
        assert_eq!(o.since, Some(time("2024-05-01T09:59:00Z")));
        let o = LogOptions::from_pairs([("sinceTime", "2024-05-01T08:00:00Z")], now).unwrap();
        assert_eq!(o.since, Some(time("2024-05-01T08:00:00Z")));
        assert_eq!(
            LogOptions::from_pairs([], now).unwrap(),
            LogOptions::default()
        );
    }

    #[test]
    fn invalid_options_are_refused() {
        let now = Utc::now();
        let err = |pairs: &[(&str, &str)]| {
            LogOptions::from_pairs(pairs.iter().copied(), now).unwrap_err()
        };
        assert!(err(&[("tailLines", "-1")]).contains("tailLines"));
        assert!(err(&[("limitBytes", "0")]).contains("limitBytes"));
        assert!(err(&[("sinceSeconds", "0")]).contains("sinceSeconds"));
        assert!(err(&[("follow", "maybe")]).contains("follow"));
        assert_eq!(
            err(&[("sinceSeconds", "5"), ("sinceTime", "2024-05-01T08:00:00Z")]),
            "at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
    }
}
