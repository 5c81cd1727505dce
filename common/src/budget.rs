//! Memory budgets for half-received requests: one per client, one for all clients together.
//!
//! A client announcing a 500 MB bulk string, or ten thousand clients each announcing 1 MB,
//! must not make a server allocate without bound. Each connection reports how many request
//! bytes it holds; the [`Budget`] keeps the total and says when a connection must be closed.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The process-wide total and the two limits.
#[derive(Debug)]
pub struct Budget {
    held: AtomicUsize,
    per_client: usize,
    total: usize,
}

impl Budget {
    pub fn new(per_client: usize, total: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            per_client,
            total,
        }
    }

    /// Bytes held by all clients now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// A connection's share; returned to the budget when dropped.
    pub fn share(&self) -> Share<'_> {
        Share {
            budget: self,
            counted: 0,
        }
    }
}

/// What one connection holds of a [`Budget`].
pub struct Share<'a> {
    budget: &'a Budget,
    counted: usize,
}

impl Share<'_> {
    /// Records that the connection now holds `now` bytes; false when over either limit.
    pub fn update(&mut self, now: usize) -> bool {
        let held = &self.budget.held;
        if now > self.counted {
            held.fetch_add(now - self.counted, Ordering::Relaxed);
        } else {
            held.fetch_sub(self.counted - now, Ordering::Relaxed);
        }
        self.counted = now;
        now <= self.budget.per_client && held.load(Ordering::Relaxed) <= self.budget.total
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.counted, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn limits_per_client_and_in_total() {
        let budget = Budget::new(100, 150);
        let mut a = budget.share();
        let mut b = budget.share();
        assert!(a.update(100));
        assert!(!a.update(101));
        assert!(a.update(80));
        assert!(!b.update(80), "80 + 80 is over the total of 150");
        drop(a);
        assert_eq!(budget.held(), 80);
        assert!(b.update(80));
    }
}
