//! The heartbeats of the workers of this process's memory queue.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::queue::beat::{WorkerBeat, live};

/// Beats by worker id.
#[derive(Debug, Default)]
pub(super) struct Beats(Mutex<HashMap<String, WorkerBeat>>);

impl Beats {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, WorkerBeat>) -> T) -> T {
        // Every update is one map operation: a poisoned lock holds a
        // consistent map.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Stores `beat` and drops the beats gone at `now`.
    pub(super) fn record(&self, beat: &WorkerBeat, now: u64) {
        self.with(|beats| {
            beats.retain(|_, old| !old.is_gone(now));
            beats.insert(beat.id.clone(), beat.clone());
        });
    }

    /// Deletes the beat of `id`; whether there was one.
    pub(super) fn remove(&self, id: &str) -> bool {
        self.with(|beats| beats.remove(id).is_some())
    }

    /// The beats live at `now`, sorted; the gone ones are dropped.
    pub(super) fn list(&self, now: u64) -> Vec<WorkerBeat> {
        self.with(|beats| {
            beats.retain(|_, beat| !beat.is_gone(now));
            live(beats.values().cloned(), now)
        })
    }
}
