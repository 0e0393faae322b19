//! What a run measured: the `Recorder` the workers feed, and the `Report` made
//! from it, serializable for `--json` and displayed for humans.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use peerd::rpc::Code;

/// Latencies above this are recorded as this: no call waits an hour.
const LONGEST_LATENCY_MICROS: u64 = 3_600_000_000;
/// gRPC's codes are 0..=16.
const CODES: usize = 17;

/// Outcomes of calls as they finish: latencies of answered calls, and
/// failures by status code.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    latency_micros: Histogram<u64>,
    failures: [u64; CODES],
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            // Three significant figures: percentiles within 0.1%.
            latency_micros: Histogram::new_with_bounds(1, LONGEST_LATENCY_MICROS, 3)
                .expect("valid histogram bounds"),
            failures: [0; CODES],
        }
    }

    pub fn answered(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.saturating_record(micros.max(1));
    }

    pub fn failed(&mut self, code: Code) {
        self.failures[code as usize] += 1;
    }

    pub fn answered_calls(&self) -> u64 {
        self.latency_micros.len()
    }

    pub fn failed_calls(&self) -> u64 {
        self.failures.iter().sum()
    }
}

/// Latency of answered calls, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// The figures of the measured phase (warm-up calls are not in them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Calls that finished, answered or failed.
    pub calls: u64,
    /// Failed calls by status code name, e.g. `DEADLINE_EXCEEDED`.
    pub errors: BTreeMap<String, u64>,
    /// From the first call's start to the last call's end.
    #[serde(rename = "elapsed_secs", serialize_with = "as_secs")]
    pub elapsed: Duration,
    /// Finished calls (answered or failed) per second.
    pub calls_per_sec: f64,
    /// Payload bytes of answered calls, both ways, in 10^6 bytes per second.
    pub mb_per_sec: f64,
    /// Of answered calls only: a failure's time says little about the
    /// service (a deadline's is the timeout).
    pub latency: Latency,
}

impl Report {
    pub(crate) fn new(recorder: &Recorder, elapsed: Duration, payload_size: usize) -> Self {
        let answered = recorder.answered_calls();
        let calls = answered + recorder.failed_calls();
        let seconds = elapsed.as_secs_f64();
        let per_second = |count: f64| if seconds > 0.0 { count / seconds } else { 0.0 };
        let payload_bytes = answered as f64 * payload_size as f64 * 2.0;
        Self {
            calls,
            errors: errors_by_name(&recorder.failures),
            elapsed,
            calls_per_sec: per_second(calls as f64),
            mb_per_sec: per_second(payload_bytes) / 1e6,
            latency: latency(&recorder.latency_micros),
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn errors_by_name(failures: &[u64; CODES]) -> BTreeMap<String, u64> {
    (0..CODES as u32)
        .map(Code::from_u32)
        .zip(failures)
        .filter(|&(_, &count)| count > 0)
        .map(|(code, &count)| (code.name().to_owned(), count))
        .collect()
}

fn latency(micros: &Histogram<u64>) -> Latency {
    Latency {
        p50_us: micros.value_at_quantile(0.50),
        p90_us: micros.value_at_quantile(0.90),
        p99_us: micros.value_at_quantile(0.99),
        max_us: micros.max(),
    }
}

fn as_secs<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "calls       {} in {seconds:.2} s, {} failed",
            self.calls,
            self.error_count()
        )?;
        writeln!(
            f,
            "throughput  {:.1} calls/s, {:.2} MB/s of payload",
            self.calls_per_sec, self.mb_per_sec
        )?;
        let Latency {
            p50_us,
            p90_us,
            p99_us,
            max_us,
        } = self.latency;
        write!(
            f,
            "latency     p50 {}  p90 {}  p99 {}  max {}",
            Micros(p50_us),
            Micros(p90_us),
            Micros(p99_us),
            Micros(max_us)
        )?;
        for (code, count) in &self.errors {
            write!(f, "\nerrors      {code}: {count}")?;
        }
        Ok(())
    }
}

