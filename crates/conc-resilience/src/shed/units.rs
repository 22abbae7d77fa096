//! What a request costs a load shedder: [`LoadUnits`].

/// How many load units a request costs, for a
/// [`LoadShedder`](super::LoadShedder) service.
///
/// Implemented by [`OneUnit`] and by every `Fn(&Request) -> u64`.
///
/// # Examples
///
/// ```
/// use conc_resilience::{LoadUnits, OneUnit};
///
/// let by_length = |body: &Vec<u8>| body.len() as u64;
/// assert_eq!(by_length.units(&vec![0; 3]), 3);
/// assert_eq!(LoadUnits::<Vec<u8>>::units(&OneUnit, &vec![0; 3]), 1);
/// ```
pub trait LoadUnits<Request> {
    /// The units `request` costs.
    fn units(&self, request: &Request) -> u64;
}

/// Every request costs one load unit: the shedder's maximum is a count of calls.
///
/// # Examples
///
/// ```
/// use conc_resilience::{LoadUnits, OneUnit};
///
/// assert_eq!(OneUnit.units(&"any request"), 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OneUnit;

impl<Request> LoadUnits<Request> for OneUnit {
    #[inline]
    fn units(&self, _request: &Request) -> u64 {
        1
    }
}

impl<Request, F: Fn(&Request) -> u64> LoadUnits<Request> for F {
    #[inline]
    fn units(&self, request: &Request) -> u64 {
        self(request)
    }
}
