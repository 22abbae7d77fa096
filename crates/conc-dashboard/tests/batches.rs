//! The batch pages over HTTP requests (no socket): the list with progress
//! bars, filtered and paged; a batch's page with its callbacks and members,
//! a failed member linking to its failed job; the cancel action behind the
//! CSRF token; the overview's card; a backend that keeps no batches.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use conc_bus::batch::{BatchId, PendingBatch};
use conc_bus::{AnyBackend, Job, JobContext, JobError, JobHandlers, MemoryQueue, Queue, Worker};
use conc_dashboard::Dashboard;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::ServiceExt;

#[derive(Serialize, Deserialize)]
struct Row {
    n: u32,
}
impl Job for Row {
    const NAME: &'static str = "row";
}

#[derive(Serialize, Deserialize)]
struct Done;
impl Job for Done {
    const NAME: &'static str = "done";
}

const LOCAL: &str = "127.0.0.1:40000";

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn get(path: &str) -> Request<Body> {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(LOCAL.parse::<SocketAddr>().unwrap()));
    request
}

fn post(path: &str, body: String) -> Request<Body> {
    let mut request = Request::post(path)
        .header("host", LOCAL)
        .header("origin", "http://127.0.0.1:40000")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(LOCAL.parse::<SocketAddr>().unwrap()));
    request
}

