//! The HTTP API of `weir serve`: `/healthz`, `/metrics` (Prometheus text), `/api/sources`
//! (JSON), `/api/windows` (window rows as JSON, see [`windows_api`]) and `/api/tail` (a stream of lines: text, or NDJSON with `Accept:
//! application/x-ndjson`).
//!
//! A tail is a [`TailSession`] read on a blocking thread of its own and forwarded through a small
//! channel to the response body; when the client goes away the session ends with it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router as HttpRouter;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use weir_ingest::listen::ReceiverCounters;
use weir_ingest::router::{parse_level, Router, StatusFilter, TailFilter, TailItem, TailSession};

use super::metrics::Metrics;
use super::windows::{row_json, LiveWindows};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The router tails read from.
    pub router: Arc<Router>,
    /// weir's counters.
    pub metrics: Arc<Metrics>,
    /// The receivers' counters.
    pub receivers: Arc<ReceiverCounters>,
    /// The live windows.
    pub windows: Arc<LiveWindows>,
    /// This server's node id.
    pub node: String,
    /// This server's boot name (the second part of its file names).
    pub boot: String,
    /// Turns true at shutdown: open tails end.
    pub shutdown: watch::Receiver<bool>,
    /// The drains.
    pub drains: Arc<Vec<DrainInfo>>,
    /// Tail sessions open at once (drains included); more get 503.
    pub max_tails: usize,
}

/// A drain as `/metrics` and `/api/sources` show it.
#[derive(Debug, Clone)]
pub struct DrainInfo {
    /// The app it forwards.
    pub app: String,
    /// Where to.
    pub url: String,
    /// Its buffer, in lines.
    pub buffer: usize,
    /// Its counters.
    pub stats: Arc<super::drain::DrainStats>,
}

/// The routes.
pub fn routes(state: ApiState) -> HttpRouter {
    HttpRouter::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/sources", get(sources))
        .route("/api/windows", get(windows_api))
        .route("/api/tail", get(tail))
        .with_state(state)
}

