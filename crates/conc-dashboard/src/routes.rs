//! The routes: every page answers HTML, or JSON under `/api/...` or to
//! `Accept: application/json`; the actions are POSTs checked for their
//! origin and CSRF token.
#![allow(
    clippy::result_large_err,
    reason = "an error here is the response itself, built once per failed request"
)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri, Path, Query};
use axum::http::header::{ACCEPT, LOCATION, REFERER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use conc_bus::batch::BatchId;
use conc_bus::{FailedQuery, JobId};
use conc_bus_cli::{AdminError, BatchQuery, BatchState, RetryFailed, visible_payload};
use serde::Deserialize;
use serde_json::json;

use crate::access;
use crate::html::Frame;
use crate::model::{BatchList, Page};
use crate::state::Inner;
use crate::{batch_pages, pages};

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/api/overview", get(overview))
        .route("/queues", get(queues))
        .route("/api/queues", get(queues))
        .route("/queues/{name}/pause", post(pause))
        .route("/api/queues/{name}/pause", post(pause))
        .route("/queues/{name}/resume", post(resume))
        .route("/api/queues/{name}/resume", post(resume))
        .route("/workers", get(workers))
        .route("/api/workers", get(workers))
        .route("/recent", get(recent))
        .route("/api/recent", get(recent))
        .route("/failed", get(failed))
        .route("/api/failed", get(failed))
        .route("/failed/retry", post(retry_all))
        .route("/api/failed/retry", post(retry_all))
        .route("/failed/{id}", get(failed_job))
        .route("/api/failed/{id}", get(failed_job))
        .route("/failed/{id}/retry", post(retry))
        .route("/api/failed/{id}/retry", post(retry))
        .route("/failed/{id}/forget", post(forget))
        .route("/api/failed/{id}/forget", post(forget))
        .route("/batches", get(batches))
        .route("/api/batches", get(batches))
        .route("/batches/{id}", get(batch))
        .route("/api/batches/{id}", get(batch))
        .route("/batches/{id}/cancel", post(cancel_batch))
        .route("/api/batches/{id}/cancel", post(cancel_batch))
        .route("/metrics", get(metrics))
        .route("/api/metrics", get(metrics))
        .with_state(inner)
}

/// A request let in: the dashboard, whether it wants JSON, and the prefix the
/// dashboard is mounted under (for links).
pub(crate) struct Ctx {
    inner: Arc<Inner>,
    json: bool,
    base: String,
    /// The host the request was sent to (`Host`, or HTTP/2's `:authority`).
    host: String,
}

impl FromRequestParts<Arc<Inner>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, inner: &Arc<Inner>) -> Result<Self, Response> {
        inner.ensure_started();
        let accept = parts.headers.get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        let json = parts.uri.path().starts_with("/api/")
            || (accept.contains("application/json") && !accept.contains("text/html"));
        let host = access::authority(parts).unwrap_or_default().to_owned();
        let ctx = Self { inner: Arc::clone(inner), json, base: base_of(parts), host };
        match access::admit(parts, &inner.settings) {
            Ok(()) => Ok(ctx),
            Err((status, message)) => Err(ctx.fail(status, &message)),
        }
    }
}

/// The path prefix the router is nested under: the original path less the
/// path the router saw.
fn base_of(parts: &Parts) -> String {
    let seen = parts.uri.path();
    let original =
        parts.extensions.get::<OriginalUri>().map_or(seen, |OriginalUri(uri)| uri.path());
    if seen == "/" {
        return original.trim_end_matches('/').to_owned();
    }
    original.strip_suffix(seen).unwrap_or("").trim_end_matches('/').to_owned()
}

