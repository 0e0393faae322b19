//! Writing the Prometheus text exposition format (version 0.0.4): one
//! `# HELP` and `# TYPE` per family, then its samples.

use std::fmt::{Display, Write};

use peerd::metrics::HistogramSnapshot;

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Label names and values of one sample, in the order given.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a family; its samples must follow before the next one starts.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
    }

    pub fn sample(&mut self, name: &str, labels: Labels<'_>, value: impl Display) {
        self.text.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.text, " {value}");
    }

    /// The `_bucket`, `_sum` and `_count` samples of a histogram.
    pub fn histogram(&mut self, name: &str, labels: Labels<'_>, snapshot: &HistogramSnapshot) {
        for &(le, count) in &snapshot.buckets {
            let _ = write!(self.text, "{name}_bucket");
            self.labels(labels, Some(le));
            let _ = writeln!(self.text, " {count}");
        }
        self.sample(&format!("{name}_sum"), labels, snapshot.sum_seconds);
        self.sample(&format!("{name}_count"), labels, snapshot.count);
    }

    pub fn into_text(self) -> String {
        self.text
    }

    fn labels(&mut self, labels: Labels<'_>, le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        self.text.push('{');
        for (i, (name, value)) in all.enumerate() {
            let separator = if i == 0 { "" } else { "," };
            let _ = write!(self.text, "{separator}{name}=\"");
            escape_into(&mut self.text, value);
            self.text.push('"');
        }
        self.text.push('}');
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerd::metrics::Histogram;

    #[test]
    fn samples_carry_escaped_labels() {
        let mut out = Exposition::default();
        out.family("x_total", Kind::Counter, "Things.");
        out.sample("x_total", &[("a", "q\"\\\n"), ("b", "2")], 7);
        out.sample("x_total", &[], 1);
        assert_eq!(
            out.into_text(),
            "# HELP x_total Things.\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"\\\\\\n\",b=\"2\"} 7\nx_total 1\n"
        );
    }

    #[test]
    fn histograms_have_cumulative_buckets_sum_and_count() {
        let histogram = Histogram::default();
        histogram.observe(std::time::Duration::from_millis(2));
        let mut out = Exposition::default();
        out.histogram("d_seconds", &[("m", "x")], &histogram.snapshot());
        let text = out.into_text();
        assert!(text.contains("d_seconds_bucket{m=\"x\",le=\"0.001\"} 0\n"));
        assert!(text.contains("d_seconds_bucket{m=\"x\",le=\"0.0025\"} 1\n"));
        assert!(text.contains("d_seconds_bucket{m=\"x\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("d_seconds_sum{m=\"x\"} 0.002\n"));
        assert!(text.contains("d_seconds_count{m=\"x\"} 1\n"));
    }
}
