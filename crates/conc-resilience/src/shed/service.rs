//! The tower `Service` of a [`LoadShedder`] around an inner service.
//!
//! `poll_ready` is the inner service's; the shedder decides in `call`, so a
//! shed request fails from `call` with [`Shed`](super::Shed) (as a
//! [`BoxError`]) and is never sent to the inner service, and `poll_ready`
//! never fails for shedding. An admitted call holds its units until its
//! response future completes or is dropped. A shed request leaves the inner
//! service ready, with whatever admission its `poll_ready` reserved, for the
//! next call (or until this service is dropped).

use std::task::{Context, Poll};

use conc_core::BoxError;
use tower::Service;

use super::future::ResponseFuture;
use super::{LoadShedder, LoadUnits};

impl<S, U, Request> Service<Request> for LoadShedder<S, U>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    U: LoadUnits<Request>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.try_admit(self.units.units(&request)) {
            Err(shed) => ResponseFuture::shed(shed),
            Ok(permit) => ResponseFuture::admitted(self.inner.call(request), permit),
        }
    }
}
