//! Loom models of the in-memory lock slot: one holder at a time, fences that
//! only grow, and no extension or release of a hold another owner took.

use loom::sync::Arc;
use loom::thread;

use crate::memory::slot::MemorySlot;
use crate::{Fence, Owner};

fn slot() -> Arc<MemorySlot> {
    Arc::new(MemorySlot::new(std::sync::Arc::from("job"), 0))
}

/// Two owners race for a free slot: exactly one holds it, with fence 1, and
/// the slot names that owner.
#[test]
fn loom_two_racers_one_holder() {
    loom::model(|| {
        let slot = slot();
        let owners = [Owner::random(), Owner::random()];
        let racers: Vec<_> = owners
            .iter()
            .map(|owner| {
                let (slot, owner) = (Arc::clone(&slot), owner.clone());
                thread::spawn(move || slot.acquire(&owner, 0, 100))
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|racer| racer.join().unwrap()).collect();
        let winners: Vec<usize> = (0..2).filter(|&i| results[i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert_eq!(results[winners[0]], Ok(Fence::new(1)));
        assert!(results.contains(&Err(100)), "{results:?}");
        assert_eq!(slot.owner(1).as_ref(), Some(&owners[winners[0]]));
    });
}

/// The holder releases while another owner (a given one) acquires: the
/// acquirer either finds it held or takes it with the next fence, and the
/// release always succeeds (it was the holder's, unexpired).
#[test]
fn loom_release_races_acquire() {
    loom::model(|| {
        let slot = slot();
        let holder = Owner::random();
        let next = Owner::new("next").unwrap();
        assert_eq!(slot.acquire(&holder, 0, 100), Ok(Fence::new(1)));
        let releaser = {
            let (slot, holder) = (Arc::clone(&slot), holder.clone());
            thread::spawn(move || slot.release(&holder, Some(Fence::new(1)), 10))
        };
        let acquirer = {
            let (slot, next) = (Arc::clone(&slot), next.clone());
            thread::spawn(move || slot.acquire(&next, 10, 200))
        };
        assert!(releaser.join().unwrap());
        match acquirer.join().unwrap() {
            Ok(fence) => {
                assert_eq!(fence, Fence::new(2));
                assert_eq!(slot.owner(20), Some(next));
            }
            Err(left) => {
                assert_eq!(left, 90);
                assert_eq!(slot.owner(20), None);
            }
        }
    });
}

/// The holder extends just as another owner finds the hold expired: never
/// both, so an extension the holder is told of is never overwritten by a
/// new hold.
#[test]
fn loom_extend_races_an_expiry_taker() {
    loom::model(|| {
        let slot = slot();
        let (holder, taker) = (Owner::random(), Owner::random());
        assert_eq!(slot.acquire(&holder, 0, 10), Ok(Fence::new(1)));
        let extender = {
            let (slot, holder) = (Arc::clone(&slot), holder.clone());
            thread::spawn(move || slot.extend(&holder, 9, 30))
        };
        let thief = {
            let (slot, taker) = (Arc::clone(&slot), taker.clone());
            thread::spawn(move || slot.acquire(&taker, 10, 40))
        };
        let extended = extender.join().unwrap();
        let taken = thief.join().unwrap();
        match (extended, taken) {
            (true, Err(left)) => {
                assert_eq!(left, 20);
                assert_eq!(slot.owner(11), Some(holder));
            }
            (false, Ok(fence)) => {
                assert_eq!(fence, Fence::new(2));
                assert_eq!(slot.owner(11), Some(taker));
                assert!(!slot.release(&holder, Some(Fence::new(1)), 11));
            }
            other => panic!("extension and taking both or neither: {other:?}"),
        }
    });
}

/// An operator's force release races the holder's release: exactly one of
/// them removes the hold, and the slot ends free with its fence kept.
#[test]
fn loom_force_release_races_release() {
    loom::model(|| {
        let slot = slot();
        let holder = Owner::random();
        assert_eq!(slot.acquire(&holder, 0, 100), Ok(Fence::new(1)));
        let releaser = {
            let (slot, holder) = (Arc::clone(&slot), holder.clone());
            thread::spawn(move || slot.release(&holder, Some(Fence::new(1)), 10))
        };
        let forced = slot.force_release(10);
        let released = releaser.join().unwrap();
        assert!(forced != released, "forced {forced}, released {released}");
        assert_eq!(slot.owner(10), None);
        assert_eq!(slot.removable(10), Some(1));
        assert_eq!(slot.acquire(&holder, 10, 100), Ok(Fence::new(2)));
    });
}
