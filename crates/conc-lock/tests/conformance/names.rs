//! The checks of what callers pass in: names and times to live, valid or not.

use std::time::Duration;

use conc_lock::{LockBackend, LockError, LockStore, MAX_NAME_LEN, MAX_TTL, Owner};

use super::TTL;

/// Empty, too long and control-character names are refused by every entry
/// point, with an error naming the value.
pub async fn invalid_names_are_refused<B: LockBackend>(store: LockStore<B>) {
    let too_long = "n".repeat(MAX_NAME_LEN + 1);
    let bad = [
        String::new(),
        too_long,
        "line\nbreak".to_owned(),
        "nul\0".to_owned(),
        "\u{1f}slot0".to_owned(),
    ];
    let owner = Owner::new("conformance-owner").unwrap();
    let check = |result: Result<(), LockError>, name: &str| match result {
        Err(LockError::Config(error)) if error.field == "name" => {
            assert!(error.to_string().contains(&format!("{name:?}")), "{error}");
            assert_eq!(error.value, format!("{name:?}"));
        }
        other => panic!("{name:?}: expected a `name` error, got {other:?}"),
    };
    for name in &bad {
        check(store.lock(name.clone(), TTL).map(drop), name);
        check(store.restore(name.clone(), owner.clone(), TTL).map(drop), name);
        check(store.funnel(name.clone(), 2, TTL).map(drop), name);
        check(store.force_release(name.clone()).await.map(drop), name);
        check(store.owner_of(name.clone()).await.map(drop), name);
    }
}

/// Times to live of zero, under a millisecond or over [`MAX_TTL`] are refused
/// by every entry point; [`MAX_TTL`] itself is accepted by the backend.
pub async fn invalid_ttls_are_refused<B: LockBackend>(store: LockStore<B>) {
    let name = "conformance:ttl";
    let bad = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
        MAX_TTL + Duration::from_millis(1),
        Duration::MAX,
    ];
    let check = |result: Result<(), LockError>, ttl: Duration| match result {
        Err(LockError::Config(error)) if error.field == "ttl" => {
            assert_eq!(error.value, format!("{ttl:?}"));
            assert!(error.reason.contains(&format!("{MAX_TTL:?}")), "{error}");
        }
        other => panic!("{ttl:?}: expected a `ttl` error, got {other:?}"),
    };
    let lock = store.lock(name, TTL).unwrap();
    let guard = lock.get().await.unwrap().unwrap();
    for ttl in bad {
        check(store.lock(name, ttl).map(drop), ttl);
        check(store.restore(name, Owner::random(), ttl).map(drop), ttl);
        check(store.funnel(name, 1, ttl).map(drop), ttl);
        check(lock.extend(ttl).await.map(drop), ttl);
        check(guard.extend(ttl).await, ttl);
    }
    assert!(lock.is_owned().await.unwrap(), "refused extensions left the hold alone");
    guard.extend(MAX_TTL).await.unwrap();
    guard.release().await.unwrap();

    let longest = store.lock("conformance:ttl-max", MAX_TTL).unwrap();
    let guard = longest.get().await.unwrap().expect("MAX_TTL is a valid time to live");
    assert!(longest.is_owned().await.unwrap());
    guard.release().await.unwrap();
    let shortest = store.lock("conformance:ttl-min", Duration::from_millis(1)).unwrap();
    let guard = shortest.get().await.unwrap().expect("1 ms is a valid time to live");
    // It may have expired already: either outcome is right.
    match guard.release().await {
        Ok(()) | Err(LockError::Lost { .. }) => {}
        Err(error) => panic!("releasing a 1 ms hold: {error}"),
    }
}

/// Names at the length limit, with multi-byte characters, spaces, quotes and
/// the characters key and query languages treat specially all work, for
/// locks and funnels.
pub async fn unusual_names_work<B: LockBackend>(store: LockStore<B>) {
    let names = [
        "n".repeat(MAX_NAME_LEN),
        "é".repeat(MAX_NAME_LEN / 2),
        "ключ 🔒 名前".to_owned(),
        "it's \"quoted\" `ticked` \\back\\slashed".to_owned(),
        "{hash}:tag*?[glob] %like_ 'sql'; -- comment".to_owned(),
        "x".to_owned(),
    ];
    for name in &names {
        let lock = store.lock(name.clone(), TTL).unwrap();
        assert_eq!(lock.name(), name);
        let guard = lock.get().await.unwrap().unwrap_or_else(|| panic!("{name:?} is free"));
        assert_eq!(store.owner_of(name.clone()).await.unwrap().as_ref(), Some(lock.owner()));
        assert!(store.lock(name.clone(), TTL).unwrap().get().await.unwrap().is_none(), "{name:?}");
        guard.extend(TTL).await.unwrap();
        guard.release().await.unwrap();
        assert_eq!(store.owner_of(name.clone()).await.unwrap(), None, "{name:?}");

        let funnel = store.funnel(name.clone(), 2, TTL).unwrap();
        let a = funnel.get().await.unwrap().unwrap_or_else(|| panic!("funnel {name:?}"));
        let b = funnel.get().await.unwrap().unwrap_or_else(|| panic!("funnel {name:?}"));
        assert!(funnel.get().await.unwrap().is_none(), "funnel {name:?}");
        a.release().await.unwrap();
        b.release().await.unwrap();
    }
}

/// Holding one name never blocks another, even names a backend might derive
/// its own keys from (a fence counter key, a prefix, a pattern).
pub async fn distinct_names_are_independent<B: LockBackend>(store: LockStore<B>) {
    let names = [
        "conformance:ind",
        "conformance:ind:fence",
        "conformance:ind:fence:fence",
        "conformance:in",
        "conformance:ind ",
        "Conformance:ind",
        "{conformance:ind}",
        "conformance:ind*",
        "conformance:in_",
        "conformance:in%",
        "conformance:ind:slot0",
    ];
    let mut guards = Vec::new();
    for name in names {
        let lock = store.lock(name, TTL).unwrap();
        let guard = lock.get().await.unwrap().unwrap_or_else(|| panic!("{name:?} is independent"));
        guards.push((lock, guard));
    }
    for (lock, _) in &guards {
        assert!(lock.is_owned().await.unwrap(), "{:?} is still held", lock.name());
    }
    let funnel = store.funnel("conformance:ind", 1, TTL).unwrap();
    let permit = funnel.get().await.unwrap().expect("a funnel's slots are not its name's lock");
    permit.release().await.unwrap();
    for (lock, guard) in guards {
        let fence = guard.fence();
        guard.release().await.unwrap();
        let again = lock.get().await.unwrap().unwrap();
        assert!(again.fence() > fence, "{:?}: fences grow per name", lock.name());
        again.release().await.unwrap();
    }
}
