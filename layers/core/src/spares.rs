//! [`Spares`]: buffers a thread keeps for its next requests, so that a request takes one
//! instead of allocating its own.

use std::cell::RefCell;
use std::thread::LocalKey;

/// How many spare buffers a thread keeps: a request that ends on another thread than it
/// started on gives its buffer to that thread, whose spares are then bounded.
const MAX_SPARES: usize = 64;

/// A thread's spare `Vec<T>`s, in a `thread_local!` of the crate that uses them.
///
/// ```
/// use tower_plugins_core::Spares;
///
/// thread_local! {
///     static BUFFERS: Spares<u8> = const { Spares::new() };
/// }
///
/// let mut buf = Spares::take(&BUFFERS, 64);
/// buf.extend_from_slice(b"a line");
/// Spares::give_back(&BUFFERS, buf, 4096);
/// let again = Spares::take(&BUFFERS, 64);
/// assert!(again.is_empty() && again.capacity() >= 6);
/// ```
#[derive(Debug)]
pub struct Spares<T> {
    spares: RefCell<Vec<Vec<T>>>,
}

impl<T> Spares<T> {
    /// No spares yet.
    #[must_use]
    pub const fn new() -> Self {
        Spares {
            spares: RefCell::new(Vec::new()),
        }
    }

    /// An empty buffer: a spare of this thread's, or a new one of `capacity`.
    #[inline]
    pub fn take(key: &'static LocalKey<Self>, capacity: usize) -> Vec<T> {
        key.try_with(|s| s.spares.try_borrow_mut().ok()?.pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    /// Keeps `buf`, emptied, for a later request, unless its capacity is past `max_capacity`,
    /// the thread has enough spares or is ending: then it is freed.
    #[inline]
    pub fn give_back(key: &'static LocalKey<Self>, mut buf: Vec<T>, max_capacity: usize) {
        if buf.capacity() == 0 || buf.capacity() > max_capacity {
            return;
        }
        buf.clear();
        let _ = key.try_with(|s| {
            if let Ok(mut spares) = s.spares.try_borrow_mut() {
                if spares.len() < MAX_SPARES {
                    spares.push(buf);
                }
            }
        });
    }
}

impl<T> Default for Spares<T> {
    fn default() -> Self {
        Self::new()
    }
}
