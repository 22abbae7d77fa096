#[cfg(conc_loom)]
mod loom_slot;

use std::sync::Arc;

use super::MemorySlot;
use crate::{Fence, Owner};

fn slot() -> MemorySlot {
    MemorySlot::new(Arc::from("job"), 0)
}

#[test]
fn a_hold_excludes_others_until_released_or_expired() {
    let slot = slot();
    let (a, b) = (Owner::random(), Owner::random());
    assert_eq!(slot.acquire(&a, 0, 100), Ok(Fence::new(1)));
    assert_eq!(slot.acquire(&b, 40, 140), Err(60), "busy for what the hold has left");
    assert!(!slot.release(&b, None, 50), "only the owner releases");
    assert!(!slot.release(&a, Some(Fence::new(2)), 50), "only the hold with that fence");
    assert!(slot.release(&a, Some(Fence::new(1)), 50));
    assert!(!slot.release(&a, None, 50), "released once");
    assert_eq!(slot.acquire(&b, 60, 160), Ok(Fence::new(2)));
    assert_eq!(slot.acquire(&a, 160, 260), Ok(Fence::new(3)), "b's hold expired at 160");
    assert!(!slot.release(&b, None, 170), "b lost it");
    assert_eq!(slot.owner(170), Some(a.clone()));
    assert_eq!(slot.owner(260), None, "expired");
    assert_eq!(slot.removable(170), None);
    assert_eq!(slot.removable(260), Some(3));
}

#[test]
fn extend_and_force_release() {
    let slot = slot();
    let (a, b) = (Owner::random(), Owner::random());
    slot.acquire(&a, 0, 100).unwrap();
    assert!(!slot.extend(&b, 10, 500), "not b's");
    assert!(slot.extend(&a, 10, 500));
    assert_eq!(slot.acquire(&b, 200, 300), Err(300));
    assert!(slot.force_release(200));
    assert!(!slot.force_release(200), "nothing left to release");
    assert!(!slot.extend(&a, 210, 600), "a lost it");
    assert_eq!(slot.acquire(&b, 210, 300), Ok(Fence::new(2)));
}

#[test]
fn given_owners_and_their_random_looking_twins() {
    let slot = slot();
    let given = Owner::new("job-4711").unwrap();
    let random = Owner::random();
    slot.acquire(&given, 0, 100).unwrap();
    assert_eq!(slot.owner(1), Some(given.clone()));
    assert!(!slot.release(&random, None, 1));
    assert!(slot.release(&Owner::new("job-4711").unwrap(), None, 1), "equal by text");

    // A random owner's text, given back, is the same owner.
    slot.acquire(&random, 2, 100).unwrap();
    let twin = Owner::new(random.as_str()).unwrap();
    assert_eq!(twin, random);
    assert_eq!(slot.owner(3).as_ref().map(Owner::as_str), Some(random.as_str()));
    assert!(slot.extend(&twin, 3, 200));
    assert!(slot.release(&twin, Some(Fence::new(2)), 4));
    assert!(format!("{slot:?}").contains("\"job\""));
}

/// Names up to the inline length are kept in the slot, longer ones boxed;
/// either way the slot gives back the same text and bytes.
#[test]
fn names_inline_and_boxed_keep_their_text() {
    let names = [
        "a".to_owned(),
        "customer:4711".to_owned(),
        "x".repeat(22),
        "y".repeat(23),
        "é".repeat(11),
        "é".repeat(12),
        "z".repeat(512),
        "funnel\u{1f}slot1023".to_owned(),
    ];
    for name in &names {
        let slot = MemorySlot::new(name, 0);
        assert_eq!(slot.name_str(), name);
        assert_eq!(slot.name_bytes(), name.as_bytes());
        assert_eq!(&*slot.name(), name.as_str());
        assert!(format!("{slot:?}").contains(&format!("{name:?}")));
    }
}

/// A slot with its name inline stays within 80 bytes (96 with its reference
/// counts): a million idle names cost about a tenth of a gigabyte until swept.
#[test]
fn a_slot_is_small() {
    assert!(std::mem::size_of::<MemorySlot>() <= 80, "{}", std::mem::size_of::<MemorySlot>());
}