impl Ctx {
    fn frame(&self, failed_total: Option<u64>) -> Frame<'_> {
        let settings = &self.inner.settings;
        Frame {
            base: &self.base,
            title: &settings.title,
            csrf: &self.inner.csrf,
            failed_total,
            refresh_secs: settings.refresh.as_secs(),
        }
    }

    fn fail(&self, status: StatusCode, message: &str) -> Response {
        if self.json {
            (status, Json(json!({ "error": message }))).into_response()
        } else {
            (status, Html(pages::error(&self.frame(None), status.as_u16(), message)))
                .into_response()
        }
    }

    fn backend(&self, error: &AdminError) -> Response {
        let status = match error {
            AdminError::NoSuchJob(_) | AdminError::NoSuchBatch(_) | AdminError::NoSuchQueue(_) => {
                StatusCode::NOT_FOUND
            }
            AdminError::NoBatches => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        self.fail(status, &error.to_string())
    }

    fn bad(&self, message: &str) -> Response {
        self.fail(StatusCode::BAD_REQUEST, message)
    }

    async fn failed_total(&self) -> Result<u64, Response> {
        self.inner.admin.failed_count(None).await.map_err(|e| self.backend(&e))
    }

    fn page(&self, value: Option<&str>) -> Result<usize, Response> {
        match value {
            None | Some("") => Ok(0),
            Some(text) => text
                .parse()
                .map_err(|_| self.bad(&format!("bad page `{text}`: give a page number from 0"))),
        }
    }

    fn batch_id(&self, text: &str) -> Result<BatchId, Response> {
        text.parse().map_err(|error| self.bad(&format!("bad batch id `{text}`: {error}")))
    }

    fn job_id(&self, text: &str) -> Result<JobId, Response> {
        text.parse().map_err(|error| self.bad(&format!("bad job id `{text}`: {error}")))
    }

    /// Checks a POST's origin and token.
    fn check_post(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
        let token = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| access::form_token(body));
        access::check_post(headers, &self.host, token, &self.inner.csrf, &self.inner.settings)
            .map_err(|(status, message)| self.fail(status, &message))
    }

    /// After an action: JSON `value`, or back to the page the form was on
    /// (`fallback` when that is unknown or gone).
    fn done(
        &self,
        headers: &HeaderMap,
        fallback: &str,
        back: bool,
        value: serde_json::Value,
    ) -> Response {
        if self.json {
            return Json(value).into_response();
        }
        let referer = headers.get(REFERER).and_then(|v| v.to_str().ok()).and_then(|r| {
            let path_at = r.find("://").map(|i| i + 3)?;
            let path = &r[path_at..][r[path_at..].find('/')?..];
            path.starts_with(&self.base).then(|| path.to_owned())
        });
        let target = match referer {
            Some(path) if back => path,
            _ => format!("{}{fallback}", self.base),
        };
        (StatusCode::SEE_OTHER, [(LOCATION, target)]).into_response()
    }
}

#[derive(Deserialize)]
struct Paging {
    page: Option<String>,
}

async fn overview(ctx: Ctx) -> Result<Response, Response> {
    let view = ctx.inner.overview().await.map_err(|e| ctx.backend(&e))?;
    if ctx.json {
        return Ok(Json(view).into_response());
    }
    Ok(Html(pages::overview(&ctx.frame(Some(view.failed_total)), &view)).into_response())
}

async fn queues(ctx: Ctx, Query(paging): Query<Paging>) -> Result<Response, Response> {
    let page = ctx.page(paging.page.as_deref())?;
    let size = ctx.inner.settings.page_size.max(1);
    let offset = page.saturating_mul(size);
    let (items, total) =
        ctx.inner.admin.queues_page(offset, size).await.map_err(|e| ctx.backend(&e))?;
    let more = (offset.saturating_add(items.len()) as u64) < total;
    let view = Page::new(items, total, more.then(|| (page + 1).to_string()));
    if ctx.json {
        return Ok(Json(view).into_response());
    }
    let total = ctx.failed_total().await?;
    Ok(Html(pages::queues(&ctx.frame(Some(total)), &view)).into_response())
}

async fn workers(ctx: Ctx, Query(paging): Query<Paging>) -> Result<Response, Response> {
    let page = ctx.page(paging.page.as_deref())?;
    let all = ctx.inner.workers().await.map_err(|e| ctx.backend(&e))?;
    let all = all.into_iter().map(|(report, _)| report).collect();
    let view = Page::of(all, page, ctx.inner.settings.page_size);
    if ctx.json {
        return Ok(Json(view).into_response());
    }
    let total = ctx.failed_total().await?;
    Ok(Html(pages::workers(&ctx.frame(Some(total)), &view)).into_response())
}