/// Microseconds in the unit that keeps three significant figures readable.
struct Micros(u64);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0 as f64;
        match self.0 {
            0..1_000 => write!(f, "{} µs", self.0),
            1_000..1_000_000 => write!(f, "{:.2} ms", micros / 1e3),
            _ => write!(f, "{:.2} s", micros / 1e6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn recorder_of(latencies_micros: impl IntoIterator<Item = u64>) -> Recorder {
        let mut recorder = Recorder::new();
        for micros in latencies_micros {
            recorder.answered(Duration::from_micros(micros));
        }
        recorder
    }

    #[test]
    fn rates_count_every_call_and_the_payload_of_answered_ones_both_ways() {
        let mut recorder = recorder_of([100; 1000]);
        recorder.failed(Code::DeadlineExceeded);
        recorder.failed(Code::DeadlineExceeded);
        let report = Report::new(&recorder, 2 * SECOND, 1000);
        assert_eq!(report.calls, 1002);
        assert_eq!(report.calls_per_sec, 501.0);
        // 1000 answered calls x 1000 bytes x 2 ways in 2 s.
        assert_eq!(report.mb_per_sec, 1.0);
    }

    #[test]
    fn no_time_elapsed_gives_zero_rates_not_infinity() {
        let report = Report::new(&recorder_of([5]), Duration::ZERO, 10);
        assert_eq!((report.calls_per_sec, report.mb_per_sec), (0.0, 0.0));
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_where_expected_and_ordered() {
        let report = Report::new(&recorder_of(1..=10_000), SECOND, 0);
        let Latency {
            p50_us,
            p90_us,
            p99_us,
            max_us,
        } = report.latency;
        let near = |actual: u64, expected: u64| actual.abs_diff(expected) <= expected / 1000;
        assert!(near(p50_us, 5_000), "p50 {p50_us}");
        assert!(near(p90_us, 9_000), "p90 {p90_us}");
        assert!(near(p99_us, 9_900), "p99 {p99_us}");
        assert!(near(max_us, 10_000), "max {max_us}");
        assert!(p50_us <= p90_us && p90_us <= p99_us && p99_us <= max_us);
    }

    #[test]
    fn a_few_slow_calls_show_in_p99_and_max_only() {
        let report = Report::new(
            &recorder_of([[200; 990].as_slice(), &[50_000; 10]].concat()),
            SECOND,
            0,
        );
        assert!(report.latency.p90_us < 210);
        assert!(
            report.latency.p99_us < 210,
            "the 99th percentile is still a fast call"
        );
        assert!(report.latency.max_us >= 50_000);
    }

    #[test]
    fn extreme_latencies_are_clamped_into_the_histogram() {
        let recorder = recorder_of([0, u64::MAX / 1_000_000]);
        assert_eq!(recorder.answered_calls(), 2);
        let latency = Report::new(&recorder, SECOND, 0).latency;
        assert_eq!(latency.p50_us, 1);
        assert!(latency.max_us >= LONGEST_LATENCY_MICROS);
    }

    #[test]
    fn errors_are_counted_by_code_name_and_answers_are_not_errors() {
        let mut recorder = recorder_of([10]);
        recorder.failed(Code::Unavailable);
        recorder.failed(Code::DeadlineExceeded);
        recorder.failed(Code::Unavailable);
        let report = Report::new(&recorder, SECOND, 0);
        let expected = [
            ("DEADLINE_EXCEEDED".to_owned(), 1),
            ("UNAVAILABLE".to_owned(), 2),
        ];
        assert_eq!(report.errors, BTreeMap::from(expected));
        assert_eq!(report.error_count(), 3);
        assert_eq!(report.calls, 4);
    }

    #[test]
    fn an_empty_run_reports_zeros() {
        let report = Report::new(&Recorder::new(), SECOND, 1024);
        assert_eq!((report.calls, report.error_count()), (0, 0));
        assert_eq!(report.latency, Latency::default());
    }

    #[test]
    fn json_names_units_in_the_keys() {
        let mut recorder = recorder_of([1500]);
        recorder.failed(Code::Internal);
        let json = serde_json::to_value(Report::new(&recorder, SECOND / 2, 8)).unwrap();
        assert_eq!(json["calls"], 2);
        assert_eq!(json["elapsed_secs"], 0.5);
        assert_eq!(json["errors"]["INTERNAL"], 1);
        assert_eq!(json["calls_per_sec"], 4.0);
        assert!(json["latency"]["p50_us"].as_u64().unwrap().abs_diff(1500) <= 2);
    }

    #[test]
    fn the_display_has_one_line_per_figure_and_one_per_error_code() {
        let mut recorder = recorder_of([800, 1500, 2_500_000]);
        recorder.failed(Code::Unavailable);
        let text = Report::new(&recorder, 2 * SECOND, 100).to_string();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "calls       4 in 2.00 s, 1 failed");
        assert_eq!(lines[1], "throughput  2.0 calls/s, 0.00 MB/s of payload");
        assert!(
            lines[2].starts_with("latency     p50 1.50 ms"),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with("max 2.50 s"), "{}", lines[2]);
        assert_eq!(lines[3], "errors      UNAVAILABLE: 1");
    }

    #[test]
    fn small_latencies_print_in_microseconds() {
        assert_eq!(Micros(999).to_string(), "999 µs");
        assert_eq!(Micros(1_000).to_string(), "1.00 ms");
        assert_eq!(Micros(12_345_678).to_string(), "12.35 s");
    }
}
