#[cfg(conc_loom)]
mod loom_cell;