async fn recent(ctx: Ctx, Query(paging): Query<Paging>) -> Result<Response, Response> {
    let page = ctx.page(paging.page.as_deref())?;
    let view = ctx.inner.recent(page);
    if ctx.json {
        return Ok(Json(view).into_response());
    }
    let total = ctx.failed_total().await?;
    let frame = ctx.frame(Some(total));
    Ok(Html(pages::recent(&frame, &view, ctx.inner.has_workers())).into_response())
}

#[derive(Deserialize)]
struct FailedParams {
    queue: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

async fn failed(ctx: Ctx, Query(params): Query<FailedParams>) -> Result<Response, Response> {
    let limit = match params.limit.as_deref() {
        None | Some("") => ctx.inner.settings.page_size,
        Some(text) => match text.parse::<usize>() {
            Ok(limit @ 1..=1000) => limit,
            _ => return Err(ctx.bad(&format!("bad limit `{text}`: give 1 to 1000"))),
        },
    };
    let queue = params.queue.filter(|q| !q.is_empty());
    let mut query = FailedQuery::new().limit(limit + 1);
    if let Some(queue) = &queue {
        query = query.queue(queue.clone());
    }
    if let Some(after) = params.after.as_deref().filter(|a| !a.is_empty()) {
        query = query.after(ctx.job_id(after)?);
    }
    let admin = &ctx.inner.admin;
    let mut items = admin.failed(&query).await.map_err(|e| ctx.backend(&e))?;
    let next = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|job| job.id.to_string())
    });
    let total = admin.failed_count(queue.as_deref()).await.map_err(|e| ctx.backend(&e))?;
    let view = Page::new(items, total, next.flatten());
    if ctx.json {
        return Ok(Json(view).into_response());
    }
    let all = if queue.is_some() { ctx.failed_total().await? } else { total };
    Ok(Html(pages::failed(&ctx.frame(Some(all)), &view, queue.as_deref())).into_response())
}

async fn failed_job(ctx: Ctx, Path(id): Path<String>) -> Result<Response, Response> {
    let id = ctx.job_id(&id)?;
    let job = ctx.inner.admin.show(id).await.map_err(|e| ctx.backend(&e))?;
    let payload = visible_payload(&job.envelope);
    if ctx.json {
        return Ok(Json(conc_bus_cli::failed_job_json(&job)).into_response());
    }
    let total = ctx.failed_total().await?;
    Ok(Html(pages::failed_job(&ctx.frame(Some(total)), &job, payload)).into_response())
}

async fn metrics(ctx: Ctx) -> Result<Response, Response> {
    let samples = ctx.inner.samples();
    let every = ctx.inner.settings.sample_every;
    if ctx.json {
        let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        return Ok(Json(json!({ "every_ms": every_ms, "samples": samples })).into_response());
    }
    let total = ctx.failed_total().await?;
    Ok(Html(pages::metrics(&ctx.frame(Some(total)), &samples, every)).into_response())
}

async fn pause(
    ctx: Ctx,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ctx.check_post(&headers, &body)?;
    ctx.inner.admin.pause(&name).await.map_err(|e| ctx.backend(&e))?;
    Ok(ctx.done(&headers, "/queues", true, json!({ "queue": name, "paused": true })))
}

async fn resume(
    ctx: Ctx,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ctx.check_post(&headers, &body)?;
    ctx.inner.admin.resume(&name).await.map_err(|e| ctx.backend(&e))?;
    Ok(ctx.done(&headers, "/queues", true, json!({ "queue": name, "paused": false })))
}

async fn retry(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ctx.check_post(&headers, &body)?;
    let id = ctx.job_id(&id)?;
    let retried =
        ctx.inner.admin.retry(&RetryFailed::Ids(vec![id])).await.map_err(|e| ctx.backend(&e))?;
    Ok(ctx.done(&headers, "/failed", false, json!({ "retried": retried })))
}

