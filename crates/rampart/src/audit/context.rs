//! Audit context for a scope: values (request id, tenant, client address...)
//! merged into every event recorded inside it; see [`AuditContext`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;

/// Key/value context merged into every audit event recorded in its scope.
///
/// [`scope`] sets it for a future (task-local), [`scope_sync`] for a closure
/// (thread-local). Scopes nest: an inner scope sees the outer values, and
/// its own win on a clash.
///
/// **What crosses `tokio::spawn`: nothing.** A spawned task is a new task,
/// so it starts with no context. Wrap the future with [`in_current_scope`]
/// to carry the spawner's context into it. The same holds for
/// `std::thread::spawn` and `spawn_blocking`: capture [`current`] and
/// re-scope with [`scope_sync`].
///
/// ```
/// use rampart::audit::{self, AuditContext};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ctx = AuditContext::new().with("request_id", "r-1");
/// audit::scope(ctx, async {
///     audit::scope(AuditContext::new().with("tenant", "acme"), async {
///         let now = audit::current();
///         assert_eq!(now.get("request_id"), Some("r-1"));
///         assert_eq!(now.get("tenant"), Some("acme"));
///     })
///     .await;
///     // Carried into a spawned task only when asked:
///     let inner = tokio::spawn(audit::in_current_scope(async { audit::current() }));
///     assert_eq!(inner.await.unwrap().get("request_id"), Some("r-1"));
/// })
/// .await;
/// # });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    values: BTreeMap<String, String>,
}

impl AuditContext {
    /// An empty context.
    pub fn new() -> AuditContext {
        AuditContext::default()
    }

    /// Adds a value.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> AuditContext {
        self.values.insert(key.into(), value.into());
        self
    }

    /// A value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `self` with `inner`'s values on top.
    fn merged(&self, inner: &AuditContext) -> AuditContext {
        let mut values = self.values.clone();
        values.extend(inner.values.iter().map(|(k, v)| (k.clone(), v.clone())));
        AuditContext { values }
    }

    /// `self` with `inner`'s values on top, reusing `inner`.
    fn merge_into(&self, mut inner: AuditContext) -> AuditContext {
        for (k, v) in &self.values {
            inner.values.entry(k.clone()).or_insert_with(|| v.clone());
        }
        inner
    }

    pub(crate) fn into_map(self) -> BTreeMap<String, String> {
        self.values
    }
}

tokio::task_local! {
    static TASK: AuditContext;
}

thread_local! {
    static THREAD: RefCell<Vec<AuditContext>> = const { RefCell::new(Vec::new()) };
}

/// The context in force here: the task's, with the innermost sync scope on top.
pub fn current() -> AuditContext {
    let task = TASK.try_with(Clone::clone).unwrap_or_default();
    THREAD.with(|stack| match stack.borrow().last() {
        Some(sync) => task.merged(sync),
        None => task,
    })
}

/// Runs `future` with `ctx` merged over the current context.
pub async fn scope<F: Future>(ctx: AuditContext, future: F) -> F::Output {
    let merged = current().merge_into(ctx);
    TASK.scope(merged, future).await
}

/// Runs `f` with `ctx` merged over the current context, on this thread.
pub fn scope_sync<T>(ctx: AuditContext, f: impl FnOnce() -> T) -> T {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            THREAD.with(|stack| stack.borrow_mut().pop());
        }
    }
    // Only the sync stack is merged here: the task's context is added by `current`.
    let merged = THREAD.with(|stack| match stack.borrow().last() {
        Some(base) => base.merge_into(ctx),
        None => ctx,
    });
    THREAD.with(|stack| stack.borrow_mut().push(merged));
    let _pop = Pop;
    f()
}

/// `future` wrapped to run in the current context: use it for what you
/// `tokio::spawn`, which otherwise starts with no context.
pub fn in_current_scope<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let ctx = current();
    TASK.scope(ctx, future)
}