async fn json(app: &Router, path: &str) -> Value {
    let (status, body) = send(app, get(path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `rows` (row 2 fails, failures allowed; finished), then `import <b>`
/// (pending on the `held` queue no worker takes) and three small pending ones.
async fn with_batches(backend: &MemoryQueue) -> (BatchId, BatchId) {
    let queue = Queue::new(backend.clone());
    let rows = PendingBatch::new().name("rows").allow_failures(true).add(Row { n: 1 });
    let rows = rows.add(Row { n: 2 }).add(Row { n: 3 }).then(Done).finally(Done);
    let finished = queue.dispatch_batch(rows).await.unwrap();
    let held = PendingBatch::new().name("import <b>").on_queue("held").add(Row { n: 9 });
    let pending = queue.dispatch_batch(held.progress(Done)).await.unwrap();
    for n in 0..3 {
        let small = PendingBatch::new().name(format!("small {n}")).on_queue("held");
        queue.dispatch_batch(small.add(Row { n })).await.unwrap();
    }
    let handlers = JobHandlers::new()
        .handle(|row: Row, _: JobContext| async move {
            if row.n == 2 { Err(JobError::fatal("row 2 is malformed")) } else { Ok(()) }
        })
        .handle(|_: Done, _: JobContext| async { Ok::<(), JobError>(()) });
    Worker::builder(backend.clone(), handlers)
        .stop_when_empty(true)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    (finished, pending)
}

#[tokio::test]
async fn batches_are_listed_shown_and_cancelled() {
    let backend = MemoryQueue::new();
    let (finished, pending) = with_batches(&backend).await;
    let dashboard = Dashboard::builder(AnyBackend::with_workflows(backend.clone()))
        .sample_every(Duration::ZERO)
        .page_size(2)
        .build()
        .unwrap();
    let token = dashboard.csrf_token().to_owned();
    let app = dashboard.router();

    // The list: newest first, a progress bar each, escaped names, paged.
    let (status, html) = send(&app, get("/batches")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("small 2") && html.contains("small 1"), "{html}");
    assert!(html.contains("id=\"progress-"), "{html}");
    assert!(html.contains("id=next-page"), "{html}");
    let page = json(&app, "/api/batches").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_owned();
    let page = json(&app, &format!("/api/batches?before={next}")).await;
    let names: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["small 0", "import <b>"]);
    let done = json(&app, "/api/batches?state=finished").await;
    assert_eq!(done["items"][0]["id"], finished.to_string());
    assert_eq!((done["items"][0]["progress"].as_u64(), done["next"].as_str()), (Some(100), None));
    let (_, html) = send(&app, get("/batches?name=import")).await;
    assert!(html.contains("import &lt;b&gt;") && !html.contains("import <b>"), "{html}");
    assert!(!html.contains("small 0"), "{html}");
    let (status, _) = send(&app, get("/batches?state=done")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A finished batch: callbacks fired, the failed member links to its job.
    let (status, html) = send(&app, get(&format!("/batches/{finished}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("3 total: 0 pending, 2 succeeded, 1 failed"), "{html}");
    assert!(!html.contains("id=\"cancel-batch\""), "a finished batch has no cancel button");
    let detail = json(&app, &format!("/api/batches/{finished}")).await;
    let failed =
        detail["members"].as_array().unwrap().iter().find(|m| m["outcome"] == "Failed").unwrap();
    let failed_id = failed["id"].as_str().unwrap();
    assert!(html.contains(&format!("href=\"/failed/{failed_id}\"")), "{html}");
    assert!(html.contains("row 2 is malformed"), "{html}");
    assert_eq!(detail["next_offset"], 2, "page size 2: one member left");
    assert_eq!(detail["callbacks"][0]["kind"], "Then");
    assert_eq!(detail["callbacks"][0]["dispatched"], 0, "a member failed: no then");
    assert_eq!(detail["callbacks"][1]["dispatched"], 1, "finally fired");
    let rest = json(&app, &format!("/api/batches/{finished}?offset=2")).await;
    assert_eq!(
        (rest["members"].as_array().unwrap().len(), rest["next_offset"].is_null()),
        (1, true)
    );
    // An offset past every member (the largest there is) is an empty page, not a panic.
    let (status, html) =
        send(&app, get(&format!("/batches/{finished}?offset={}", usize::MAX))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("of 3"), "{html}");

    // The overview counts pending batches and links to them.
    let (_, html) = send(&app, get("/")).await;
    assert!(html.contains("id=card-batches href=\"/batches?state=pending\"><b>4</b>"), "{html}");

    // Cancel: refused without the token, then done, with a redirect back.
    let (_, html) = send(&app, get(&format!("/batches/{pending}"))).await;
    assert!(html.contains("id=\"cancel-batch\""), "{html}");
    let (status, _) = send(&app, post(&format!("/batches/{pending}/cancel"), String::new())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let queue = Queue::new(backend.clone());
    assert_eq!(queue.size("held").await.unwrap().ready, 4, "a refused cancel changes nothing");
    let cancel = post(&format!("/batches/{pending}/cancel"), format!("csrf={token}"));
    assert_eq!(send(&app, cancel).await.0, StatusCode::SEE_OTHER);
    assert_eq!(queue.size("held").await.unwrap().ready, 3);
    let detail = json(&app, &format!("/api/batches/{pending}")).await;
    assert_eq!(
        (detail["state"].as_str(), detail["cancelled"].as_u64()),
        (Some("cancelled"), Some(1))
    );
    let mut api = post(&format!("/api/batches/{pending}/cancel"), String::new());
    api.headers_mut().insert("x-csrf-token", token.parse().unwrap());
    let (status, body) = send(&app, api).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["cancelled"], false);

    let unknown = BatchId::new();
    assert_eq!(send(&app, get(&format!("/batches/{unknown}"))).await.0, StatusCode::NOT_FOUND);
    let cancel = post(&format!("/batches/{unknown}/cancel"), format!("csrf={token}"));
    assert_eq!(send(&app, cancel).await.0, StatusCode::NOT_FOUND);
    assert_eq!(send(&app, get("/batches/nope")).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_backend_without_batches_says_so() {
    let dashboard = Dashboard::builder(AnyBackend::new(MemoryQueue::new()))
        .sample_every(Duration::ZERO)
        .build()
        .unwrap();
    let app = dashboard.router();
    let (status, body) = send(&app, get("/api/batches")).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(body.contains("keeps no batches"), "{body}");
    let (status, html) = send(&app, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("card-batches"), "no batch card without batches");
}
