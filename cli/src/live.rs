//! Clients of a running `weir serve`: its window rows (`/api/windows`) and its own counters
//! (`/metrics`), for `weir query --server` and `weir top`.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use weir_model::{Micros, WindowRow};

use crate::serve::windows::row_from_json;

/// How long to wait for a server.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What `/api/windows` answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerWindows {
    /// The server's node id.
    pub node: String,
    /// Its boot name (second part of its file names).
    pub boot: String,
    /// Its histograms' precision.
    pub sigfig: u8,
    /// The `windows` files it published (names only).
    pub published: Vec<String>,
    /// The rows.
    pub rows: Vec<WindowRow>,
}

impl ServerWindows {
    /// Whether a spool file belongs to this server's run but is not among the files it had
    /// published when it answered: its rows were then still in the answer, so a reader of
    /// both skips the file.
    pub fn answered_for(&self, file_name: &str) -> bool {
        file_name.starts_with(&format!("{}-{}-", self.node, self.boot))
            && !self.published.iter().any(|p| p == file_name)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into()
}

fn get(url: &str) -> anyhow::Result<String> {
    let response = agent()
        .get(url)
        .call()
        .with_context(|| format!("cannot reach weir serve at {url} (is it running? see --server)"))?;
    let status = response.status().as_u16();
    let text = response
        .into_body()
        .read_to_string()
        .with_context(|| format!("reading {url}"))?;
    anyhow::ensure!(status == 200, "{url} answered HTTP {status}: {}", text.trim());
    Ok(text)
}

/// The server's window rows starting at or after `since`: with `unpublished`, only those its
/// spool does not hold yet.
pub fn windows(server: &str, since: Option<Micros>, unpublished: bool) -> anyhow::Result<ServerWindows> {
    let mut url = format!("{}/api/windows?", server.trim_end_matches('/'));
    if let Some(s) = since {
        url.push_str(&format!("since={s}&"));
    }
    if unpublished {
        url.push_str("scope=unpublished");
    }
    let v: Value = serde_json::from_str(&get(&url)?).with_context(|| format!("{url}: not JSON"))?;
    let bad = || anyhow::anyhow!("{url}: not a weir /api/windows answer");
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(bad)
    };
    let rows = v
        .get("rows")
        .and_then(Value::as_array)
        .ok_or_else(bad)?
        .iter()
        .map(|r| row_from_json(r).ok_or_else(bad))
        .collect::<anyhow::Result<_>>()?;
    Ok(ServerWindows {
        node: text("node")?,
        boot: text("boot")?,
        sigfig: v.get("sigfig").and_then(Value::as_u64).ok_or_else(bad)? as u8,
        published: v
            .get("published")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect(),
        rows,
    })
}

/// The server's `/metrics` as (name with labels, value) pairs.
pub fn metrics(server: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let url = format!("{}/metrics", server.trim_end_matches('/'));
    Ok(get(&url)?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect())
}
