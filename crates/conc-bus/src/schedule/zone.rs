//! Time zones by IANA name.

use conc_core::config::ConfigError;
use jiff::tz::TimeZone;

/// The zone named `name` (`"UTC"`, `"Europe/Paris"`), from the system's
/// time zone database, or the copy bundled with the crate when the system
/// has none.
pub(crate) fn lookup(field: &'static str, name: &str) -> Result<TimeZone, ConfigError> {
    TimeZone::get(name).map_err(|error| {
        ConfigError::new(field, name, format!("must be a known IANA time zone: {error}"))
    })
}
