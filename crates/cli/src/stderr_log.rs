//! The log output of client-only builds: a `tracing` subscriber that writes one line per event
//! to stderr (`2026-11-22T03:18:23.123456Z  INFO target: message key=value`), filtered by the
//! `--log` syntax (`info`, `mquictt_client=debug,warn`). It takes the place of
//! tracing-subscriber's formatter, which with its span registry is about 0.1 MiB of a device
//! binary (docs/benchmarks.md, "Footprint"). Spans are not tracked: our crates open none, and
//! a client's log needs no span context. Builds with the broker keep tracing-subscriber.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Which events pass: a level per target prefix, the longest matching prefix deciding, and a
/// default level for targets that match none (off when the filter names no bare level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter {
    default: LevelFilter,
    /// Longest target first, so that the first match is the most specific.
    targets: Vec<(String, LevelFilter)>,
}

/// A `--log` directive that is neither a level nor `target=level`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a log level (off, error, warn, info, debug, trace)")]
pub struct BadLogLevel(String);

impl LogFilter {
    /// Events at `level` and more severe, from every target.
    pub fn at_level(level: LevelFilter) -> Self {
        LogFilter {
            default: level,
            targets: Vec::new(),
        }
    }

    /// The most verbose level for events of `target`.
    fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(prefix, _)| target.starts_with(prefix.as_str()))
            .map_or(self.default, |(_, level)| *level)
    }

    fn passes(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.level_for(metadata.target())
    }

    /// The most verbose level any target gets.
    fn most_verbose(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, LevelFilter::max)
    }
}

impl FromStr for LogFilter {
    type Err = BadLogLevel;

    /// Comma-separated directives: `level` sets the default, `target=level` the level of
    /// targets starting with `target`, and a bare `target` lets all of its events through.
    fn from_str(directives: &str) -> Result<Self, Self::Err> {
        let mut filter = LogFilter::at_level(LevelFilter::OFF);
        for directive in directives.split(',').map(str::trim) {
            if directive.is_empty() {
                continue;
            }
            match directive.split_once('=') {
                Some((target, level)) => filter
                    .targets
                    .push((target.trim().to_owned(), parse_level(level)?)),
                None => match parse_level(directive) {
                    Ok(level) => filter.default = level,
                    Err(_) => filter
                        .targets
                        .push((directive.to_owned(), LevelFilter::TRACE)),
                },
            }
        }
        filter
            .targets
            .sort_by_key(|(target, _)| std::cmp::Reverse(target.len()));
        Ok(filter)
    }
}

fn parse_level(text: &str) -> Result<LevelFilter, BadLogLevel> {
    let text = text.trim();
    let level = match text.to_ascii_lowercase().as_str() {
        "off" | "0" => LevelFilter::OFF,
        "error" | "1" => LevelFilter::ERROR,
        "warn" | "2" => LevelFilter::WARN,
        "info" | "3" => LevelFilter::INFO,
        "debug" | "4" => LevelFilter::DEBUG,
        "trace" | "5" => LevelFilter::TRACE,
        _ => return Err(BadLogLevel(text.to_owned())),
    };
    Ok(level)
}

/// Writes the events that pass its filter to stderr, one line each.
#[derive(Debug)]
pub struct StderrLogger {
    filter: LogFilter,
}

impl StderrLogger {
    pub fn new(filter: LogFilter) -> Self {
        StderrLogger { filter }
    }
}

