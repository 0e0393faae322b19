//! Loading through all layers, as the daemon does.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use super::keys::KEYS;
use super::*;

const NODE_ID: &str = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";

/// A config file in its own temporary directory, removed when dropped.
struct ConfigFile {
    _dir: TempDir,
    path: PathBuf,
}

impl ConfigFile {
    fn with(contents: &str) -> Self {
        let dir = TempDir::new().expect("temporary directory");
        let path = dir.path().join("peerd.toml");
        fs::write(&path, contents).expect("write config file");
        ConfigFile { _dir: dir, path }
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            config_path: Some((self.path.clone(), config_flag())),
            ..Overrides::default()
        }
    }
}

fn config_flag() -> Origin {
    Origin::Flag {
        flag: "--config".into(),
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(var, value)| ((*var).to_owned(), (*value).to_owned()))
        .collect()
}

fn load_error(overrides: &Overrides) -> String {
    load(overrides)
        .expect_err("loading should fail")
        .to_string()
}

#[test]
fn nothing_given_means_the_defaults() {
    assert_eq!(load(&Overrides::default()).ok(), Some(Settings::default()));
}

#[test]
fn file_values_replace_defaults() {
    let file = ConfigFile::with(
        "listen = \"127.0.0.1:1\"\nshutdown_grace = 30\n\n[transport]\nsend_window = 65536\n\
         idle_timeout = \"1h30m\"\n\n[metrics]\nlisten = \"off\"\n",
    );
    let settings = load(&file.overrides()).expect("valid file");
    assert_eq!(settings.listen, SocketAddr::from(([127, 0, 0, 1], 1)));
    assert_eq!(settings.shutdown_grace, Duration::from_secs(30));
    assert_eq!(settings.transport.send_window, 65536);
    assert_eq!(settings.transport.idle_timeout, Duration::from_secs(5400));
    assert_eq!(settings.metrics.listen, MetricsListen::Off);
}

#[test]
fn a_bad_file_value_names_key_and_line_and_column() {
    let file = ConfigFile::with("[transport]\nmax_connections = \"ten\"\n");
    assert_eq!(
        load_error(&file.overrides()),
        format!(
            "invalid value for transport.max_connections in {}:2:19: \
             expected a positive integer, got \"ten\"",
            file.path.display()
        )
    );
}

#[test]
fn dotted_keys_are_found_too() {
    let file = ConfigFile::with("rpc.max_handlers = 0\n");
    assert_eq!(
        load_error(&file.overrides()),
        format!(
            "invalid value for rpc.max_handlers in {}:1:20: expected a positive integer, got 0",
            file.path.display()
        )
    );
}

#[test]
fn an_unknown_key_is_an_error_at_its_position() {
    let file = ConfigFile::with("listen = \"0.0.0.0:1\"\n[transport]\nmax_conections = 5\n");
    assert_eq!(
        load_error(&file.overrides()),
        format!(
            "unknown key transport.max_conections in {}:3:1; did you mean transport.max_connections?",
            file.path.display()
        )
    );
}

#[test]
fn every_problem_is_reported_in_file_order_then_by_layer() {
    let file = ConfigFile::with("zebra = 1\napple = 2\n[transport]\nmax_connections = \"ten\"\n");
    let overrides = Overrides {
        env: env(&[("PEERD_LISTN", "0.0.0.0:1")]),
        ..file.overrides()
    };
    let path = file.path.display();
    let expected = format!(
        "4 problems in the configuration:\n  \
         unknown key zebra in {path}:1:1\n  \
         unknown key apple in {path}:2:1\n  \
         unknown environment variable PEERD_LISTN: it names no configuration key; did you mean PEERD_LISTEN?\n  \
         invalid value for transport.max_connections in {path}:4:19: expected a positive integer, got \"ten\""
    );
    assert_eq!(load_error(&overrides), expected);
}

#[test]
fn unknown_sections_and_subsections_are_unknown_keys() {
    let file = ConfigFile::with("[tls]\ncert = \"x\"\n");
    let expected = format!("unknown key tls in {}:1:2", file.path.display());
    assert_eq!(load_error(&file.overrides()), expected);

    let file = ConfigFile::with("[log.sinks]\n");
    let expected = format!("unknown key log.sinks in {}:1:6", file.path.display());
    assert_eq!(load_error(&file.overrides()), expected);
}

#[test]
fn a_section_must_be_a_table() {
    let file = ConfigFile::with("log = \"debug\"\n");
    let expected = format!(
        "invalid value for log in {}:1:7: expected a [log] table, got string",
        file.path.display()
    );
    assert_eq!(load_error(&file.overrides()), expected);
}