#[derive(Deserialize)]
struct Scope {
    queue: Option<String>,
}

/// Retries every failed job, or every failed job of `?queue=`.
async fn retry_all(
    ctx: Ctx,
    Query(scope): Query<Scope>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ctx.check_post(&headers, &body)?;
    let which = match scope.queue.filter(|q| !q.is_empty()) {
        Some(queue) => RetryFailed::Queue(queue),
        None => RetryFailed::All,
    };
    let retried = ctx.inner.admin.retry(&which).await.map_err(|e| ctx.backend(&e))?;
    Ok(ctx.done(&headers, "/failed", false, json!({ "retried": retried })))
}

async fn forget(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ctx.check_post(&headers, &body)?;
    let id = ctx.job_id(&id)?;
    ctx.inner.admin.forget(id).await.map_err(|e| ctx.backend(&e))?;
    Ok(ctx.done(&headers, "/failed", false, json!({ "forgotten": id })))
}

#[derive(Deserialize)]
struct BatchParams {
    state: Option<String>,
    name: Option<String>,
    before: Option<String>,
}

/// A page of batches, newest first: `?state=` (pending, finished, cancelled),
/// `?name=` (part of the name), `?before=` (the last id of the previous page).
async fn batches(ctx: Ctx, Query(params): Query<BatchParams>) -> Result<Response, Response> {
    let limit = ctx.inner.settings.page_size;
    let mut query = BatchQuery::new().limit(limit + 1);
    if let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) {
        query.state = Some(state.parse::<BatchState>().map_err(|error| ctx.bad(&error))?);
    }
    query.name = params.name.filter(|n| !n.is_empty());
    if let Some(before) = params.before.as_deref().filter(|b| !b.is_empty()) {
        query.before = Some(ctx.batch_id(before)?);
    }
    let mut items = ctx.inner.admin.batches(&query).await.map_err(|e| ctx.backend(&e))?;
    let next = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|b| b.info.id.to_string())
    });
    let view = BatchList { items, next: next.flatten() };
    if ctx.json {
        return Ok(Json(view).into_response());
    }
    let total = ctx.failed_total().await?;
    let html =
        batch_pages::list(&ctx.frame(Some(total)), &view, query.state, query.name.as_deref());
    Ok(Html(html).into_response())
}

#[derive(Deserialize)]
struct MemberParams {
    offset: Option<String>,
}

/// One batch with a page of its members (`?offset=`).
async fn batch(
    ctx: Ctx,
    Path(id): Path<String>,
    Query(params): Query<MemberParams>,
) -> Result<Response, Response> {
    let id = ctx.batch_id(&id)?;
    let offset = match params.offset.as_deref() {
        None | Some("") => 0,
        Some(text) => text
            .parse()
            .map_err(|_| ctx.bad(&format!("bad offset `{text}`: give a member count from 0")))?,
    };
    let size = ctx.inner.settings.page_size;
    let detail = ctx.inner.admin.batch(id, offset, size).await.map_err(|e| ctx.backend(&e))?;
    let shown = offset.saturating_add(detail.members.len());
    let next =
        (u64::try_from(shown).unwrap_or(u64::MAX) < detail.batch.info.total).then_some(shown);
    if ctx.json {
        let mut value = serde_json::to_value(&detail).map_err(|e| ctx.bad(&e.to_string()))?;
        value["next_offset"] = json!(next);
        return Ok(Json(value).into_response());
    }
    let total = ctx.failed_total().await?;
    Ok(Html(batch_pages::batch(&ctx.frame(Some(total)), &detail, next)).into_response())
}

async fn cancel_batch(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ctx.check_post(&headers, &body)?;
    let id = ctx.batch_id(&id)?;
    let cancelled = ctx.inner.admin.cancel_batch(id).await.map_err(|e| ctx.backend(&e))?;
    Ok(ctx.done(&headers, "/batches", true, json!({ "batch": id, "cancelled": cancelled })))
}
