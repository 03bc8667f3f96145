//! Synchronisation pieces, chosen so that no registration outlives its waiter:
//!
//! - [`Signal`]: a one-way, server-wide flag many tasks wait on (graceful shutdown, its
//!   deadline). Waiters hold an [`event_listener::EventListener`], which removes itself from
//!   the event's list when dropped: a closed connection leaves nothing behind, and setting the
//!   signal wakes exactly the live waiters. (The hand-written waker list this replaces kept
//!   the waker of every connection ever polled and scanned them all on each poll.)
//! - [`Notify`]: "something changed, look again" for many waiters (a free pool slot,
//!   transmit room on a connection), on the same primitive.
//! - [`OneWaiter`]: a flag with a single waiter (a connection told to make room at the
//!   connection cap), on `atomic-waker`: one slot, replaced on each registration, dropped with its
//!   owner.
//! - [`WakeFlag`]: a waker of its own for one source a task polls (its socket's reads, its
//!   timer), which records that the source woke the task: the task polls that source again
//!   only then, not on every wake-up it gets for other reasons.
//! - [`lock`]: a poison-tolerant mutex lock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use event_listener::{Event, EventListener};

/// Locks `m`, ignoring poisoning: our critical sections never leave state half-updated
/// across user code, so a panic elsewhere must not take the connection down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A flag that goes from unset to set once; every waiter is woken when it is set.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    set: AtomicBool,
    event: Event,
}