#[test]
fn values_of_the_wrong_toml_type_are_described() {
    let file = ConfigFile::with("[rpc]\nmax_message_size = 1.5\n");
    let expected = format!(
        "invalid value for rpc.max_message_size in {}:2:20: \
         expected a byte size like \"64KiB\", \"8MiB\" or 1048576, got a float",
        file.path.display()
    );
    assert_eq!(load_error(&file.overrides()), expected);
}

#[test]
fn toml_syntax_errors_name_the_position() {
    let file = ConfigFile::with("listen = \n");
    let message = load_error(&file.overrides());
    let prefix = format!("invalid TOML in {}:1:10: ", file.path.display());
    assert!(message.starts_with(&prefix), "{message}");
}

#[test]
fn a_missing_config_file_is_an_error_naming_who_asked_for_it() {
    let by_flag = Overrides {
        config_path: Some((PathBuf::from("/nope.toml"), config_flag())),
        ..Overrides::default()
    };
    assert_eq!(
        load_error(&by_flag),
        "config file /nope.toml does not exist (given by --config)"
    );
    let by_env = Overrides {
        config_path: Some((
            PathBuf::from("/nope.toml"),
            Origin::Env {
                var: "PEERD_CONFIG".into(),
            },
        )),
        ..Overrides::default()
    };
    assert_eq!(
        load_error(&by_env),
        "config file /nope.toml does not exist (given by environment variable PEERD_CONFIG)"
    );
}

#[test]
fn an_unreadable_config_file_is_an_error() {
    let dir = TempDir::new().expect("temporary directory");
    let overrides = Overrides {
        config_path: Some((dir.path().to_owned(), config_flag())),
        ..Overrides::default()
    };
    assert!(matches!(
        load(&overrides),
        Err(ConfigError::UnreadableFile { .. })
    ));

    let file = ConfigFile::with("");
    fs::write(&file.path, b"listen = \"\xff\"\n").expect("write config file");
    assert!(matches!(
        load(&file.overrides()),
        Err(ConfigError::UnreadableFile { .. })
    ));
}

#[test]
fn environment_overrides_the_file() {
    let file = ConfigFile::with("[transport]\nmax_connections = 10\nmax_pending_handshakes = 20\n");
    let overrides = Overrides {
        env: env(&[("PEERD_TRANSPORT_MAX_CONNECTIONS", "11")]),
        ..file.overrides()
    };
    let settings = load(&overrides).expect("valid layers");
    assert_eq!(settings.transport.max_connections, 11);
    assert_eq!(settings.transport.max_pending_handshakes, 20);
}

#[test]
fn flags_override_the_environment() {
    let overrides = Overrides {
        env: env(&[
            ("PEERD_LISTEN", "127.0.0.1:1"),
            ("PEERD_LOG_FORMAT", "json"),
        ]),
        flags: vec![FlagOverride::new("listen", "127.0.0.1:2", "--listen")],
        ..Overrides::default()
    };
    let settings = load(&overrides).expect("valid layers");
    assert_eq!(settings.listen, SocketAddr::from(([127, 0, 0, 1], 2)));
    assert_eq!(settings.log.format, LogFormat::Json);
}

#[test]
fn the_last_flag_for_a_key_wins() {
    let overrides = Overrides {
        flags: vec![
            FlagOverride::new("rpc.max_handlers", "1", "--set"),
            FlagOverride::new("rpc.max_handlers", "2", "--set"),
        ],
        ..Overrides::default()
    };
    let settings = load(&overrides).expect("valid flags");
    assert_eq!(settings.rpc.max_handlers, 2);
}

#[test]
fn log_level_aliases_rank_below_the_key_variable() {
    let level = |pairs: &[(&str, &str)]| {
        let overrides = Overrides {
            env: env(pairs),
            ..Overrides::default()
        };
        load(&overrides).map(|settings| settings.log.level).ok()
    };
    assert_eq!(level(&[("RUST_LOG", "trace")]), Some("trace".into()));
    assert_eq!(
        level(&[("PEERD_LOG", "debug"), ("RUST_LOG", "trace")]),
        Some("debug".into())
    );
    assert_eq!(
        level(&[
            ("PEERD_LOG_LEVEL", "warn"),
            ("PEERD_LOG", "debug"),
            ("RUST_LOG", "trace")
        ]),
        Some("warn".into())
    );
    assert_eq!(level(&[("RUST_LOG", "")]), Some("info".into()));
}

#[test]
fn rust_log_overrides_the_file() {
    let file = ConfigFile::with("[log]\nlevel = \"warn\"\n");
    let overrides = Overrides {
        env: env(&[("RUST_LOG", "debug")]),
        ..file.overrides()
    };
    assert_eq!(
        load(&overrides).map(|s| s.log.level).ok(),
        Some("debug".into())
    );
}

