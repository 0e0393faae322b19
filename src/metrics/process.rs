//! The `process_*` families every Prometheus client library exports (CPU,
//! memory, file descriptors, start time), read from `/proc/self` at scrape
//! time, so dashboards built for them work unchanged.

use super::exposition::{Exposition, Kind};

/// What `/proc/self/stat` says, in its own units.
#[derive(Debug, PartialEq)]
struct Stat {
    /// User and system CPU time, in clock ticks.
    cpu_ticks: u64,
    /// When the process started, in clock ticks after boot.
    start_ticks: u64,
    virtual_bytes: u64,
    resident_pages: u64,
}

impl Stat {
    /// Parses the line; the command name (field 2) may hold spaces and
    /// parentheses, so fields are counted after its last `)`.
    fn parse(line: &str) -> Option<Self> {
        let after_name = &line[line.rfind(')')? + 1..];
        // `fields[0]` is field 3 (the state) of proc(5).
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
        Some(Self {
            cpu_ticks: field(14)? + field(15)?,
            start_ticks: field(22)?,
            virtual_bytes: field(23)?,
            resident_pages: field(24)?,
        })
    }
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the Unix epoch.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Appends the families; a source that cannot be read leaves its out.
pub(super) fn render(out: &mut Exposition) {
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    if let (Some(stat), true) = (stat.as_deref().and_then(Stat::parse), ticks > 0) {
        let ticks = ticks as f64;
        let gauge = |out: &mut Exposition, name: &str, help: &str, value: f64| {
            out.family(name, Kind::Gauge, help);
            out.sample(name, &[], value);
        };
        let name = "process_cpu_seconds_total";
        out.family(
            name,
            Kind::Counter,
            "User and system CPU time spent, in seconds.",
        );
        out.sample(name, &[], stat.cpu_ticks as f64 / ticks);
        let resident = stat.resident_pages.saturating_mul(page.max(0) as u64);
        gauge(
            out,
            "process_resident_memory_bytes",
            "Resident memory size, in bytes.",
            resident as f64,
        );
        gauge(
            out,
            "process_virtual_memory_bytes",
            "Virtual memory size, in bytes.",
            stat.virtual_bytes as f64,
        );
        let boot = std::fs::read_to_string("/proc/stat").ok();
        if let Some(boot) = boot.as_deref().and_then(boot_time) {
            let started = boot as f64 + stat.start_ticks as f64 / ticks;
            gauge(
                out,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                started,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        // The count includes the descriptor read_dir itself holds.
        let open = fds.count().saturating_sub(1);
        out.family("process_open_fds", Kind::Gauge, "Open file descriptors.");
        out.sample("process_open_fds", &[], open);
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        out.family(
            "process_max_fds",
            Kind::Gauge,
            "The most file descriptors the process may open.",
        );
        out.sample("process_max_fds", &[], limit.rlim_cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_name_with_spaces_and_parentheses() {
        let line = "4242 (peerd (x) y) S 1 4242 4242 0 -1 4194560 2280 0 0 0 \
                    150 25 0 0 20 0 9 0 123456 1073741824 2048 18446744073709551615";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                cpu_ticks: 175,
                start_ticks: 123456,
                virtual_bytes: 1 << 30,
                resident_pages: 2048,
            })
        );
        assert_eq!(Stat::parse("4242 (peerd) S 1"), None);
    }

    #[test]
    fn the_boot_time_is_the_btime_line() {
        let text = "cpu  1 2 3\nintr 5\nbtime 1764700000\nprocesses 9\n";
        assert_eq!(boot_time(text), Some(1_764_700_000));
        assert_eq!(boot_time("cpu 1\n"), None);
    }

    #[test]
    fn this_process_has_every_family() {
        let mut out = Exposition::default();
        render(&mut out);
        let text = out.into_text();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(text.contains(&format!("\n{name} ")), "{name} in:\n{text}");
        }
    }
}
