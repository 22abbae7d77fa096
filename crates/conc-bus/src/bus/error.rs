//! Why a dispatch did not produce the handler's output.

use std::borrow::Cow;
use std::fmt;

use conc_core::BoxError;

use super::Command;

/// Why an authorization or validation hook refused a command.
///
/// # Examples
///
/// ```
/// use conc_bus::Refusal;
///
/// let refusal = Refusal::new("only admins may delete users");
/// assert_eq!(refusal.to_string(), "only admins may delete users");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    reason: Cow<'static, str>,
}

impl Refusal {
    /// A refusal for `reason`.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self { reason: reason.into() }
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Why a dispatched command produced no output. Every refusal that happens
/// before the command reached its handler hands the command back.
///
/// # Examples
///
/// ```
/// use conc_bus::{Bus, Command, DispatchError};
///
/// #[derive(Debug, Clone, PartialEq)]
/// struct Ping;
/// impl Command for Ping {
///     type Output = ();
///     type Error = std::convert::Infallible;
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let bus = Bus::builder().build();
/// match bus.dispatch(Ping).await {
///     Err(DispatchError::NoHandler(command)) => assert_eq!(command, Ping),
///     other => panic!("expected no handler, got {other:?}"),
/// }
/// # }
/// ```
#[non_exhaustive]
pub enum DispatchError<C: Command> {
    /// No handler is registered for the command's type.
    NoHandler(C),
    /// An authorization hook refused the command.
    Unauthorized {
        /// The command, handed back.
        command: C,
        /// Why.
        refusal: Refusal,
    },
    /// A validation hook refused the command.
    Invalid {
        /// The command, handed back.
        command: C,
        /// Why.
        refusal: Refusal,
    },
    /// A middleware layer refused the command before it was handed over (a
    /// rate limit, an open circuit breaker, a full bulkhead).
    Rejected {
        /// The command, handed back.
        command: C,
        /// The layer's error.
        error: BoxError,
    },
    /// The handler returned its error.
    Failed(C::Error),
    /// The handler panicked; the panic was caught and this is its message.
    Panicked(String),
    /// A middleware layer failed after the command was handed over (a
    /// timeout, a retry that gave up on a layer's error).
    Middleware(BoxError),
}

impl<C: Command> DispatchError<C> {
    /// The command, when it was handed back.
    pub fn into_command(self) -> Option<C> {
        match self {
            Self::NoHandler(command)
            | Self::Unauthorized { command, .. }
            | Self::Invalid { command, .. }
            | Self::Rejected { command, .. } => Some(command),
            Self::Failed(_) | Self::Panicked(_) | Self::Middleware(_) => None,
        }
    }
}

impl<C: Command> fmt::Debug for DispatchError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = std::any::type_name::<C>();
        match self {
            Self::NoHandler(_) => f.debug_tuple("NoHandler").field(&name).finish(),
            Self::Unauthorized { refusal, .. } => f
                .debug_struct("Unauthorized")
                .field("command", &name)
                .field("refusal", refusal)
                .finish(),
            Self::Invalid { refusal, .. } => {
                f.debug_struct("Invalid").field("command", &name).field("refusal", refusal).finish()
            }
            Self::Rejected { error, .. } => {
                f.debug_struct("Rejected").field("command", &name).field("error", error).finish()
            }
            Self::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
            Self::Panicked(message) => f.debug_tuple("Panicked").field(message).finish(),
            Self::Middleware(error) => f.debug_tuple("Middleware").field(error).finish(),
        }
    }
}

impl<C: Command> fmt::Display for DispatchError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = super::short_name::<C>();
        match self {
            Self::NoHandler(_) => write!(f, "no handler is registered for command `{name}`"),
            Self::Unauthorized { refusal, .. } => {
                write!(f, "command `{name}` is not authorized: {refusal}")
            }
            Self::Invalid { refusal, .. } => write!(f, "command `{name}` is invalid: {refusal}"),
            Self::Rejected { error, .. } => write!(f, "command `{name}` was refused: {error}"),
            Self::Failed(error) => write!(f, "command `{name}` failed: {error}"),
            Self::Panicked(message) => {
                write!(f, "the handler of command `{name}` panicked: {message}")
            }
            Self::Middleware(error) => write!(f, "command `{name}` failed in middleware: {error}"),
        }
    }
}

impl<C: Command> std::error::Error for DispatchError<C> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unauthorized { refusal, .. } | Self::Invalid { refusal, .. } => Some(refusal),
            Self::Rejected { error, .. } | Self::Middleware(error) => Some(error.as_ref()),
            Self::Failed(error) => Some(error),
            Self::NoHandler(_) | Self::Panicked(_) => None,
        }
    }
}