#[test]
fn unknown_peerd_variables_are_errors_and_others_are_ignored() {
    let overrides = Overrides {
        env: env(&[
            ("HOME", "/root"),
            ("PEERD_CONFIG", "/etc/peerd/peerd.toml"),
            ("PEERD_TRANSPORT_MAX_CONECTIONS", "5"),
        ]),
        ..Overrides::default()
    };
    assert_eq!(
        load_error(&overrides),
        "unknown environment variable PEERD_TRANSPORT_MAX_CONECTIONS: it names no configuration key; did you mean PEERD_TRANSPORT_MAX_CONNECTIONS?"
    );
    let harmless = Overrides {
        env: env(&[("HOME", "/root"), ("PEERD_CONFIG", "/x.toml")]),
        ..Overrides::default()
    };
    assert_eq!(load(&harmless).ok(), Some(Settings::default()));
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let overrides = Overrides {
        env: env(&[("PEERD_RPC_DEFAULT_DEADLINE", "soon")]),
        ..Overrides::default()
    };
    assert_eq!(
        load_error(&overrides),
        "invalid value for rpc.default_deadline from environment variable \
         PEERD_RPC_DEFAULT_DEADLINE: expected a duration like \"30s\" or \"250ms\", got \"soon\""
    );
}

#[test]
fn a_bad_flag_value_names_the_flag() {
    let overrides = Overrides {
        flags: vec![FlagOverride::new("listen", "nowhere", "--listen")],
        ..Overrides::default()
    };
    assert_eq!(
        load_error(&overrides),
        "invalid value for listen from flag --listen: expected host:port \
         (an IP address and a port, like \"0.0.0.0:7733\"), got \"nowhere\""
    );
}

#[test]
fn a_flag_for_an_unknown_key_is_an_error() {
    let overrides = Overrides {
        flags: vec![FlagOverride::new("transport.nope", "1", "--set")],
        ..Overrides::default()
    };
    assert_eq!(
        load_error(&overrides),
        "unknown key transport.nope from flag --set"
    );
}

#[test]
fn set_arguments_are_split_at_the_first_equals_sign() {
    assert_eq!(
        parse_set_flag("log.level=info,peerd=debug").ok(),
        Some(FlagOverride::new("log.level", "info,peerd=debug", "--set"))
    );
    assert_eq!(
        parse_set_flag("peers=").ok(),
        Some(FlagOverride::new("peers", "", "--set"))
    );
}

#[test]
fn set_arguments_without_equals_or_with_unknown_keys_are_errors() {
    let no_equals = parse_set_flag("transport.max_connections").map_err(|e| e.to_string());
    assert_eq!(
        no_equals,
        Err("invalid --set argument \"transport.max_connections\": expected key=value".into())
    );
    let unknown = parse_set_flag("transport.max_conections=5").map_err(|e| e.to_string());
    assert_eq!(
        unknown,
        Err(
            "unknown key transport.max_conections from flag --set; did you mean transport.max_connections?"
                .into()
        )
    );
}

#[test]
fn peer_lists_come_from_toml_arrays_env_and_flags() {
    let first = format!("{NODE_ID}@seed.example.org:7733");
    let second = format!("{NODE_ID}@[2001:db8::1]:7733");
    let file = ConfigFile::with(&format!("peers = [\"{first}\", \"{second}\"]\n"));
    let overrides = Overrides {
        env: env(&[("PEERD_BOOTSTRAP", &format!("{first}, {second}"))]),
        ..file.overrides()
    };
    let settings = load(&overrides).expect("valid lists");
    assert_eq!(settings.peers, [first.clone(), second.clone()]);
    assert_eq!(settings.bootstrap, [first.clone(), second]);

    let cleared = Overrides {
        flags: vec![FlagOverride::new("peers", "", "--set")],
        ..file.overrides()
    };
    assert_eq!(load(&cleared).map(|s| s.peers).ok(), Some(Vec::new()));
}

#[test]
fn an_invalid_peer_is_reported_at_its_list_item() {
    let file = ConfigFile::with(&format!(
        "peers = [\n  \"{NODE_ID}@a.example:1\",\n  \"shortid@b.example:2\",\n]\n"
    ));
    assert_eq!(
        load_error(&file.overrides()),
        format!(
            "invalid value for peers in {}:3:3: expected \"<node-id>@<host>:<port>\", \
             got \"shortid@b.example:2\" (the node id must be 52 characters from a-z and 2-7)",
            file.path.display()
        )
    );
}

