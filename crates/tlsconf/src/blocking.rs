//! Running blocking key operations without stalling the async workers.

/// Runs blocking `f` (a signature on a hardware token) so that it does not
/// stall a tokio worker: on a multi-threaded runtime through
/// [`tokio::task::block_in_place`], which hands the worker's other tasks to
/// another thread meanwhile; elsewhere (no runtime, a current-thread
/// runtime, a blocking thread) it simply runs.
pub(crate) fn off_async_workers<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
