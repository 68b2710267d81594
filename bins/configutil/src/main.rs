//! `configutil`: read and change Portcullis configuration parameters.
//!
//! ```text
//! configutil [--config FILE]                      list every parameter set in the file
//! configutil [--config FILE] -o NAME              print a parameter's value (a filter
//!                                                 of several entries: one a line)
//! configutil [--config FILE] -o NAME -v VALUE     set it ("" removes it: default again)
//! configutil [--config FILE] -p PREFIX            list the set parameters under PREFIX
//! configutil -H [-o NAME | -p PREFIX]             defaults and descriptions
//! configutil [--config FILE] -i FILE              set NAME=VALUE lines, all or nothing
//! ```

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use portcullis_config::{Config, Error, Kind, PARAMETERS, Parameter, registry, update_file};

/// Read and change Portcullis configuration parameters.
#[derive(Debug, Parser)]
#[command(name = "configutil", version)]
struct Args {
    /// The configuration file.
    #[arg(
        short = 'f',
        long = "config",
        env = "PORTCULLIS_CONFIG",
        default_value = "/etc/portcullis/portcullis.toml"
    )]
    config: PathBuf,
    /// The parameter to print or set.
    #[arg(short = 'o', long = "option", value_name = "NAME")]
    option: Option<String>,
    /// The value to set (with -o); an empty value removes the parameter.
    #[arg(short = 'v', long = "value", requires = "option", value_name = "VALUE")]
    value: Option<String>,
    /// Only parameters whose names start with PREFIX.
    #[arg(
        short = 'p',
        long = "pattern",
        value_name = "PREFIX",
        conflicts_with = "option"
    )]
    pattern: Option<String>,
    /// Show defaults, types and descriptions instead of values.
    #[arg(short = 'H', long = "defaults", conflicts_with = "value")]
    defaults: bool,
    /// Set every `NAME=VALUE` line of FILE in one update (all or nothing).
    #[arg(short = 'i', long = "import", value_name = "FILE", conflicts_with_all = ["option", "pattern", "defaults"])]
    import: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("configutil: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let write_err = |source| Error::Io {
        path: PathBuf::from("<stdout>"),
        source,
    };
    if args.defaults {
        let params: Vec<&Parameter> = match (&args.option, &args.pattern) {
            (Some(name), _) => vec![known(name)?],
            (None, Some(prefix)) => matching(prefix).collect(),
            (None, None) => PARAMETERS.iter().collect(),
        };
        for p in params {
            let default = match p.default {
                Some(d) => format!("{d:?}"),
                None => "(unset)".to_owned(),
            };
            writeln!(
                out,
                "{}\n    type: {}; default: {}\n    {}",
                p.name,
                p.kind.describe(),
                default,
                p.description
            )
            .map_err(write_err)?;
        }
        return Ok(());
    }
    if let Some(file) = &args.import {
        let lines = read_import(file)?;
        return update_file(&args.config, |c| {
            for (name, value) in &lines {
                c.set(name, value)?;
            }
            Ok(())
        });
    }
    match (&args.option, &args.value) {
        (Some(name), Some(value)) => update_file(&args.config, |c| c.set(name, value)),
        (Some(name), None) => {
            let config = load(&args.config)?;
            let param = known(name)?;
            let value = config.string(param.name)?;
            writeln!(out, "{}", value.trim_end_matches('\n')).map_err(write_err)
        }
        (None, _) => {
            let config = load(&args.config)?;
            let prefix = args.pattern.as_deref().unwrap_or("");
            for p in matching(prefix) {
                if let Some(value) = config.value(p.name)?.filter(|_| config.is_set(p.name)) {
                    // A filter of several lines: one filter a line, the
                    // lines after the first indented.
                    let shown = if p.kind == Kind::Secret {
                        "********".to_owned()
                    } else {
                        value
                            .to_config_string_for(p.kind)
                            .trim_end_matches('\n')
                            .replace('\n', "\n    ")
                    };
                    writeln!(out, "{} = {}", p.name, shown).map_err(write_err)?;
                }
            }
            Ok(())
        }
    }
}

/// A missing file reads as empty: every parameter has its default.
fn load(path: &Path) -> Result<Config, Error> {
    match Config::load(path) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Config::default())
        }
        other => other,
    }
}

fn known(name: &str) -> Result<&'static Parameter, Error> {
    registry::lookup(name).ok_or_else(|| Error::UnknownParameter {
        name: name.to_owned(),
        suggestion: registry::closest(name),
    })
}

fn matching(prefix: &str) -> impl Iterator<Item = &'static Parameter> + '_ {
    let prefix = prefix.to_ascii_lowercase();
    PARAMETERS
        .iter()
        .filter(move |p| p.name.starts_with(&prefix))
}

fn read_import(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or_else(|| Error::Syntax {
            line: n + 1,
            column: 1,
            message: "expected NAME=VALUE".to_owned(),
        })?;
        lines.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(lines)
}