#[test]
fn an_invalid_peer_from_the_environment_names_the_variable() {
    let overrides = Overrides {
        env: env(&[("PEERD_PEERS", &format!("{NODE_ID}@host:99999"))]),
        ..Overrides::default()
    };
    let message = load_error(&overrides);
    assert!(
        message.starts_with("invalid value for peers from environment variable PEERD_PEERS:"),
        "{message}"
    );
    assert!(
        message.ends_with("(the port must be a number from 1 to 65535)"),
        "{message}"
    );
}

#[test]
fn keep_alive_must_be_shorter_than_the_idle_timeout() {
    let file = ConfigFile::with("[transport]\nidle_timeout = \"5s\"\n");
    assert_eq!(
        load_error(&file.overrides()),
        format!(
            "invalid value for transport.keep_alive_interval from the built-in default: \
             expected less than transport.idle_timeout (5s in {}:2:16), got \"10s\"",
            file.path.display()
        )
    );
}

fn customized() -> Settings {
    let mut settings = Settings {
        listen: "[::1]:4000".parse().expect("address"),
        data_dir: Some(PathBuf::from("/var/lib/peerd dir")),
        admin_socket: Some(PathBuf::from("/run/peerd/admin.sock")),
        shutdown_grace: Duration::ZERO,
        peers: vec![format!("{NODE_ID}@10.0.0.1:1")],
        bootstrap: vec![
            format!("{NODE_ID}@seed.example:7733"),
            format!("{NODE_ID}@[::1]:2"),
        ],
        ..Settings::default()
    };
    settings.log.level = "warn,peerd::rpc=\"trace\"".into();
    settings.log.format = LogFormat::Json;
    settings.transport.max_connections = usize::MAX;
    settings.transport.max_concurrent_streams = u32::MAX;
    settings.transport.stream_receive_window = 1500;
    settings.transport.idle_timeout = Duration::from_millis(90_250);
    settings.transport.keep_alive_interval = Duration::from_nanos(1);
    settings.rpc.max_message_size = u32::MAX;
    settings.metrics.listen = MetricsListen::Off;
    settings
}

#[test]
fn to_toml_loads_back_to_the_same_settings() {
    for settings in [Settings::default(), customized()] {
        let file = ConfigFile::with(&settings.to_toml());
        assert_eq!(load(&file.overrides()).ok(), Some(settings));
    }
}

#[test]
fn to_toml_writes_every_key() {
    let toml = Settings::default().to_toml();
    for key in KEYS {
        let line = format!("\n{} = ", key.field());
        assert!(toml.contains(&line), "{} missing", key.name);
    }
}

const SAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/peerd.toml");

const SAMPLE_HEADER: &str = "\
# peerd configuration. Every key is shown commented out at its built-in default.
#
# Precedence, weakest first: built-in defaults, this file, PEERD_* environment
# variables, command-line flags. Any key can also be set with --set key=value.
# Each key's environment variable is named in its comment; lists given there or
# in flags are comma-separated.
#
# Durations: \"250ms\", \"10s\", \"5m\", \"1h30m\" (a bare integer means seconds).
# Byte sizes: 1048576, \"1000\", \"4kB\", \"64KiB\", \"8MiB\", \"1GiB\"
# (kB, MB, GB count in thousands; KiB, MiB, GiB in 1024s).

";

fn read_sample() -> String {
    fs::read_to_string(SAMPLE_PATH).expect("config/peerd.toml is readable")
}

fn is_assignment(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

fn comment_out_assignments(toml: &str) -> String {
    toml.lines()
        .map(|line| {
            if is_assignment(line) {
                format!("# {line}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

fn uncomment_assignments(toml: &str) -> String {
    toml.lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(assignment) if is_assignment(assignment) => format!("{assignment}\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}

#[test]
fn the_sample_file_shows_every_key_commented_out_at_its_default() {
    let expected = format!(
        "{SAMPLE_HEADER}{}",
        comment_out_assignments(&Settings::default().to_toml())
    );
    assert_eq!(read_sample(), expected);
}

#[test]
fn the_sample_file_loads_as_the_defaults() {
    let overrides = Overrides {
        config_path: Some((PathBuf::from(SAMPLE_PATH), config_flag())),
        ..Overrides::default()
    };
    assert_eq!(load(&overrides).ok(), Some(Settings::default()));
}

#[test]
fn the_sample_file_uncommented_loads_as_the_defaults() {
    let uncommented = uncomment_assignments(&read_sample());
    let assignments = uncommented
        .lines()
        .filter(|line| is_assignment(line))
        .count();
    assert_eq!(assignments, KEYS.len());
    let file = ConfigFile::with(&uncommented);
    assert_eq!(load(&file.overrides()).ok(), Some(Settings::default()));
}
