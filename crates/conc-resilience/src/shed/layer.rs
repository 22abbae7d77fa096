//! [`LoadShedderLayer`]: wraps services in a [`LoadShedder`].

use std::fmt;

use tower::Layer;

use super::{LoadShedder, OneUnit};

/// Wraps services in a [`LoadShedder`] sharing one shedder's load.
///
/// # Examples
///
/// ```
/// use conc_resilience::{LoadShedder, LoadShedderLayer, Shed};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let shedder = LoadShedder::builder(100).build()?;
/// // A request costs one unit per kilobyte, at least one.
/// let mut service = LoadShedderLayer::new(shedder.clone())
///     .units(|body: &Vec<u8>| (body.len() as u64 / 1024).max(1))
///     .layer(service_fn(|body: Vec<u8>| async move { Ok::<_, std::io::Error>(body.len()) }));
/// assert_eq!(service.ready().await?.call(vec![0; 4096]).await?, 4096);
/// let error = service.ready().await?.call(vec![0; 200 * 1024]).await.unwrap_err();
/// assert!(matches!(error.downcast_ref::<Shed>(), Some(Shed::Overloaded { units: 200, .. })));
/// assert_eq!(shedder.metrics().load, 0, "the first call's units came back");
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct LoadShedderLayer<U = OneUnit> {
    shedder: LoadShedder,
    units: U,
}

impl<U> fmt::Debug for LoadShedderLayer<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadShedderLayer").field("shedder", &self.shedder).finish_non_exhaustive()
    }
}

impl LoadShedderLayer {
    /// A layer admitting every call of the services it wraps through
    /// `shedder`, at one load unit per request.
    pub fn new(shedder: LoadShedder) -> Self {
        Self { shedder, units: OneUnit }
    }
}

impl<U> LoadShedderLayer<U> {
    /// Charges each request the units `units` gives it (a closure
    /// `Fn(&Request) -> u64`, or any [`LoadUnits`](super::LoadUnits)).
    /// Defaults to [`OneUnit`].
    pub fn units<V>(self, units: V) -> LoadShedderLayer<V> {
        LoadShedderLayer { shedder: self.shedder, units }
    }
}

impl<S, U: Clone> Layer<S> for LoadShedderLayer<U> {
    type Service = LoadShedder<S, U>;

    fn layer(&self, inner: S) -> Self::Service {
        self.shedder.wrap(self.units.clone(), inner)
    }
}
