#[cfg(conc_loom)]
mod loom_queue;

mod unit;
