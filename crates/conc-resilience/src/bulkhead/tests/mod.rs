#[cfg(conc_loom)]
mod loom_bulkhead;
