#[cfg(conc_loom)]
mod loom_breaker;
