//! Reading fjord's metrics in tests: one scrape of a `/metrics` endpoint, parsed, and a real
//! Prometheus server that scrapes a test cluster and answers PromQL.

use crate::{free_port, http};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One sample: metric name, labels, value.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// `GET http://addr/metrics`, parsed.
    pub fn of(addr: &str) -> Result<Self> {
        let (status, body) = http(addr, "GET", "/metrics")?;
        if status != 200 {
            bail!("GET /metrics on {addr} answered {status}: {body}");
        }
        Self::parse(&body)
    }

    /// Parses the text exposition format (the subset the `prometheus` crate writes).
    pub fn parse(text: &str) -> Result<Self> {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line
                .rsplit_once(' ')
                .with_context(|| format!("no value in {line:?}"))?;
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .with_context(|| format!("bad value in {line:?}"))?,
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest
                        .strip_suffix('}')
                        .with_context(|| format!("unclosed labels in {line:?}"))?;
                    (name.to_string(), parse_labels(body)?)
                }
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Ok(Self { samples })
    }

    /// The sum of the samples named `name` whose labels include `labels` (0 if none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// Whether any sample named `name` has `labels`.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.matching(name, labels).next().is_some()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }
}

fn parse_labels(mut body: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    while !body.is_empty() {
        let (key, rest) = body.split_once("=\"").context("label without a value")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => bail!("dangling escape"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value"),
            }
        };
        labels.insert(key.to_string(), value);
        body = rest[end + 1..].trim_start_matches(',');
    }
    Ok(labels)
}

/// A real Prometheus server (Debian's `prometheus`) on a free port, with its own storage.
pub struct Prometheus {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Checks `config` with `promtool check config`, then starts Prometheus with it and waits
    /// until it is ready.
    pub fn start(config: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config)?;
        let check = Command::new("promtool")
            .args(["check", "config"])
            .arg(&file)
            .output()
            .context("running promtool (Debian package prometheus)")?;
        if !check.status.success() {
            bail!(
                "promtool check config failed:\n{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let addr = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting prometheus (Debian package prometheus)")?;
        let prometheus = Self {
            child,
            addr,
            _dir: dir,
        };
        prometheus.wait_until(Duration::from_secs(30), "ready", |p| {
            Ok(http(&p.addr, "GET", "/-/ready").is_ok_and(|(status, _)| status == 200))
        })?;
        Ok(prometheus)
    }

    /// Polls `ready` until it holds, failing after `limit`.
    pub fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        ready: impl Fn(&Self) -> Result<bool>,
    ) -> Result<()> {
        let deadline = Instant::now() + limit;
        while !ready(self)? {
            if Instant::now() > deadline {
                bail!("prometheus: not {what} within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Runs an instant PromQL query; returns the `data` object of the API's answer.
    pub fn query(&self, promql: &str) -> Result<serde_json::Value> {
        let (status, body) = http(
            &self.addr,
            "GET",
            &format!("/api/v1/query?query={}", percent_encode(promql)),
        )?;
        let answer: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))?;
        if status != 200 || answer["status"] != "success" {
            bail!("query {promql:?} failed ({status}): {body}");
        }
        Ok(answer["data"].clone())
    }

    /// The scrape targets' health, `(job, scrape URL, health)`.
    pub fn targets(&self) -> Result<Vec<(String, String, String)>> {
        let (_, body) = http(&self.addr, "GET", "/api/v1/targets")?;
        let answer: serde_json::Value = serde_json::from_str(&body)?;
        let active = answer["data"]["activeTargets"]
            .as_array()
            .context("no activeTargets")?;
        Ok(active
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                (
                    t["labels"]["job"].as_str().unwrap_or_default().to_string(),
                    s("scrapeUrl"),
                    s("health"),
                )
            })
            .collect())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The repository's `grafana/` folder.
pub fn grafana_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../grafana"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_exposition_format() {
        let text = "# HELP x_total help\n# TYPE x_total counter\n\
                    x_total{command=\"get\",result=\"ok\"} 3\n\
                    x_total{command=\"a\\\"b\",result=\"err\"} 1\n\
                    y_bucket{le=\"+Inf\"} 2\ny 1.5e-3\n";
        let s = Scrape::parse(text).unwrap();
        assert_eq!(s.sum("x_total", &[]), 4.0);
        assert_eq!(s.sum("x_total", &[("command", "get")]), 3.0);
        assert_eq!(s.sum("x_total", &[("command", "a\"b")]), 1.0);
        assert_eq!(s.sum("y", &[]), 0.0015);
        assert!(s.has("y_bucket", &[("le", "+Inf")]));
        assert!(!s.has("x_total", &[("command", "set")]));
    }
}
