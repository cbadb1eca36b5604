//! Adding context to failures, and handling chosen kinds of errors in a scope.
//!
//! ```
//! use rampart::error::{Error, ErrorKind, handling};
//!
//! let mut seen = Vec::new();
//! // Catch not-found errors, note them, and carry on without a value.
//! let out = handling()
//!     .catch(ErrorKind::NotFound)
//!     .on_error(|err| seen.push(err.code()))
//!     .swallow()
//!     .run(|| -> Result<u32, Error> { Err(Error::not_found("no such order")) });
//! assert!(matches!(out, Ok(None)));
//! assert_eq!(seen.len(), 1);
//!
//! // Kinds that are not caught pass through untouched, and the handler is not called.
//! let out = handling()
//!     .catch(ErrorKind::NotFound)
//!     .swallow()
//!     .run(|| -> Result<u32, Error> { Err(Error::conflict("already paid")) });
//! assert_eq!(out.unwrap_err().kind(), ErrorKind::Conflict);
//! ```

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use super::{BoxError, Error, ErrorKind};

/// Adds a private context note to a failure, turning a foreign error into an
/// [`ErrorKind::Internal`] [`Error`] on the way. A rampart [`Error`] keeps its
/// kind, code and message; the note is only added.
pub trait ResultExt<T> {
    /// Adds `note` to the error, if any.
    fn context(self, note: impl Into<Cow<'static, str>>) -> Result<T, Error>;

    /// Adds the note `note()` builds, computed only on failure.
    fn with_context<N, F>(self, note: F) -> Result<T, Error>
    where
        N: Into<Cow<'static, str>>,
        F: FnOnce() -> N;
}

impl<T, E> ResultExt<T> for Result<T, E>
where
    E: StdError + Send + Sync + 'static,
{
    fn context(self, note: impl Into<Cow<'static, str>>) -> Result<T, Error> {
        self.map_err(|err| Error::internal(Box::new(err) as BoxError).context(note))
    }

    fn with_context<N, F>(self, note: F) -> Result<T, Error>
    where
        N: Into<Cow<'static, str>>,
        F: FnOnce() -> N,
    {
        self.map_err(|err| Error::internal(Box::new(err) as BoxError).context(note()))
    }
}

/// Starts a [`Handling`] scope: by default it catches every kind, calls no
/// handler, and re-raises.
pub fn handling() -> Handling<fn(&Error)> {
    Handling { kinds: Vec::new(), swallow: false, handler: |_| {} }
}

/// A scope that runs code, catches errors of chosen kinds, hands them to a
/// handler, then re-raises or swallows them. Built by [`handling`].
#[must_use = "a Handling scope does nothing until `run` or `run_async`"]
pub struct Handling<H> {
    /// Empty means every kind.
    kinds: Vec<ErrorKind>,
    swallow: bool,
    handler: H,
}

impl<H: FnMut(&Error)> Handling<H> {
    /// Catches errors of `kind` (call again for more kinds). Without any
    /// `catch`, every kind is caught.
    pub fn catch(mut self, kind: ErrorKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Calls `handler` with each caught error.
    pub fn on_error<H2: FnMut(&Error)>(self, handler: H2) -> Handling<H2> {
        Handling { kinds: self.kinds, swallow: self.swallow, handler }
    }

    /// Caught errors end here: the scope returns `Ok(None)`.
    pub fn swallow(mut self) -> Self {
        self.swallow = true;
        self
    }

    /// Caught errors are returned after the handler ran (the default).
    pub fn reraise(mut self) -> Self {
        self.swallow = false;
        self
    }

    /// Runs `body`: `Ok(Some(value))` on success, `Ok(None)` for a swallowed
    /// error, `Err` for an error that is re-raised or not caught.
    pub fn run<T>(self, body: impl FnOnce() -> Result<T, Error>) -> Result<Option<T>, Error> {
        self.settle(body())
    }

    /// The async form of [`Handling::run`].
    pub async fn run_async<T>(
        self,
        body: impl Future<Output = Result<T, Error>>,
    ) -> Result<Option<T>, Error> {
        self.settle(body.await)
    }

    fn settle<T>(mut self, outcome: Result<T, Error>) -> Result<Option<T>, Error> {
        match outcome {
            Ok(value) => Ok(Some(value)),
            Err(err) if self.kinds.is_empty() || self.kinds.contains(&err.kind()) => {
                (self.handler)(&err);
                if self.swallow { Ok(None) } else { Err(err) }
            }
            Err(err) => Err(err),
        }
    }
}

impl<H> fmt::Debug for Handling<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handling")
            .field("kinds", &self.kinds)
            .field("swallow", &self.swallow)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(kind: ErrorKind) -> Result<u8, Error> {
        Err(Error::new(kind, "boom"))
    }

