//! The configuration file (`--config FILE`, TOML): every setting `serve`
//! takes, under the flag's own long name (`rp-id = "https://…"`,
//! `max-connections = 2048`, `trust-proxy = ["10.0.0.0/8"]`,
//! `risk-adaptive-lockout = true`).
//!
//! Precedence: a flag on the command line, then its environment variable,
//! then the file, then the built-in default. It is done with clap itself,
//! not a second description of the settings: the command line is parsed
//! once to find `--config` and which flags were given; each file key whose
//! flag was neither on the command line nor in the environment is appended
//! as that flag; the result is parsed again. So a file value goes through
//! the very parser and range checks a flag does, a new flag is a new key
//! with no code here, and a key that names no flag is refused.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::Cli;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: not valid TOML: {1}")]
    Toml(PathBuf, String),
    #[error("{path}: unknown key `{key}` (keys are serve's long flag names, e.g. `rp-id`)")]
    UnknownKey { path: PathBuf, key: String },
    #[error("{path}: `{key}`: {reason}")]
    BadValue {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
}

/// Keys that are no setting: the file cannot name itself, ask for help or
/// a version.
const NOT_KEYS: &[&str] = &["config", "help", "version"];

/// Parses the process's command line, with the configuration file merged
/// in. Errors of the command line itself (and `--help`, `--version`) are
/// clap's: printed, and the process exits, as a plain `Cli::parse` would.
pub fn parse() -> Result<Cli, ConfigError> {
    parse_from(std::env::args_os().collect(), |name| std::env::var_os(name))
}

/// `parse` over given arguments and environment (for tests).
pub fn parse_from(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Cli, ConfigError> {
    let matches = Cli::command()
        .try_get_matches_from(&args)
        .unwrap_or_else(|e| e.exit());
    let Some(path) = matches.get_one::<PathBuf>("config").cloned() else {
        return Cli::from_arg_matches(&matches).map_err(|e| e.exit());
    };
    let extra = file_args(&path, &matches, &env)?;
    let mut merged = args;
    merged.extend(extra);
    let matches = Cli::command()
        .try_get_matches_from(&merged)
        .map_err(|e| ConfigError::Invalid(path.clone(), first_line(&e.to_string())))?;
    Cli::from_arg_matches(&matches).map_err(|e| ConfigError::Invalid(path, e.to_string()))
}

/// clap's message on one line, without its usage and help hints.
fn first_line(message: &str) -> String {
    message
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}

/// The flags the file adds: one per key whose flag was not given and whose
/// environment variable is not set.
fn file_args(
    path: &Path,
    matches: &ArgMatches,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<OsString>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError::Toml(path.to_owned(), e.to_string()))?;
    let cmd = Cli::command();
    // `serve` owns nearly every setting; the other commands only use the
    // global ones (the database). `config check` parses the file again as
    // `serve` would (`cli::as_serve`).
    let serve = cmd
        .find_subcommand("serve")
        .expect("serve is a subcommand")
        .clone();
    let serve_matches = matches.subcommand_matches("serve");
    let applies_to_serve = serve_matches.is_some();
    let mut out = Vec::new();
    for (key, value) in &table {
        let bad = |reason: &str| ConfigError::BadValue {
            path: path.to_owned(),
            key: key.clone(),
            reason: reason.to_owned(),
        };
        if NOT_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
            });
        }
        let global = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()));
        let (arg, given) = match global {
            Some(arg) => (arg.clone(), matches.value_source(arg.get_id().as_str())),
            None => match serve
                .get_arguments()
                .find(|a| a.get_long() == Some(key.as_str()))
            {
                Some(arg) => (
                    arg.clone(),
                    serve_matches.and_then(|m| m.value_source(arg.get_id().as_str())),
                ),
                None => {
                    return Err(ConfigError::UnknownKey {
                        path: path.to_owned(),
                        key: key.clone(),
                    })
                }
            },
        };
        if global.is_none() && !applies_to_serve {
            continue;
        }
        if matches!(
            given,
            Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable)
        ) {
            continue;
        }
        if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
            if env(name).is_some() {
                continue;
            }
        }
        let flag = format!("--{key}");
        if !arg.get_action().takes_values() {
            match value {
                toml::Value::Boolean(true) => out.push(flag.into()),
                toml::Value::Boolean(false) => {}
                _ => return Err(bad("expected true or false")),
            }
            continue;
        }
        let values = match value {
            toml::Value::Array(items) => items
                .iter()
                .map(|v| scalar(v).ok_or_else(|| bad("arrays hold strings or numbers")))
                .collect::<Result<Vec<_>, _>>()?,
            v => vec![scalar(v).ok_or_else(|| {
                bad("expected a string, a number or a boolean (tables are not settings)")
            })?],
        };
        if values.is_empty() {
            continue;
        }
        match arg.get_value_delimiter() {
            Some(d) => out.push(format!("{flag}={}", values.join(&d.to_string())).into()),
            None if values.len() == 1 => out.push(format!("{flag}={}", values[0]).into()),
            None => return Err(bad("takes one value, not an array")),
        }
    }
    Ok(out)
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use std::collections::HashMap;

    fn run(file: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Cli, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devicetrust.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = vec!["devicetrust-server".into()];
        argv.extend(args.iter().map(OsString::from));
        argv.push("--config".into());
        argv.push(path.into());
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_from(argv, |name| env.get(name).map(OsString::from))
    }

    fn serve(cli: Cli) -> (String, Box<crate::cli::ServeArgs>) {
        match cli.command {
            Command::Serve(args) => (cli.database, args),
            other => panic!("{other:?}"),
        }
    }

    // The process environment is consulted by clap itself for variables the
    // test sets; these tests only use variables no CI sets.
    const FILE: &str = r#"
