//! The bus's commands and handlers with their types erased, for the one tower
//! stack every dispatch runs through: [`Dispatch`] in, [`Reply`] out.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::{BoxError, BoxFuture};
use futures::FutureExt;

use super::Command;

/// A command on its way through the bus's middleware: its type and the
/// command itself, type-erased. Cloning clones the command (what a retry
/// layer does before each attempt).
///
/// # Examples
///
/// ```
/// use conc_bus::{Command, Dispatch};
///
/// #[derive(Clone)]
/// struct Ping(u8);
/// impl Command for Ping { type Output = (); type Error = std::convert::Infallible; }
///
/// let dispatch = Dispatch::new(Ping(7));
/// assert_eq!(dispatch.command::<Ping>().map(|p| p.0), Some(7));
/// assert!(dispatch.name().ends_with("Ping"));
/// ```
pub struct Dispatch {
    type_id: TypeId,
    name: &'static str,
    command: Box<dyn AnyCommand>,
}

/// A boxed command that can clone itself and be taken back.
trait AnyCommand: Send {
    fn clone_box(&self) -> Box<dyn AnyCommand>;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<C: Command> AnyCommand for C {
    fn clone_box(&self) -> Box<dyn AnyCommand> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

impl Dispatch {
    /// `command`, ready for the stack.
    pub fn new<C: Command>(command: C) -> Self {
        Self {
            type_id: TypeId::of::<C>(),
            name: std::any::type_name::<C>(),
            command: Box::new(command),
        }
    }

    /// The command's type name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The command, if it is a `C`.
    pub fn command<C: Command>(&self) -> Option<&C> {
        self.command.as_any().downcast_ref()
    }

    /// The command back, if it is a `C`; else the dispatch unchanged.
    pub(crate) fn into_command<C: Command>(self) -> Result<C, Self> {
        if self.type_id == TypeId::of::<C>() {
            let any = self.command.into_any();
            Ok(*any.downcast::<C>().expect("the type id matched"))
        } else {
            Err(self)
        }
    }
}

impl Clone for Dispatch {
    fn clone(&self) -> Self {
        Self { type_id: self.type_id, name: self.name, command: self.command.clone_box() }
    }
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatch").field("command", &self.name).finish_non_exhaustive()
    }
}

/// A handler's output, type-erased (the handler's error travels as the
/// service's error, so middleware sees failures).
pub struct Reply(Box<dyn Any + Send>);

impl Reply {
    /// The output, if it is a `T`.
    pub(crate) fn into_output<T: 'static>(self) -> Option<T> {
        self.0.downcast::<T>().ok().map(|output| *output)
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply(..)")
    }
}

/// A command's handler as the fast path calls it: typed.
pub(crate) type TypedHandler<C> = Arc<
    dyn Fn(C) -> BoxFuture<'static, Result<<C as Command>::Output, <C as Command>::Error>>
        + Send
        + Sync,
>;

/// A typed hook over a command.
pub(crate) type Hook<C> = Arc<dyn Fn(&C) -> Result<(), super::Refusal> + Send + Sync>;

/// One command type's handler, typed (for the fast path) and erased (for the
/// stack).
pub(crate) struct Entry {
    /// A `TypedHandler<C>`.
    pub(crate) typed: Box<dyn Any + Send + Sync>,
    pub(crate) erased:
        Arc<dyn Fn(Dispatch) -> BoxFuture<'static, Result<Reply, BoxError>> + Send + Sync>,
}

impl Entry {
    pub(crate) fn new<C, F, Fut>(handler: F) -> Self
    where
        C: Command,
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Output, C::Error>> + Send + 'static,
    {
        let typed: TypedHandler<C> = Arc::new(move |command| Box::pin(handler(command)));
        let for_stack = Arc::clone(&typed);
        let erased =
            Arc::new(move |dispatch: Dispatch| -> BoxFuture<'static, Result<Reply, BoxError>> {
                let Ok(command) = dispatch.into_command::<C>() else {
                    return Box::pin(async {
                        Err("the bus routed a command to another type's handler".into())
                    });
                };
                let future = for_stack(command);
                Box::pin(async move {
                    match AssertUnwindSafe(future).catch_unwind().await {
                        Ok(Ok(output)) => Ok(Reply(Box::new(output))),
                        Ok(Err(error)) => Err(Box::new(error) as BoxError),
                        Err(panic) => {
                            Err(HandlerPanicked(conc_core::driver::panic_message(panic.as_ref()))
                                .into())
                        }
                    }
                })
            });
        Self { typed: Box::new(typed), erased }
    }
}

/// A command handler panicked; the bus caught it. It travels through the
/// middleware as the stack's error and comes out as
/// [`DispatchError::Panicked`](super::DispatchError::Panicked).
///
/// # Examples
///
/// ```
/// use conc_bus::HandlerPanicked;
///
/// assert_eq!(HandlerPanicked("boom".into()).to_string(), "the handler panicked: boom");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the handler panicked: {0}")]
pub struct HandlerPanicked(pub String);

/// The innermost service of the stack: finds the command's handler and runs it.
#[derive(Clone)]
pub(crate) struct Router {
    pub(crate) entries: Arc<HashMap<TypeId, Entry>>,
}

impl tower::Service<Dispatch> for Router {
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dispatch: Dispatch) -> Self::Future {
        if let Some(entry) = self.entries.get(&dispatch.type_id) {
            (entry.erased)(dispatch)
        } else {
            let name = dispatch.name;
            Box::pin(
                async move { Err(format!("no handler is registered for command `{name}`").into()) },
            )
        }
    }
}
