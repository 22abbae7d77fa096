//! The Redis backend: the conformance suite, and what is particular to Redis
//! (the key layout and its hash tags, the fence key, server-side expiry,
//! funnels in one script, Redis Cluster slots, several processes on one
//! server).
//!
//! Every test starts its own `redis-server` on a free loopback port through
//! `conc-test-support` and skips when the binary is missing, unless
//! `CONC_REQUIRE_SERVICES=1`.

mod conformance;

use std::collections::{BTreeSet, HashSet};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_lock::{
    Acquisition, LockBackend, LockError, LockStore, Owner, RedisBackend, RedisBackendBuilder,
    RedisKeys,
};
use conc_test_support::RedisServer;
use redis::aio::MultiplexedConnection;

conformance::suite!(|| async {
    let redis = conc_test_support::require_redis()?;
    let backend = RedisBackend::connect(&redis.url()).await.unwrap();
    Some((LockStore::new(backend), Box::new(redis) as conformance::KeepAlive))
});

static_assertions::assert_impl_all!(RedisBackend: Send, Sync, Clone, std::fmt::Debug);
static_assertions::assert_impl_all!(RedisBackendBuilder: Send, Sync, Clone, std::fmt::Debug);
static_assertions::assert_impl_all!(RedisKeys: Send, Sync, Clone, std::fmt::Debug);

const LONG: Duration = Duration::from_secs(30);

/// A server, a store on it, and a raw connection to look at the keys.
struct Env {
    redis: RedisServer,
    store: LockStore<RedisBackend>,
    raw: MultiplexedConnection,
}

async fn env() -> Option<Env> {
    let redis = conc_test_support::require_redis()?;
    let store = LockStore::new(RedisBackend::connect(&redis.url()).await.unwrap());
    let raw = raw(&redis).await;
    Some(Env { redis, store, raw })
}

