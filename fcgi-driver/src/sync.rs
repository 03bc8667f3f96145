//! Small synchronisation pieces: a one-way flag that async code can wait on, and a
//! poison-tolerant lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Locks `m`, ignoring poisoning: our critical sections never leave state half-updated
/// across user code, so a panic elsewhere must not take the connection down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A flag that goes from unset to set once; waiters are woken when it is set.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    set: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Flag {
    pub(crate) fn set(&self) {
        if !self.set.swap(true, Ordering::SeqCst) {
            for w in lock(&self.wakers).drain(..) {
                w.wake();
            }
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Ready once the flag is set.
    pub(crate) fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_set() {
            return Poll::Ready(());
        }
        let mut wakers = lock(&self.wakers);
        if self.is_set() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
