//! A tiny `--name value` parser: the options are few and all numbers or strings, so a
//! dependency would cost more build time than it saves.

use std::collections::HashMap;
use std::time::Duration;

/// Parsed options: repeated `--name value` pairs.
#[derive(Debug, Default)]
pub struct Args {
    options: HashMap<String, Vec<String>>,
}

impl Args {
    /// Read `argv` as `--name value` pairs.
    pub fn parse(argv: Vec<String>) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut words = argv.into_iter();
        while let Some(word) = words.next() {
            if let Some(name) = word.strip_prefix("--") {
                let value = words
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                parsed
                    .options
                    .entry(name.to_owned())
                    .or_default()
                    .push(value);
            } else {
                return Err(format!("unexpected argument '{word}'"));
            }
        }
        Ok(parsed)
    }

    /// Every value given for `--name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.options.get(name).map_or(&[], Vec::as_slice)
    }

    /// The last value given for `--name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).last().map(String::as_str)
    }

    /// `--name` as a string, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// `--name` as a number, or `default`.
    pub fn usize(&self, name: &str, default: usize) -> Result<usize, String> {
        self.get(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("--{name}: '{v}' is not a number"))
        })
    }

    /// `--name` in milliseconds, or `default_ms`.
    pub fn millis(&self, name: &str, default_ms: u64) -> Result<Duration, String> {
        self.get(name)
            .map_or(Ok(Duration::from_millis(default_ms)), |v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|ms| ms.is_finite() && *ms >= 0.0)
                    .map(|ms| Duration::from_secs_f64(ms / 1000.0))
                    .ok_or_else(|| format!("--{name}: '{v}' is not a number of milliseconds"))
            })
    }

    /// `--name` as a comma-separated list of numbers.
    pub fn usize_list(&self, name: &str, default: &[usize]) -> Result<Vec<usize>, String> {
        self.get(name).map_or(Ok(default.to_vec()), |v| {
            v.split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.trim()
                        .parse()
                        .map_err(|_| format!("--{name}: '{s}' is not a number"))
                })
                .collect()
        })
    }
}
