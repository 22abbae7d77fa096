//! The dashboard's routes over HTTP requests (no socket): access, CSRF,
//! content negotiation, paging, escaping, actions, nesting.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use conc_bus::{AnyBackend, FailedQuery, Job, JobError, JobHandlers, MemoryQueue, Queue, Worker};
use conc_dashboard::{Dashboard, DashboardBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::ServiceExt;

#[derive(Serialize, Deserialize)]
struct Mail {
    to: String,
}
impl Job for Mail {
    const NAME: &'static str = "mail";
}

const LOCAL: &str = "127.0.0.1:40000";

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn get(path: &str, from: &str) -> Request<Body> {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(from.parse::<SocketAddr>().unwrap()));
    request
}

fn post(path: &str, body: String, origin: Option<&str>) -> Request<Body> {
    let mut builder = Request::post(path)
        .header("host", LOCAL)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    let mut request = builder.body(Body::from(body)).unwrap();
    request.extensions_mut().insert(ConnectInfo(LOCAL.parse::<SocketAddr>().unwrap()));
    request
}

fn builder(backend: &MemoryQueue) -> DashboardBuilder {
    Dashboard::builder(AnyBackend::new(backend.clone())).sample_every(Duration::ZERO)
}

/// Two failed jobs in `mail`, one with markup in its payload and error.
async fn with_failed_jobs(backend: &MemoryQueue) {
    let queue = Queue::new(backend.clone());
    for to in ["<script>alert(1)</script>", "ada@example.com"] {
        queue.dispatch(Mail { to: to.to_owned() }).on_queue("mail").max_attempts(1).await.unwrap();
    }
    let handlers = JobHandlers::new().handle(|_: Mail, _| async {
        Err::<(), _>(JobError::fatal(std::io::Error::other("smtp <b>refused</b>")))
    });
    let worker = Worker::builder(backend.clone(), handlers)
        .queues(["mail"])
        .stop_when_empty(true)
        .build()
        .unwrap();
    worker.run().await.unwrap();
    assert_eq!(queue.failed_count(None).await.unwrap(), 2);
}

#[tokio::test]
async fn only_loopback_clients_and_the_gate_get_in() {
    let backend = MemoryQueue::new();
    let app = builder(&backend).build().unwrap().router();
    assert_eq!(send(&app, get("/", LOCAL)).await.0, StatusCode::OK);
    assert_eq!(send(&app, get("/", "[::1]:5")).await.0, StatusCode::OK);
    let (status, body) = send(&app, get("/", "192.0.2.7:5")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("192.0.2.7"), "{body}");
    // A rebound name reaches the dashboard from loopback, with its own Host.
    let mut rebound = get("/api/overview", LOCAL);
    rebound.headers_mut().insert("host", "evil.example:9090".parse().unwrap());
    let (status, body) = send(&app, rebound).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("DNS rebinding"), "{body}");
    let unknown = Request::get("/api/overview").body(Body::empty()).unwrap();
    let (status, body) = send(&app, unknown).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("connect_info"), "{body}");

    let gated = builder(&backend)
        .allow_remote(true)
        .gate(|request| request.headers.get("x-admin").is_some_and(|v| v == "yes"))
        .build()
        .unwrap()
        .router();
    assert_eq!(send(&gated, get("/", "192.0.2.7:5")).await.0, StatusCode::FORBIDDEN);
    let mut admitted = get("/", "192.0.2.7:5");
    admitted.headers_mut().insert("x-admin", "yes".parse().unwrap());
    assert_eq!(send(&gated, admitted).await.0, StatusCode::OK);
}

