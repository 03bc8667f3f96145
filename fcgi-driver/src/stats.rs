//! Live-object counters: each counted thing holds a [`Token`] and is counted exactly as long
//! as it exists, so a counter that does not come back down is a leak, not a bookkeeping slip.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A count of live [`Token`]s.
#[derive(Debug, Default, Clone)]
pub(crate) struct Gauge(Arc<AtomicUsize>);

impl Gauge {
    /// A token counted until it is dropped.
    pub(crate) fn token(&self) -> Token {
        self.0.fetch_add(1, Ordering::Relaxed);
        Token(Arc::clone(&self.0))
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counted in its [`Gauge`] while it lives.
#[derive(Debug)]
pub(crate) struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