database = "sqlite:///var/lib/devicetrust/file.db"
rp-id = "https://file.example"
max-connections = 100
header-timeout = 7
trust-proxy = ["10.0.0.0/8", "192.168.1.1"]
risk-adaptive-lockout = true
lockout-threshold = 4
"#;

    #[test]
    fn the_file_fills_what_flags_leave_unset() {
        let (db, args) = serve(run(FILE, &["serve"], &[]).unwrap());
        assert_eq!(db, "sqlite:///var/lib/devicetrust/file.db");
        assert_eq!(args.rp_id, "https://file.example");
        assert_eq!(args.max_connections, 100);
        assert_eq!(args.header_timeout, 7);
        assert_eq!(args.trust_proxy.len(), 2);
        assert!(args.risk.risk_adaptive_lockout);
        assert_eq!(args.lockout_threshold, 4);
        // Untouched by the file: the default.
        assert_eq!(args.body_timeout, 10);
    }

    #[test]
    fn a_flag_beats_the_file() {
        let (db, args) = serve(
            run(
                FILE,
                &[
                    "serve",
                    "--max-connections",
                    "5",
                    "--database",
                    "sqlite://flag.db",
                ],
                &[],
            )
            .unwrap(),
        );
        assert_eq!(db, "sqlite://flag.db");
        assert_eq!(args.max_connections, 5);
        assert_eq!(args.header_timeout, 7);
    }

    #[test]
    fn the_environment_beats_the_file_but_not_a_flag() {
        // The parser reads the real environment for what clap resolves; the
        // test's `env` tells the file layer which variables are set. Both
        // are needed for a real process; here the file layer is what is
        // under test: a set variable keeps the file's value out.
        let (_, args) = serve(
            run(
                FILE,
                &["serve", "--rp-id", "https://flag.example"],
                &[
                    ("DEVICETRUST_MAX_CONNECTIONS", "77"),
                    ("DEVICETRUST_RP_ID", "https://env.example"),
                ],
            )
            .unwrap(),
        );
        assert_eq!(args.rp_id, "https://flag.example");
        // The file's 100 was not applied (the variable is "set"); with no
        // such variable in the real environment, clap falls back to the
        // default, which shows the file lost to the environment. The
        // binary test `config_precedence_in_a_real_process` checks the
        // real variable end to end.
        assert_eq!(args.max_connections, 4096);
    }

    #[test]
    fn unknown_keys_bad_values_and_bad_toml_are_refused_clearly() {
        let e = run("rp_id = \"x\"\n", &["serve"], &[]).unwrap_err();
        assert!(e.to_string().contains("unknown key `rp_id`"), "{e}");
        let e = run("config = \"other.toml\"\n", &["serve"], &[]).unwrap_err();
        assert!(e.to_string().contains("unknown key `config`"), "{e}");
        let e = run("max-connections = 0\n", &["serve"], &[]).unwrap_err();
        assert!(e.to_string().contains("max-connections"), "{e}");
        let e = run("max-connections = \"many\"\n", &["serve"], &[]).unwrap_err();
        assert!(e.to_string().contains("many"), "{e}");
        let e = run("risk-adaptive-lockout = \"yes\"\n", &["serve"], &[]).unwrap_err();
        assert!(e.to_string().contains("true or false"), "{e}");
        let e = run("[risk]\nmode = \"off\"\n", &["serve"], &[]).unwrap_err();
        assert!(e.to_string().contains("tables are not settings"), "{e}");
        let e = run("[server]\nlisten = \"x\"\n", &["serve"], &[]).unwrap_err();
        assert!(e.to_string().contains("unknown key `server`"), "{e}");
        let e = run("rp-id = \n", &["serve"], &[]).unwrap_err();
        assert!(e.to_string().contains("not valid TOML"), "{e}");
    }

    #[test]
    fn the_otlp_endpoint_follows_the_same_precedence_and_is_checked() {
        let file = "otlp-endpoint = \"http://file-collector:4318\"\n";
        let endpoint = |cli: Cli| serve(cli).1.otlp_endpoint.map(|u| u.to_string());
        // Off unless set.
        assert_eq!(endpoint(run("", &["serve"], &[]).unwrap()), None);
        assert_eq!(
            endpoint(run(file, &["serve"], &[]).unwrap()).as_deref(),
            Some("http://file-collector:4318/")
        );
        assert_eq!(
            endpoint(
                run(
                    file,
                    &["serve", "--otlp-endpoint", "https://flag-collector/otlp"],
                    &[]
                )
                .unwrap()
            )
            .as_deref(),
            Some("https://flag-collector/otlp")
        );
        // A set variable keeps the file's value out (see above for why the
        // real variable is not read here).
        assert_eq!(
            endpoint(
                run(
                    file,
                    &["serve"],
                    &[("DEVICETRUST_OTLP_ENDPOINT", "http://env-collector:4318")]
                )
                .unwrap()
            ),
            None
        );
        for bad in [
            "collector:4318",
            "ftp://c.example",
            "http://user:pw@c.example",
        ] {
            let e = run(&format!("otlp-endpoint = \"{bad}\"\n"), &["serve"], &[]).unwrap_err();
            assert!(e.to_string().contains("otlp-endpoint"), "{bad}: {e}");
        }
    }

    #[test]
    fn other_commands_take_only_the_global_settings() {
        let cli = run(FILE, &["user", "unlock", "alice"], &[]).unwrap();
        assert_eq!(cli.database, "sqlite:///var/lib/devicetrust/file.db");
        // An unknown key is refused whatever the command.
        assert!(run("nope = 1\n", &["user", "unlock", "alice"], &[]).is_err());
    }
}