#[tokio::test]
async fn pages_escape_what_jobs_carry_and_the_api_returns_json() {
    let backend = MemoryQueue::new();
    with_failed_jobs(&backend).await;
    let app = builder(&backend).build().unwrap().router();
    let (status, html) = send(&app, get("/failed", LOCAL)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("smtp &lt;b&gt;refused&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>refused"), "{html}");
    assert!(html.contains("<span id=failed-count>2</span>"), "{html}");

    let failed = Queue::new(backend.clone()).failed(&FailedQuery::new()).await.unwrap();
    let id = failed[0].envelope.id;
    let (_, detail) = send(&app, get(&format!("/failed/{id}"), LOCAL)).await;
    assert!(detail.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{detail}");
    assert!(!detail.contains("<script>alert"), "{detail}");

    let (status, json) = send(&app, get("/api/failed?limit=1", LOCAL)).await;
    assert_eq!(status, StatusCode::OK);
    let page: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().unwrap().to_owned();
    let (_, json) = send(&app, get(&format!("/api/failed?limit=1&after={next}"), LOCAL)).await;
    let second: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null(), "the last page has no next: {second}");

    let mut accept = get("/queues", LOCAL);
    accept.headers_mut().insert("accept", "application/json".parse().unwrap());
    let (_, json) = send(&app, accept).await;
    let queues: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(queues["items"][0]["name"], "mail");
    assert_eq!(queues["items"][0]["failed"], 2);

    let (status, body) = send(&app, get("/api/failed?after=nope", LOCAL)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("nope"), "{body}");
    let (status, _) = send(&app, get("/api/failed/01KA5G8J6E1V9Y1X3W6Z4T0QNM", LOCAL)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn actions_need_the_token_and_the_same_origin() {
    let backend = MemoryQueue::new();
    with_failed_jobs(&backend).await;
    let dashboard = builder(&backend).build().unwrap();
    let token = dashboard.csrf_token().to_owned();
    let app = dashboard.router();
    let origin = Some("http://127.0.0.1:40000");

    let (status, _) = send(&app, post("/queues/mail/pause", String::new(), origin)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no token");
    let evil = Some("http://evil.example");
    let (status, _) = send(&app, post("/queues/mail/pause", format!("csrf={token}"), evil)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another origin");
    let queue = Queue::new(backend.clone());
    assert!(!queue.size("mail").await.unwrap().paused, "refused actions change nothing");

    let (status, _) = send(&app, post("/queues/mail/pause", format!("csrf={token}"), origin)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(queue.size("mail").await.unwrap().paused);

    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    let (first, second) = (failed[0].envelope.id, failed[1].envelope.id);
    let mut api = post(&format!("/api/failed/{first}/retry"), String::new(), None);
    api.headers_mut().insert("x-csrf-token", token.parse().unwrap());
    let (status, json) = send(&app, api).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert!(json.contains(&first.to_string()), "{json}");
    assert_eq!(queue.size("mail").await.unwrap().ready, 1);

    let forget = post(&format!("/failed/{second}/forget"), format!("a=1&csrf={token}"), origin);
    assert_eq!(send(&app, forget).await.0, StatusCode::SEE_OTHER);
    assert_eq!(queue.failed_count(None).await.unwrap(), 0);
    let again = post(&format!("/failed/{second}/forget"), format!("csrf={token}"), origin);
    assert_eq!(send(&app, again).await.0, StatusCode::NOT_FOUND);

    // Retry all, of one queue.
    queue.resume("mail").await.unwrap();
    queue.clear("mail").await.unwrap();
    with_failed_jobs(&backend).await;
    let (_, html) = send(&app, get("/failed?queue=mail", LOCAL)).await;
    assert!(html.contains("action=\"/failed/retry?queue=mail\""), "{html}");
    assert!(html.contains("retry all 2 of this queue"), "{html}");
    let other = post("/failed/retry?queue=other", format!("csrf={token}"), origin);
    assert_eq!(send(&app, other).await.0, StatusCode::SEE_OTHER);
    assert_eq!(queue.failed_count(None).await.unwrap(), 2, "another queue's retry left them");
    let all = post("/failed/retry?queue=mail", format!("csrf={token}"), origin);
    assert_eq!(send(&app, all).await.0, StatusCode::SEE_OTHER);
    assert_eq!(queue.failed_count(None).await.unwrap(), 0);
}

#[tokio::test]
async fn links_follow_the_prefix_it_is_nested_under_and_lists_are_paged() {
    let backend = MemoryQueue::new();
    let queue = Queue::new(backend.clone());
    for name in ["a", "b", "c"] {
        queue.dispatch(Mail { to: name.to_owned() }).on_queue(name).await.unwrap();
    }
    let dashboard = builder(&backend).page_size(2).build().unwrap();
    let app = Router::new().nest("/ops/jobs", dashboard.router());
    let (status, html) = send(&app, get("/ops/jobs/queues", LOCAL)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("href=\"/ops/jobs/failed\""), "{html}");
    assert!(html.contains("href=\"/ops/jobs/queues?page=1\""), "{html}");
    assert!(html.contains("action=\"/ops/jobs/queues/a/pause\""), "{html}");
    assert!(!html.contains("queue-c"), "page 0 has two queues: {html}");
    let (_, html) = send(&app, get("/ops/jobs/queues?page=1", LOCAL)).await;
    assert!(html.contains("queue-c") && !html.contains("queue-a"), "{html}");
    assert_eq!(send(&app, get("/ops/jobs", LOCAL)).await.0, StatusCode::OK);
    let (status, body) = send(&app, get("/ops/jobs/queues?page=x", LOCAL)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("bad page `x`"), "{body}");
}

#[tokio::test]
async fn attached_workers_show_their_state_and_recent_jobs() {
    let backend = MemoryQueue::new();
    let queue = Queue::new(backend.clone());
    queue.push(Mail { to: "ada@example.com".to_owned() }).await.unwrap();
    let handlers = JobHandlers::new().handle(|_: Mail, _| async { Ok::<(), JobError>(()) });
    let worker = Worker::builder(backend.clone(), handlers)
        .name("mailer")
        .stop_when_empty(true)
        .build()
        .unwrap();
    let dashboard = builder(&backend).worker(&worker).build().unwrap();
    worker.run().await.unwrap();
    let app = dashboard.router();
    let overview = dashboard.overview().await.unwrap();
    assert_eq!(overview.processed_per_minute, Some(1));
    assert_eq!(overview.workers.items[0].name, "mailer");
    assert_eq!(overview.workers.items[0].state, "stopped: its queues were empty");
    assert_eq!(overview.runtimes[0].key, "mail");

    // The drain task records the event; poll the API until it shows.
    let mut recent = Value::Null;
    for _ in 0..1000 {
        let (_, json) = send(&app, get("/api/recent", LOCAL)).await;
        recent = serde_json::from_str(&json).unwrap();
        if recent["total"] == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(recent["items"][0]["outcome"], "processed", "{recent}");
    assert_eq!(recent["items"][0]["worker"], "mailer");

    dashboard.sample_now().await.unwrap();
    let samples = dashboard.samples();
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].processed_per_minute, 1);
    let (_, html) = send(&app, get("/metrics", LOCAL)).await;
    assert!(html.contains("id=\"chart-throughput\""), "{html}");
}

#[test]
fn settings_out_of_range_are_refused_by_name() {
    let backend = MemoryQueue::new();
    let error = builder(&backend).page_size(0).build().unwrap_err();
    assert!(error.to_string().contains("page_size"), "{error}");
    let error = builder(&backend).refresh(Duration::from_millis(1500)).build().unwrap_err();
    assert!(error.to_string().contains("refresh"), "{error}");
    let error = builder(&backend).trusted_origin("ops.example/").build().unwrap_err();
    assert!(error.to_string().contains("trusted_origin"), "{error}");
}

#[test]
fn the_dashboard_is_send_and_sync() {
    static_assertions::assert_impl_all!(Dashboard: Send, Sync, Clone);
}

#[tokio::test]
async fn serves_a_redis_queue_opened_by_url() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = conc_bus_cli::connect(&redis.url()).await.unwrap();
    Queue::new(backend.clone())
        .dispatch(Mail { to: "ada@example.com".to_owned() })
        .on_queue("mail")
        .await
        .unwrap();
    let app =
        Dashboard::builder(backend.clone()).sample_every(Duration::ZERO).build().unwrap().router();
    let (status, json) = send(&app, get("/api/queues", LOCAL)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let queues: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (queues["items"][0]["name"].as_str(), queues["items"][0]["ready"].as_u64()),
        (Some("mail"), Some(1))
    );
    // Its batches are listed on the batch pages.
    let batch = conc_bus::batch::PendingBatch::new()
        .name("digest")
        .add(Mail { to: "grace@example.com".to_owned() });
    let id = Queue::new(backend.clone()).dispatch_batch(batch).await.unwrap();
    let (status, json) = send(&app, get("/api/batches", LOCAL)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let batches: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(batches["items"][0]["id"], id.to_string(), "{json}");
    assert_eq!(batches["items"][0]["name"], "digest", "{json}");
}

#[tokio::test(start_paused = true)]
async fn workers_of_other_processes_show_from_their_heartbeats() {
    let backend = MemoryQueue::builder().clock(conc_bus::testing::PausedTime).build().unwrap();
    let dashboard = builder(&backend).build().unwrap();
    let app = dashboard.router();
    let (_, html) = send(&app, get("/", LOCAL)).await;
    assert!(html.contains("No worker has recorded a heartbeat"), "{html}");
    let (_, html) = send(&app, get("/recent", LOCAL)).await;
    assert!(html.contains("No worker is attached to this dashboard"), "{html}");

    // A worker the dashboard does not know of: another process's, as far as
    // it can tell, sharing the backend.
    let queue = Queue::new(backend.clone());
    let handlers = JobHandlers::new().handle(|_: Mail, _| async { Ok::<(), JobError>(()) });
    let elsewhere = Worker::builder(backend.clone(), handlers)
        .name("mailer")
        .queues(["mail"])
        .concurrency(4)
        .heartbeat_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    elsewhere.start().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for n in 0..10 {
        queue.dispatch(Mail { to: format!("{n}@example.com") }).on_queue("mail").await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    let overview = dashboard.overview().await.unwrap();
    assert_eq!(overview.workers.total, 1);
    let report = &overview.workers.items[0];
    assert_eq!((report.name.as_str(), report.state.as_str()), ("mailer", "running"));
    assert_eq!((report.processed, report.concurrency, report.attached), (10, 4, false));
    assert_eq!(report.pid, std::process::id());
    // Ten jobs between two beats five seconds apart: 120 a minute.
    assert_eq!(report.processed_last_minute, 120);
    assert_eq!(overview.processed_per_minute, Some(120));
    let (_, html) = send(&app, get("/workers", LOCAL)).await;
    assert!(html.contains("id=\"worker-mailer\"") && html.contains("0/4"), "{html}");
    let (_, json) = send(&app, get("/api/workers", LOCAL)).await;
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["items"][0]["id"], elsewhere.id());

    // Attached too, it is listed once, with its own metrics.
    let both = builder(&backend).worker(&elsewhere).build().unwrap();
    let overview = both.overview().await.unwrap();
    assert_eq!(overview.workers.total, 1);
    assert!(overview.workers.items[0].attached);
    assert_eq!(overview.workers.items[0].host, overview.workers.items[0].host.trim());

    elsewhere.stop(Duration::from_secs(1));
    elsewhere.stopped().await;
    assert_eq!(dashboard.overview().await.unwrap().workers.total, 0, "gone at a graceful stop");
}