    #[test]
    fn context_on_a_rampart_error_keeps_kind_and_adds_notes_in_order() {
        let out: Result<u8, Error> = fail(ErrorKind::Conflict).context("first").context("second");
        let err = out.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(err.message(), "boom");
        assert_eq!(err.context_notes().collect::<Vec<_>>(), ["first", "second"]);
    }

    #[test]
    fn context_on_a_foreign_error_makes_an_internal_error_with_that_source() {
        let out: Result<u8, _> = "x".parse::<u8>().with_context(|| format!("parsing {}", "x"));
        let err = out.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert_eq!(err.chain().count(), 1);
        assert_eq!(err.context_notes().collect::<Vec<_>>(), ["parsing x"]);
    }

    #[test]
    fn success_passes_through_without_calling_the_handler() {
        let mut calls = 0;
        let out = handling().on_error(|_| calls += 1).run(|| Ok::<_, Error>(7));
        assert_eq!(out.unwrap(), Some(7));
        assert_eq!(calls, 0);
    }

    #[test]
    fn caught_error_is_handled_then_reraised_by_default() {
        let mut handled = Vec::new();
        let out = handling()
            .catch(ErrorKind::Validation)
            .on_error(|err| handled.push(err.kind()))
            .run(|| fail(ErrorKind::Validation));
        assert_eq!(out.unwrap_err().kind(), ErrorKind::Validation);
        assert_eq!(handled, [ErrorKind::Validation]);
    }

    #[test]
    fn caught_error_is_swallowed_when_asked() {
        let mut handled = 0;
        let out = handling()
            .catch(ErrorKind::Validation)
            .catch(ErrorKind::NotFound)
            .on_error(|_| handled += 1)
            .swallow()
            .run(|| fail(ErrorKind::NotFound));
        assert!(matches!(out, Ok(None)));
        assert_eq!(handled, 1);
    }

    #[test]
    fn uncaught_kind_passes_through_unhandled_even_when_swallowing() {
        let mut handled = 0;
        let out = handling()
            .catch(ErrorKind::Validation)
            .on_error(|_| handled += 1)
            .swallow()
            .run(|| fail(ErrorKind::Internal));
        assert_eq!(out.unwrap_err().kind(), ErrorKind::Internal);
        assert_eq!(handled, 0);
    }

    #[test]
    fn no_catch_means_every_kind() {
        for kind in ErrorKind::ALL {
            let mut handled = 0;
            let out = handling().on_error(|_| handled += 1).swallow().run(|| fail(kind));
            assert!(matches!(out, Ok(None)), "{kind}");
            assert_eq!(handled, 1);
        }
    }

    #[tokio::test]
    async fn async_scope_follows_the_same_rules() {
        let mut handled = 0;
        let out = handling()
            .catch(ErrorKind::Timeout)
            .on_error(|_| handled += 1)
            .swallow()
            .run_async(async { fail(ErrorKind::Timeout) })
            .await;
        assert!(matches!(out, Ok(None)));
        let out = handling()
            .catch(ErrorKind::Timeout)
            .reraise()
            .run_async(async { fail(ErrorKind::Timeout) })
            .await;
        assert!(out.is_err());
        assert_eq!(handled, 1);
    }
}