async fn metrics(State(s): State<ApiState>) -> Response {
    let text = s.metrics.render(&s.receivers, &s.router, &s.windows, &s.drains);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn sources(State(s): State<ApiState>) -> Response {
    let mut list: Vec<serde_json::Value> = s
        .router
        .sources()
        .into_iter()
        .map(|x| {
            serde_json::json!({
                "source": x.key.to_string(),
                "host": x.key.host,
                "app": x.key.app,
                "ps": x.key.proc_prefix,
                "lines": x.lines,
                "bytes": x.bytes,
                "rejects": x.rejects,
                "drops": x.drops,
                "shed": x.shed,
                "recent": x.recent,
                "recent_bytes": x.recent_bytes,
                "last_received": weir_model::time::format_rfc3339(x.last_received),
            })
        })
        .collect();
    // Each drain is listed after the sources, as `drain:<url>`.
    list.extend(s.drains.iter().map(|d| {
        let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        serde_json::json!({
            "source": format!("drain:{}", d.url),
            "drain": d.url,
            "app": d.app,
            "buffer": d.buffer,
            "sent": n(&d.stats.sent),
            "dropped": n(&d.stats.dropped),
            "notices": n(&d.stats.notices),
            "connects": n(&d.stats.connects),
            "connected": d.stats.connected.load(std::sync::atomic::Ordering::Relaxed),
        })
    }));
    axum::Json(list).into_response()
}

/// Query parameters of `/api/windows`.
#[derive(Debug, Default, Deserialize)]
pub struct WindowsQuery {
    /// Windows starting at or after this instant (microseconds since the epoch).
    since: Option<i64>,
    /// `unpublished`: only what the spool does not hold yet; anything else (or nothing): the
    /// recent closed windows and the open ones.
    scope: Option<String>,
    /// Merge rows per window over the other key parts: comma-separated frontend, backend,
    /// server, status_class (the names left out become empty; a status class left out reads
    /// `other`, and the row's `status_classes` still count each class).
    by: Option<String>,
}

/// `GET /api/windows?since=&scope=&by=`: `{node, boot, window_secs, sigfig, published, rows}`.
/// `rows` are partial window rows (see `weir_model::WindowRow`), merged by `by` when given;
/// `published` names the `windows` files this server wrote, for readers that also read the
/// spool and must not count a row twice.
async fn windows_api(State(s): State<ApiState>, Query(q): Query<WindowsQuery>) -> Response {
    let by: Option<Vec<weir_aggregate::query::KeyDim>> = match q.by.as_deref() {
        None | Some("") => None,
        Some(list) => match list
            .split(',')
            .map(|d| weir_aggregate::query::KeyDim::from_name(d.trim()))
            .collect::<Option<Vec<_>>>()
        {
            Some(dims) => Some(dims),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("by={list:?}: expected frontend, backend, server, status_class\n"),
                )
                    .into_response()
            }
        },
    };
    let windows = s.windows.clone();
    let unpublished = q.scope.as_deref() == Some("unpublished");
    let snapshot = tokio::task::spawn_blocking(move || windows.snapshot(q.since, unpublished)).await;
    let Ok((mut rows, published)) = snapshot else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let config = s.windows.config();
    if let Some(dims) = by {
        for r in &mut rows {
            let k = &mut r.key;
            use weir_aggregate::query::KeyDim;
            if !dims.contains(&KeyDim::Frontend) {
                k.frontend.clear();
            }
            if !dims.contains(&KeyDim::Backend) {
                k.backend.clear();
            }
            if !dims.contains(&KeyDim::Server) {
                k.server.clear();
            }
            if !dims.contains(&KeyDim::StatusClass) {
                k.status_class = weir_model::StatusClass::Other;
            }
        }
        rows = match weir_aggregate::merge_rows(&rows, config.sigfig, &s.node) {
            Ok(r) => r,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        };
    }
    axum::Json(serde_json::json!({
        "node": s.node,
        "boot": s.boot,
        "window_secs": config.window_secs,
        "sigfig": config.sigfig,
        "published": published,
        "rows": rows.iter().map(row_json).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// Query parameters of `/api/tail`.
#[derive(Debug, Default, Deserialize)]
pub struct TailQuery {
    app: Option<String>,
    host: Option<String>,
    ps: Option<String>,
    backend: Option<String>,
    status: Option<String>,
    slow: Option<i32>,
    level: Option<String>,
    n: Option<usize>,
}

async fn tail(State(s): State<ApiState>, Query(q): Query<TailQuery>, headers: HeaderMap) -> Response {
    let status = match q.status.as_deref().map(str::parse::<StatusFilter>).transpose() {
        Ok(st) => st,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let level = match q.level.as_deref().map(parse_level).transpose() {
        Ok(l) => l,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    if s.router.session_count() >= s.max_tails {
        s.metrics.tails_refused.inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many tail sessions ({} open; router.max_tails)\n",
                s.max_tails
            ),
        )
            .into_response();
    }
    let filter = TailFilter {
        app: q.app,
        host: q.host,
        ps: q.ps,
        backend: q.backend,
        status,
        slow_ms: q.slow,
        level,
    };
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    let session = s.router.subscribe(filter, q.n.unwrap_or(0));
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(64);
    let shutdown = s.shutdown.clone();
    std::thread::Builder::new()
        .name("weir-tail".into())
        .spawn(move || forward(session, tx, ndjson, shutdown))
        .map_err(|e| tracing::error!(error = %e, "cannot start a tail thread"))
        .ok();
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "text/plain; charset=utf-8"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Reads the session until the client leaves or the server shuts down.
fn forward(
    mut session: TailSession,
    tx: mpsc::Sender<Result<String, std::io::Error>>,
    ndjson: bool,
    shutdown: watch::Receiver<bool>,
) {
    let mut items = Vec::with_capacity(256);
    loop {
        if tx.is_closed() || *shutdown.borrow() {
            return;
        }
        match session.recv_timeout(Duration::from_millis(200)) {
            Ok(first) => {
                items.clear();
                items.push(first);
                session.drain_into(&mut items, 255);
                let mut chunk = String::new();
                for item in &items {
                    render(item, ndjson, &mut chunk);
                }
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(weir_ingest::router::RecvError::Timeout) => {}
            Err(weir_ingest::router::RecvError::Closed) => return,
        }
    }
}

/// One tail item as a line of text or of NDJSON.
pub fn render(item: &TailItem, ndjson: bool, out: &mut String) {
    if !ndjson {
        out.push_str(&item.to_string());
        out.push('\n');
        return;
    }
    let v = match item {
        TailItem::Line(l) => serde_json::json!({
            "received_at": weir_model::time::format_rfc3339(l.line.fields.received_at),
            "source": l.source.to_string(),
            "backend": l.line.backend(),
            "status": l.line.fields.status,
            "total_ms": l.line.fields.total_ms,
            "line": l.line.text(),
        }),
        TailItem::Overflow(o) => serde_json::json!({
            "error": "L11",
            "dropped": o.dropped,
            "since": weir_model::time::format_rfc3339(o.since),
            "message": o.to_string(),
        }),
    };
    out.push_str(&v.to_string());
    out.push('\n');
}
