//! Watch streams: newline-delimited JSON `WatchEvent`s (`ADDED`, `MODIFIED`, `DELETED`,
//! `BOOKMARK`, `ERROR`) over a chunked response, fed by the store's gap-free watch.
//!
//! A selector turns store events into the events a client of a filtered watch expects: an
//! object that starts matching is `ADDED`, one that stops matching is `DELETED`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, StatusCode};
use k3rs_core::ResourceDef;
use k3rs_store::{Event, EventKind};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::debug;

use crate::content::Render;
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::query::Params;
use crate::storage;
use crate::AppState;

/// How often an idle watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(15);
/// Upper bound on a watch's life when the client sets none, as upstream (30-60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Encoder {
    def: Arc<ResourceDef>,
    render: Render,
    include_object: String,
    /// Printer columns when the resource is a custom one.
    custom: Option<Arc<k3rs_crd::VersionInfo>>,
    /// Tables carry column definitions in their first event only, as upstream.
    sent_columns: std::sync::atomic::AtomicBool,
}

impl Encoder {
    fn event(&self, kind: &str, object: Value) -> Bytes {
        let object = match self.render {
            Render::Table if kind != "BOOKMARK" && kind != "ERROR" => {
                let mut table = match &self.custom {
                    Some(info) => crate::crd::table(
                        info,
                        &[object],
                        "",
                        None,
                        &self.include_object,
                        chrono::Utc::now(),
                    ),
                    None => k3rs_printers::table(
                        &self.def.group,
                        &self.def.plural,
                        &[object],
                        "",
                        None,
                        &self.include_object,
                        chrono::Utc::now(),
                    ),
                };
                if self
                    .sent_columns
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    table["columnDefinitions"] = Value::Array(Vec::new());
                }
                table
            }
            Render::Metadata if kind != "ERROR" => crate::content::partial_metadata(&object),
            _ => object,
        };
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
            .expect("JSON values always serialize");
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, revision: i64, initial_events_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        self.event(
            "BOOKMARK",
            json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta}),
        )
    }

    fn error(&self, err: &ApiError) -> Bytes {
        self.event("ERROR", err.status())
    }
}

/// Decide the watch event a store event becomes for a filtered watch, if any.
fn classify(
    def: &ResourceDef,
    filter: &Filter,
    event: &Event,
) -> ApiResult<Option<(&'static str, Value)>> {
    let current = storage::decode(def, &event.kv)?;
    let previous = match &event.prev {
        Some(prev) => Some(storage::decode(def, prev)?),
        None => None,
    };
    let was = previous.as_ref().is_some_and(|p| filter.matches(p));
    let is = filter.matches(&current);
    Ok(match event.kind {
        EventKind::Delete if is || was => Some(("DELETED", current)),
        EventKind::Delete => None,
        EventKind::Put => match (was, is) {
            (false, true) => Some(("ADDED", current)),
            (true, true) => Some(("MODIFIED", current)),
            (true, false) => Some(("DELETED", current)),
            (false, false) => None,
        },
    })
}

pub async fn watch(
    state: &AppState,
    def: Arc<ResourceDef>,
    namespace: Option<String>,
    name: Option<String>,
    params: &Params,
    render: Render,
) -> ApiResult<Response> {
    let filter = Filter::new(&def, params)?;
    let encoder = Encoder {
        def: def.clone(),
        render,
        include_object: params.include_object.clone(),
        custom: state.custom.get(&def),
        sent_columns: Default::default(),
    };
    let prefix = match &name {
        Some(n) => def.key(namespace.as_deref(), n),
        None => def.list_prefix(namespace.as_deref()),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);

    // Without a resourceVersion the client wants the current state first (as ADDED
    // events), then changes after it; with one, only changes after that revision.
    let requested = params.revision()?;
    let mut initial = Vec::new();
    let start = match requested {
        Some(rev) if !params.send_initial_events => rev,
        _ => {
            let page = state
                .store
                .list(&def, namespace.as_deref(), None, None, None)
                .await?;
            for obj in page.items {
                let same_name = name
                    .as_deref()
                    .is_none_or(|n| crate::object::name(&obj) == Some(n));
                if same_name && filter.matches(&obj) {
                    initial.push(encoder.event("ADDED", obj));
                }
            }
            if params.send_initial_events && params.allow_watch_bookmarks {
                initial.push(encoder.bookmark(page.revision, true));
            }
            page.revision
        }
    };
    let mut events = match state.store.backend().watch(&prefix, start).await {
        Ok(stream) => stream,
        Err(err @ k3rs_store::Error::Compacted { .. }) => {
            // Upstream answers an expired watch with 200 and a single ERROR event.
            let line = encoder.error(&ApiError::from(err));
            return Ok(stream_response(Body::from(line)));
        }
        Err(err) => return Err(err.into()),
    };
    let timeout = params
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = params.allow_watch_bookmarks;
    let shutdown = state.shutdown.clone();
    let exact_key = name.as_ref().map(|_| prefix.clone());
    k3rs_core::task::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        let mut last_revision = start;
        loop {
            let line = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut deadline => break,
                _ = tx.closed() => break,
                _ = ticker.tick(), if bookmarks => encoder.bookmark(last_revision, false),
                next = events.next() => match next {
                    None => break,
                    Some(Err(err)) => {
                        debug!(error = %err, "watch ended by the store");
                        let line = encoder.error(&ApiError::from(err));
                        let _ = tx.send(line).await;
                        break;
                    }
                    Some(Ok(event)) => {
                        last_revision = event.kv.mod_revision;
                        // A watch on one name must not see `name-suffix` keys sharing the prefix.
                        if exact_key.as_ref().is_some_and(|k| *k != event.kv.key) {
                            continue;
                        }
                        match classify(&encoder.def, &filter, &event) {
                            Ok(Some((kind, obj))) => encoder.event(kind, obj),
                            Ok(None) => continue,
                            Err(err) => encoder.error(&err),
                        }
                    }
                },
            };
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    Ok(stream_response(Body::from_stream(
        ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>),
    )))
}

fn stream_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}
