//! The YAML config file, as k3s reads it: `config.yaml` plus `config.yaml.d/*.yaml` in
//! name order, later files overriding earlier keys, `key+:` appending to a list. The
//! merged keys become command-line flags placed before the real ones, so the command
//! line wins.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::Value;

pub const DEFAULT_CONFIG: &str = "/etc/rancher/k3rs/config.yaml";

/// Ordered key -> values, merged over all files.
type Merged = Vec<(String, Vec<String>)>;

fn scalar(value: &Value, file: &Path, key: &str) -> Result<String> {
    Ok(match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => bail!(
            "config file {}: key {key:?} must be a string, number, boolean or a list of them",
            file.display()
        ),
    })
}

fn merge_file(file: &Path, merged: &mut Merged) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("config file {}: cannot read", file.display()))?;
    let doc: Value = serde_yaml::from_str(&text)
        .map_err(|e| anyhow!("config file {}: invalid YAML: {e}", file.display()))?;
    let map = match doc {
        Value::Null => return Ok(()),
        Value::Mapping(map) => map,
        _ => bail!(
            "config file {}: must be a YAML mapping of flag names to values",
            file.display()
        ),
    };
    for (key, value) in map {
        let key = key
            .as_str()
            .ok_or_else(|| anyhow!("config file {}: keys must be strings", file.display()))?
            .to_string();
        let (name, append) = match key.strip_suffix('+') {
            Some(name) => (name.to_string(), true),
            None => (key.clone(), false),
        };
        let values = match &value {
            Value::Sequence(items) => items
                .iter()
                .map(|v| scalar(v, file, &name))
                .collect::<Result<Vec<_>>>()?,
            other => vec![scalar(other, file, &name)?],
        };
        match merged.iter_mut().find(|(k, _)| *k == name) {
            Some((_, existing)) if append => existing.extend(values),
            Some((_, existing)) => *existing = values,
            None => merged.push((name, values)),
        }
    }
    Ok(())
}

/// The config file and its drop-ins, in the order they apply.
fn files(main: &Path, explicit: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if main.exists() || explicit {
        out.push(main.to_path_buf());
    }
    let dropins = PathBuf::from(format!("{}.d", main.display()));
    if let Ok(entries) = std::fs::read_dir(&dropins) {
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        names.sort();
        out.extend(names);
    }
    Ok(out)
}

/// Find `--config`/`-c` (or `K3RS_CONFIG_FILE`) in the raw arguments.
fn config_path(args: &[String]) -> (PathBuf, bool) {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(v) = arg.strip_prefix("--config=") {
            return (PathBuf::from(v), true);
        }
        if arg == "--config" || arg == "-c" {
            if let Some(v) = iter.next() {
                return (PathBuf::from(v), true);
            }
        }
    }
    match std::env::var("K3RS_CONFIG_FILE") {
        Ok(v) if !v.is_empty() => (PathBuf::from(v), true),
        _ => (PathBuf::from(DEFAULT_CONFIG), false),
    }
}

/// The arguments with the config file's flags inserted right after the subcommand.
/// `known` lists the long flag names the subcommand accepts; any other key is an error.
pub fn expand_args(args: Vec<String>, subcommand: &str, known: &[String]) -> Result<Vec<String>> {
    let Some(position) = args.iter().position(|a| a == subcommand) else {
        return Ok(args);
    };
    let (path, explicit) = config_path(&args[position + 1..]);
    let mut merged = Merged::new();
    for file in files(&path, explicit)? {
        merge_file(&file, &mut merged)?;
    }
    let mut injected = Vec::new();
    for (key, values) in merged {
        if key == "config" || !known.contains(&key) {
            bail!("config file {}: unknown key {key:?}", path.display());
        }
        for value in values {
            injected.push(format!("--{key}={value}"));
        }
    }
    let mut out = args[..=position].to_vec();
    out.extend(injected);
    out.extend_from_slice(&args[position + 1..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        ["data-dir", "tls-san", "cluster-cidr", "debug"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn merges_dropins_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("config.yaml");
        std::fs::write(&main, "data-dir: /a\ntls-san: [one]\n").unwrap();
        std::fs::create_dir(dir.path().join("config.yaml.d")).unwrap();
        std::fs::write(
            dir.path().join("config.yaml.d/10-b.yaml"),
            "tls-san+: [two]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("config.yaml.d/20-c.yaml"), "data-dir: /c\n").unwrap();
        let args: Vec<String> = [
            "k3rs",
            "server",
            "-c",
            main.to_str().unwrap(),
            "--data-dir",
            "/cli",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = expand_args(args, "server", &known()).unwrap();
        assert_eq!(
            &out[2..5],
            &["--data-dir=/c", "--tls-san=one", "--tls-san=two"].map(String::from)
        );
        assert_eq!(out.last().unwrap(), "/cli");
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("config.yaml");
        std::fs::write(&main, "no-such-flag: 1\n").unwrap();
        let args = vec![
            "k3rs".into(),
            "server".into(),
            format!("--config={}", main.display()),
        ];
        let err = expand_args(args, "server", &known())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key \"no-such-flag\""), "{err}");
        let args = vec![
            "k3rs".into(),
            "server".into(),
            "--config=/nonexistent/k3rs.yaml".into(),
        ];
        let err = expand_args(args, "server", &known())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/k3rs.yaml"), "{err}");
    }
}
