#[cfg(conc_loom)]
mod loom_breaker;
#[cfg(not(conc_loom))]
mod promises;