async fn raw(redis: &RedisServer) -> MultiplexedConnection {
    let client = redis::Client::open(redis.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn query<T: redis::FromRedisValue>(raw: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(raw).await.unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

async fn all_keys(raw: &mut MultiplexedConnection) -> BTreeSet<String> {
    query::<Vec<String>>(raw, &["KEYS", "*"]).await.into_iter().collect()
}

/// The hash tag Redis Cluster hashes for `key`: the text between the first
/// `{` and the first `}` after it, when not empty; else the whole key.
fn cluster_tag(key: &str) -> &str {
    let Some(open) = key.find('{') else { return key };
    match key[open + 1..].find('}') {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    }
}

/// How many times the server has run `EVALSHA` so far.
async fn evalsha_calls(raw: &mut MultiplexedConnection) -> u64 {
    let info: String = query(raw, &["INFO", "commandstats"]).await;
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_carry_the_name_as_hash_tag() {
    let Some(Env { redis: _redis, store, mut raw }) = env().await else { return };
    let lock = store.lock("orders:42", LONG).unwrap();
    let guard = lock.get().await.unwrap().unwrap();

    let keys = store.backend().prepare("orders:42");
    assert_eq!(keys.lock_key(), "conc:lock:{orders:42}");
    assert_eq!(keys.fence_key(), "conc:lock:{orders:42}:fence");
    assert_eq!(keys.hash_tag(), "orders:42");
    assert_eq!(
        all_keys(&mut raw).await,
        BTreeSet::from([
            "conc:lock:{orders:42}".to_owned(),
            "conc:lock:{orders:42}:fence".to_owned()
        ])
    );
    assert_eq!(cluster_tag(keys.lock_key()), cluster_tag(keys.fence_key()));

    let owner: String = query(&mut raw, &["GET", keys.lock_key()]).await;
    assert_eq!(owner, lock.owner().as_str());
    let fence: u64 = query(&mut raw, &["GET", keys.fence_key()]).await;
    assert_eq!(fence, guard.fence().get());
    let pttl: i64 = query(&mut raw, &["PTTL", keys.lock_key()]).await;
    assert!(pttl > 0 && pttl <= 30_000, "the hold expires on the server: PTTL {pttl}");
    guard.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_key_has_no_ttl_and_survives_release() {
    let Some(Env { redis: _redis, store, mut raw }) = env().await else { return };
    let keys = store.backend().prepare("fenced");
    let lock = store.lock("fenced", LONG).unwrap();

    let first = lock.get().await.unwrap().unwrap();
    let pttl: i64 = query(&mut raw, &["PTTL", keys.fence_key()]).await;
    assert_eq!(pttl, -1, "the fence key never expires");
    first.release().await.unwrap();

    let exists: i64 = query(&mut raw, &["EXISTS", keys.lock_key()]).await;
    assert_eq!(exists, 0, "release deletes the lock key");
    let fence: u64 = query(&mut raw, &["GET", keys.fence_key()]).await;
    assert_eq!(fence, 1, "and keeps the fence");

    let second = lock.get().await.unwrap().unwrap();
    assert_eq!(second.fence().get(), 2);
    assert!(store.force_release("fenced").await.unwrap());
    let fence: u64 = query(&mut raw, &["GET", keys.fence_key()]).await;
    assert_eq!(fence, 2, "force release keeps the fence too");
    assert!(!store.force_release("fenced").await.unwrap(), "nothing left to remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_ttl_expires_on_the_server() {
    let Some(Env { redis: _redis, store, mut raw }) = env().await else { return };
    let ttl = Duration::from_millis(200);
    let keys = store.backend().prepare("short");
    let first = store.lock("short", ttl).unwrap().get().await.unwrap().unwrap();
    let pttl: i64 = query(&mut raw, &["PTTL", keys.lock_key()]).await;
    assert!((0..=200).contains(&pttl), "PTTL {pttl}");

    tokio::time::sleep(ttl * 2).await;
    let exists: i64 = query(&mut raw, &["EXISTS", keys.lock_key()]).await;
    assert_eq!(exists, 0, "the server expired the hold");
    let second = store.lock("short", LONG).unwrap().get().await.unwrap().expect("free again");
    assert!(second.fence() > first.fence());
    assert!(matches!(first.release().await, Err(LockError::Lost { .. })));
    second.release().await.unwrap();
    let pttl: i64 = query(&mut raw, &["PTTL", keys.fence_key()]).await;
    assert_eq!(pttl, -1, "the fence outlives expiry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_reports_the_time_left_from_the_server() {
    let Some(Env { redis: _redis, store, mut raw }) = env().await else { return };
    let backend = store.backend();
    let keys = backend.prepare("busy");
    let ttl = Duration::from_secs(10);
    let holder = Owner::random();
    assert!(matches!(
        backend.acquire(&keys, &holder, ttl).await.unwrap(),
        Acquisition::Acquired(_)
    ));
    match backend.acquire(&keys, &Owner::random(), ttl).await.unwrap() {
        Acquisition::Busy { retry_after: Some(left) } => assert!(left <= ttl, "{left:?}"),
        other => panic!("expected busy with the time left, got {other:?}"),
    }

    // A key written without an expiry by something else: busy, time unknown.
    let keys = backend.prepare("foreign");
    let () = query(&mut raw, &["SET", keys.lock_key(), "someone"]).await;
    assert_eq!(
        backend.acquire(&keys, &Owner::random(), ttl).await.unwrap(),
        Acquisition::Busy { retry_after: None }
    );
    assert_eq!(store.owner_of("foreign").await.unwrap(), Some(Owner::new("someone").unwrap()));

    // A value that is no owner token is reported, not passed on.
    let () = query(&mut raw, &["SET", keys.lock_key(), ""]).await;
    assert!(matches!(store.owner_of("foreign").await, Err(LockError::Backend(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_braces_work_and_do_not_collide() {
    let Some(Env { redis: _redis, store, mut raw }) = env().await else { return };
    let names = [
        "plain",
        "{plain}",
        "%7Bplain%7D",
        "a{b}c",
        "a{b",
        "a%7Bb",
        "}{",
        "{}",
        "{",
        "}",
        "%",
        "%25",
        "a:fence",
        "x}:fence",
    ];
    let mut guards = Vec::new();
    for name in names {
        let guard = store.lock(name, LONG).unwrap().get().await.unwrap();
        guards.push(guard.unwrap_or_else(|| panic!("{name:?} collided with another name")));
    }

    let keys: Vec<Arc<RedisKeys>> =
        names.iter().map(|name| store.backend().prepare(name)).collect();
    let stored = all_keys(&mut raw).await;
    assert_eq!(stored.len(), names.len() * 2, "{stored:#?}");
    for (name, keys) in names.iter().zip(&keys) {
        assert!(stored.contains(keys.lock_key()) && stored.contains(keys.fence_key()), "{name:?}");
        assert!(!keys.hash_tag().contains(['{', '}']), "{name:?}: {keys:?}");
        assert_eq!(cluster_tag(keys.lock_key()), keys.hash_tag(), "{name:?}");
        assert_eq!(cluster_tag(keys.fence_key()), keys.hash_tag(), "{name:?}");
    }
    let tags: HashSet<&str> = keys.iter().map(|keys| keys.hash_tag()).collect();
    assert_eq!(tags.len(), names.len(), "every name has its own tag");
    assert_eq!(keys[3].lock_key(), "conc:lock:{a%7Bb%7Dc}");

    for (name, guard) in names.iter().zip(guards) {
        assert!(store.owner_of(*name).await.unwrap().is_some(), "{name:?}");
        guard.release().await.unwrap();
    }
    assert_eq!(all_keys(&mut raw).await.len(), names.len(), "only the fence keys remain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_slots_share_the_funnel_tag_and_take_one_script() {
    let Some(Env { redis: _redis, store, mut raw }) = env().await else { return };
    let funnel = store.funnel("ex{ports}", 3, LONG).unwrap();
    // Load the script, so every attempt below is exactly one EVALSHA.
    funnel.get().await.unwrap().unwrap().release().await.unwrap();

    let before = evalsha_calls(&mut raw).await;
    let mut permits = Vec::new();
    for _ in 0..3 {
        permits.push(funnel.get().await.unwrap().expect("a free slot"));
    }
    assert!(funnel.get().await.unwrap().is_none(), "all three slots are held");
    assert_eq!(evalsha_calls(&mut raw).await - before, 4, "one script per attempt");

    let slots: BTreeSet<u32> = permits.iter().map(conc_lock::FunnelPermit::slot).collect();
    assert_eq!(slots, BTreeSet::from([0, 1, 2]));
    let stored = all_keys(&mut raw).await;
    assert_eq!(stored.len(), 6, "three lock keys, three fence keys: {stored:#?}");
    for key in &stored {
        assert!(key.starts_with("conc:lock:{ex%7Bports%7D}%1Fslot"), "{key}");
        assert_eq!(cluster_tag(key), "ex%7Bports%7D", "{key}");
    }
    for permit in permits {
        permit.release().await.unwrap();
    }
    assert!(funnel.get().await.unwrap().is_some());
}

/// On a one-node Redis Cluster (cluster mode on, every slot assigned), a
/// script whose keys hash to different slots fails with `CROSSSLOT`. The
/// backend's scripts run there, for awkward names and for funnels, so their
/// keys share a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_on_a_cluster_node() {
    let bus_port =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let Some(redis) = RedisServer::builder()
        .arg("--cluster-enabled", "yes")
        .arg("--cluster-port", bus_port.to_string())
        .require()
    else {
        return;
    };
    let mut raw = raw(&redis).await;
    let () = query(&mut raw, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = query(&mut raw, &["CLUSTER", "INFO"]).await;
        if info.contains("cluster_state:ok") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the one-node cluster never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The check is on: keys on two slots are refused.
    let crossed = redis::cmd("EVAL")
        .arg("return 1")
        .arg(2)
        .arg("a")
        .arg("b")
        .query_async::<i64>(&mut raw)
        .await
        .unwrap_err();
    assert!(crossed.to_string().to_lowercase().contains("crossslot"), "{crossed}");

    let store = LockStore::new(RedisBackend::connect(&redis.url()).await.unwrap());
    for name in ["plain", "a{b}c", "}{", "{x}:fence"] {
        let lock = store.lock(name, LONG).unwrap();
        let guard = lock.get().await.unwrap().unwrap();
        assert!(store.lock(name, LONG).unwrap().get().await.unwrap().is_none());
        guard.extend(LONG).await.unwrap();
        assert_eq!(store.owner_of(name).await.unwrap().as_ref(), Some(lock.owner()));
        guard.release().await.unwrap();
        assert!(!store.force_release(name).await.unwrap());
    }
    let funnel = store.funnel("re{ports}", 3, LONG).unwrap();
    let permits = [
        funnel.get().await.unwrap().unwrap(),
        funnel.get().await.unwrap().unwrap(),
        funnel.get().await.unwrap().unwrap(),
    ];
    assert!(funnel.get().await.unwrap().is_none());
    for permit in permits {
        permit.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_prefix_is_configurable_and_checked() {
    let Some(Env { redis, store, mut raw }) = env().await else { return };
    let other =
        RedisBackend::builder(redis.url()).key_prefix("app:locks:").connect().await.unwrap();
    assert_eq!(other.key_prefix(), "app:locks:");
    let other = LockStore::new(other);

    let default_guard = store.lock("shared-name", LONG).unwrap().get().await.unwrap().unwrap();
    let other_guard = other
        .lock("shared-name", LONG)
        .unwrap()
        .get()
        .await
        .unwrap()
        .expect("another prefix is another set of locks");
    assert!(all_keys(&mut raw).await.contains("app:locks:{shared-name}"));
    default_guard.release().await.unwrap();
    other_guard.release().await.unwrap();

    for prefix in ["a{b", "a}b", "{app}:"] {
        let error =
            RedisBackend::builder(redis.url()).key_prefix(prefix).connect().await.unwrap_err();
        let LockError::Config(config) = &error else { panic!("{error:?}") };
        assert_eq!(config.field, "key_prefix", "{config}");
        let manager = store.backend().clone();
        assert!(matches!(manager.with_key_prefix(prefix), Err(LockError::Config(_))));
    }
    let error = RedisBackend::builder(redis.url())
        .response_timeout(Duration::ZERO)
        .connect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`response_timeout`"), "{error:?}");
    let renamed = store.backend().clone().with_key_prefix("").unwrap();
    assert_eq!(renamed.prepare("x").lock_key(), "{x}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_manager_uses_the_given_connection() {
    let Some(Env { redis, store: _, mut raw }) = env().await else { return };
    let client = redis::Client::open(redis.url()).unwrap();
    let manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    let store = LockStore::new(RedisBackend::from_manager(manager));
    assert_eq!(store.backend().key_prefix(), "conc:lock:");
    let guard = store.lock("managed", LONG).unwrap().get().await.unwrap().unwrap();
    assert!(all_keys(&mut raw).await.contains("conc:lock:{managed}"));
    guard.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_cleanly_without_a_server() {
    // A port nothing listens on (free a moment ago); no redis-server needed.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let error = RedisBackend::builder(format!("redis://127.0.0.1:{port}/"))
        .reconnect_retries(0)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");
    let error = RedisBackend::connect("not a url").await.unwrap_err();
    assert!(matches!(error, LockError::Backend(_)), "{error:?}");
}

/// Several processes, each with its own connection, share locks through the
/// server: a hold is seen by all, a restored owner acts for the holder, and
/// holders on separate connections exclude each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_connections_share_locks() {
    let Some(Env { redis, store: first, raw: _ }) = env().await else { return };
    let second = LockStore::new(RedisBackend::connect(&redis.url()).await.unwrap());

    let lock = first.lock("shared", LONG).unwrap();
    let guard = lock.get().await.unwrap().unwrap();
    assert!(second.lock("shared", LONG).unwrap().get().await.unwrap().is_none());
    assert_eq!(second.owner_of("shared").await.unwrap().as_ref(), Some(lock.owner()));
    let restored = second.restore("shared", lock.owner().clone(), LONG).unwrap();
    assert!(restored.release().await.unwrap(), "the token releases it from elsewhere");
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));

    let (workers, rounds) = (4, 10);
    let inside = Arc::new(AtomicUsize::new(0));
    let fences = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let store = LockStore::new(RedisBackend::connect(&redis.url()).await.unwrap());
        let (inside, fences) = (Arc::clone(&inside), Arc::clone(&fences));
        tasks.push(tokio::spawn(async move {
            let lock = store.lock("counter", LONG).unwrap();
            for _ in 0..rounds {
                let (inside, fences) = (&inside, &fences);
                lock.block_with(LONG, |fence| async move {
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                    fences.lock().unwrap().push(fence);
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let fences = fences.lock().unwrap().clone();
    assert_eq!(fences.len(), workers * rounds);
    assert!(fences.windows(2).all(|pair| pair[0] < pair[1]), "fences grow in holding order");
}