impl Signal {
    pub(crate) fn set(&self) {
        if !self.set.swap(true, Ordering::SeqCst) {
            self.event.notify(usize::MAX);
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Waiters registered right now.
    pub(crate) fn waiters(&self) -> usize {
        self.event.total_listeners()
    }
}

/// One task's wait on a [`Signal`]: its registration lives exactly as long as this value.
///
/// Polling it costs an atomic load while the signal is unset and the task's waker is the one
/// already registered (the common case: a connection task polled again and again); the
/// event's lock is taken only to register a new waker.
#[derive(Debug, Default)]
pub(crate) struct SignalWait {
    listener: Option<EventListener>,
    registered: Option<Waker>,
}

impl SignalWait {
    /// Ready once `signal` is set.
    pub(crate) fn poll(&mut self, signal: &Signal, cx: &mut Context<'_>) -> Poll<()> {
        if signal.is_set() {
            self.listener = None;
            self.registered = None;
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let listener = self.listener.get_or_insert_with(|| signal.event.listen());
        // Set between the first check and `listen`: the listener would never fire.
        if signal.is_set() {
            self.listener = None;
            return Poll::Ready(());
        }
        if std::pin::Pin::new(listener).poll(cx).is_ready() {
            self.listener = None;
            self.registered = None;
            return Poll::Ready(());
        }
        self.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// "Look again": waiters re-check their condition after each [`notify`](Self::notify).
/// Registrations die with the [`NotifyWait`] that holds them.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    event: Event,
    /// Waits armed and not yet over: with none, a notification is one atomic load instead
    /// of the event's lock (it is sent after every write and every request's end, and
    /// almost never has a waiter).
    armed: Arc<AtomicUsize>,
}

impl Notify {
    /// Wakes every current waiter.
    pub(crate) fn notify(&self) {
        // Pairs with the increment in `NotifyWait::arm`: a waiter counted after this load
        // registers, then checks its condition, which the caller changed before notifying
        // (the listen / re-check / wait pattern), so it cannot miss the change.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.armed.load(Ordering::SeqCst) == 0 {
            return;
        }
        self.event.notify(usize::MAX);
    }

    /// Waiters registered right now.
    pub(crate) fn waiters(&self) -> usize {
        self.event.total_listeners()
    }
}

/// One task's wait on a [`Notify`]. The caller follows the listen / re-check / wait pattern:
/// [`arm`](Self::arm) before checking its condition, [`poll`](Self::poll) after finding it
/// false, so that a notification between the check and the wait is never lost.
#[derive(Debug, Default)]
pub(crate) struct NotifyWait {
    /// The registration, and the count of armed waits it is part of.
    listener: Option<(EventListener, Armed)>,
}

/// One armed wait, counted in its [`Notify`] until dropped.
#[derive(Debug)]
struct Armed(Arc<AtomicUsize>);

impl Drop for Armed {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl NotifyWait {
    /// Registers interest (if not registered yet).
    pub(crate) fn arm(&mut self, notify: &Notify) {
        if self.listener.is_none() {
            notify.armed.fetch_add(1, Ordering::SeqCst);
            let armed = Armed(Arc::clone(&notify.armed));
            self.listener = Some((notify.event.listen(), armed));
        }
    }

    /// Ready once a notification came after [`arm`](Self::arm); the wait is then disarmed.
    /// Ready at once if not armed (the caller checks its condition again).
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((listener, _)) = &mut self.listener else {
            return Poll::Ready(());
        };
        if std::pin::Pin::new(listener).poll(cx).is_ready() {
            self.listener = None;
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// A flag with at most one waiter at a time (a request's handler task).
#[derive(Debug, Default)]
pub(crate) struct OneWaiter {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl OneWaiter {
    pub(crate) fn set(&self) {
        if !self.set.swap(true, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Ready once set; otherwise the calling task (replacing any earlier one) is woken then.
    pub(crate) fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_set() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.is_set() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(wait: &mut NotifyWait) -> Poll<()> {
        wait.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn notify_wakes_armed_waits_and_counts_them_out() {
        let notify = Notify::default();
        // Nobody waits: nothing to do, nothing kept.
        notify.notify();
        assert_eq!(notify.armed.load(Ordering::SeqCst), 0);

        let mut a = NotifyWait::default();
        let mut b = NotifyWait::default();
        a.arm(&notify);
        b.arm(&notify);
        a.arm(&notify); // armed once, however often asked
        assert_eq!(notify.armed.load(Ordering::SeqCst), 2);
        assert!(poll(&mut a).is_pending());
        notify.notify();
        assert!(poll(&mut a).is_ready());
        assert_eq!(notify.armed.load(Ordering::SeqCst), 1, "a's wait is over");
        drop(b); // dropped while armed: counted out too
        assert_eq!(notify.armed.load(Ordering::SeqCst), 0);
        assert_eq!(notify.waiters(), 0);
    }

    #[test]
    fn a_wait_armed_after_a_notification_waits_for_the_next() {
        let notify = Notify::default();
        let mut early = NotifyWait::default();
        early.arm(&notify);
        notify.notify();
        let mut late = NotifyWait::default();
        late.arm(&notify);
        assert!(poll(&mut early).is_ready());
        assert!(poll(&mut late).is_pending());
        notify.notify();
        assert!(poll(&mut late).is_ready());
    }
}

/// A waker for one source a task polls (see the module documentation). Poll the source with
/// [`waker`](Self::waker) when [`poll_source`](Self::poll_source) says so.
pub(crate) struct WakeFlag {
    shared: Arc<FlagShared>,
    /// `shared` as a waker.
    waker: Waker,
}

#[derive(Default)]
struct FlagShared {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for FlagShared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Default for WakeFlag {
    fn default() -> Self {
        let shared = Arc::new(FlagShared::default());
        Self {
            waker: Waker::from(Arc::clone(&shared)),
            shared,
        }
    }
}

impl WakeFlag {
    /// Makes the source's next wake-up reach the task polling now (every poll: a wake-up
    /// uses the registration up).
    pub(crate) fn register(&self, cx: &Context<'_>) {
        self.shared.task.register(cx.waker());
    }

    /// Whether the source woke the task since the last call (and clears that).
    pub(crate) fn take_woken(&self) -> bool {
        self.shared.woken.swap(false, Ordering::AcqRel)
    }

    /// What to poll the source with.
    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }
}
