#[cfg(conc_loom)]
mod loom_bulkhead;
#[cfg(not(conc_loom))]
mod promises;