impl Subscriber for StderrLogger {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // The filter never changes, so each call site is decided once.
        if self.filter.passes(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.passes(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.most_verbose())
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        // Spans are not tracked; tracing allows one id for all of them.
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let line = format_line(SystemTime::now(), event);
        // A log line that cannot be written (stderr closed) is dropped: logging must not stop
        // the client.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// `TIMESTAMP LEVEL target: message key=value ...` and a newline.
fn format_line(now: SystemTime, event: &Event<'_>) -> String {
    let metadata = event.metadata();
    let mut line = String::with_capacity(128);
    write_timestamp(&mut line, now);
    // Writing to a String cannot fail.
    let _ = write!(line, " {:>5} {}:", metadata.level(), metadata.target());
    let mut fields = LineFields(&mut line);
    event.record(&mut fields);
    line.push('\n');
    line
}

/// Appends an event's fields: the message as it is, the others as ` name=value`.
struct LineFields<'a>(&'a mut String);

impl Visit for LineFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push(' ');
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Writing to a String cannot fail.
        let _ = match field.name() {
            "message" => write!(self.0, " {value:?}"),
            name => write!(self.0, " {}={value:?}", name.trim_start_matches("r#")),
        };
    }
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-22T03:18:23.123456Z`.
fn write_timestamp(out: &mut String, now: SystemTime) {
    // A clock before 1970 prints as the epoch rather than failing.
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_date(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_micros()
    );
}

/// The proleptic Gregorian date of a day counted from 1970-01-01, by 400-year eras (146,097
/// days each) that start on March 1st, so that the leap day is the last day of a year.
fn civil_date(days_since_epoch: u64) -> (u64, u64, u64) {
    // 719,468 days from 0000-03-01 to 1970-01-01.
    let days = days_since_epoch + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 is March, 11 is February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bare_level_sets_the_default_for_every_target() {
        let filter: LogFilter = "debug".parse().unwrap();
        assert_eq!(filter, LogFilter::at_level(LevelFilter::DEBUG));
        assert_eq!(
            filter.level_for("quinn_proto::connection"),
            LevelFilter::DEBUG
        );
    }

    #[test]
    fn the_longest_matching_target_decides() {
        let filter: LogFilter = "warn, mquictt_client=debug,mquictt_client::driver=trace,quinn"
            .parse()
            .unwrap();
        assert_eq!(
            filter.level_for("mquictt_client::driver"),
            LevelFilter::TRACE
        );
        assert_eq!(filter.level_for("mquictt_client::link"), LevelFilter::DEBUG);
        assert_eq!(
            filter.level_for("quinn_proto::endpoint"),
            LevelFilter::TRACE
        );
        assert_eq!(filter.level_for("rustls::client"), LevelFilter::WARN);
        assert_eq!(filter.most_verbose(), LevelFilter::TRACE);
    }

    #[test]
    fn targets_without_a_bare_level_leave_the_rest_off() {
        let filter: LogFilter = "mquictt_client=INFO".parse().unwrap();
        assert_eq!(filter.level_for("mquictt_client"), LevelFilter::INFO);
        assert_eq!(filter.level_for("quinn"), LevelFilter::OFF);
    }

    #[test]
    fn an_unknown_level_after_equals_is_refused() {
        assert_eq!(
            "mquictt_client=loud".parse::<LogFilter>(),
            Err(BadLogLevel("loud".to_owned()))
        );
    }

    #[test]
    fn timestamps_are_utc_dates_across_leap_days_and_centuries() {
        let at = |seconds: u64, micros: u64| {
            let mut out = String::new();
            write_timestamp(
                &mut out,
                UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros),
            );
            out
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day in a century divisible by 400) 12:34:56.
        assert_eq!(at(951_827_696, 7), "2000-02-29T12:34:56.000007Z");
        assert_eq!(at(951_868_800, 0), "2000-03-01T00:00:00.000000Z");
        assert_eq!(at(1_795_145_903, 123_456), "2026-11-20T03:38:23.123456Z");
        // 2100 is not a leap year: the day after 2100-02-28 is March 1st.
        assert_eq!(at(4_107_456_000, 0), "2100-02-28T00:00:00.000000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
    }

    /// Collects the lines the logger would write, through the same formatting.
    struct CapturingLogger {
        logger: StderrLogger,
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl Subscriber for CapturingLogger {
        fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
            self.logger.register_callsite(metadata)
        }
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            self.logger.enabled(metadata)
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            self.logger.new_span(span)
        }
        fn record(&self, _span: &Id, _values: &Record<'_>) {}
        fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let line = format_line(UNIX_EPOCH, event);
            self.lines.lock().unwrap().push(line);
        }
        fn enter(&self, _span: &Id) {}
        fn exit(&self, _span: &Id) {}
    }

    #[test]
    fn events_that_pass_become_one_line_with_their_fields() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = CapturingLogger {
            logger: StderrLogger::new("stderr_log_test=info".parse().unwrap()),
            lines: lines.clone(),
        };
        tracing::subscriber::with_default(subscriber, || {
            let attempt = 3;
            tracing::warn!(target: "stderr_log_test", attempt, url = "quic://127.0.0.1", "reconnecting");
            tracing::debug!(target: "stderr_log_test", "too verbose");
            tracing::error!(target: "elsewhere", "not named by the filter");
        });
        assert_eq!(
            *lines.lock().unwrap(),
            vec![
                "1970-01-01T00:00:00.000000Z  WARN stderr_log_test: reconnecting attempt=3 \
                 url=\"quic://127.0.0.1\"\n"
                    .to_owned()
            ]
        );
    }
}
