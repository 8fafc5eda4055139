//! A de-duplicating work queue with delayed retries, shared by the collector's workers.
//!
//! An item queued twice before a worker takes it is handled once. Delayed items wait in
//! the queue itself (moved over by [`WorkQueue::promote_due`]) rather than in spawned
//! sleep tasks, so nothing outlives the leadership term that owns the queue.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub struct WorkQueue<T> {
    items: Mutex<QueuedItems<T>>,
    ready: Notify,
}

/// The items of a [`WorkQueue`]: ready in order, the set of those queued (to drop
/// duplicates), and those waiting for their time.
struct QueuedItems<T> {
    order: VecDeque<T>,
    queued: HashSet<T>,
    delayed: Vec<(Instant, T)>,
}

impl<T: Clone + Eq + Hash> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue {
            items: Mutex::new(QueuedItems {
                order: VecDeque::new(),
                queued: HashSet::new(),
                delayed: Vec::new(),
            }),
            ready: Notify::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> WorkQueue<T> {
    pub fn push(&self, item: T) {
        let added = {
            let mut items = self.items.lock().expect("queue lock");
            if items.queued.insert(item.clone()) {
                items.order.push_back(item);
                true
            } else {
                false
            }
        };
        if added {
            self.ready.notify_one();
        }
    }

    pub fn extend(&self, items: impl IntoIterator<Item = T>) {
        for item in items {
            self.push(item);
        }
    }

    /// Queue `item` again after `delay`.
    pub fn push_after(&self, item: T, delay: Duration) {
        let mut items = self.items.lock().expect("queue lock");
        items.delayed.push((Instant::now() + delay, item));
    }

    /// Move delayed items whose time has come into the queue.
    pub fn promote_due(&self) {
        let now = Instant::now();
        let due: Vec<T> = {
            let mut items = self.items.lock().expect("queue lock");
            let (due, later): (Vec<_>, Vec<_>) =
                items.delayed.drain(..).partition(|(at, _)| *at <= now);
            items.delayed = later;
            due.into_iter().map(|(_, item)| item).collect()
        };
        self.extend(due);
    }

    /// Move every delayed item into the queue now.
    pub fn promote_all(&self) {
        let all: Vec<T> = {
            let mut items = self.items.lock().expect("queue lock");
            items.delayed.drain(..).map(|(_, item)| item).collect()
        };
        self.extend(all);
    }

    /// Wait for the next item.
    pub async fn pop(&self) -> T {
        loop {
            let notified = self.ready.notified();
            {
                let mut items = self.items.lock().expect("queue lock");
                if let Some(item) = items.order.pop_front() {
                    items.queued.remove(&item);
                    // Wake another worker if more is waiting.
                    if !items.order.is_empty() {
                        self.ready.notify_one();
                    }
                    return item;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duplicates_are_handled_once() {
        let q = WorkQueue::default();
        q.push(1);
        q.push(2);
        q.push(1);
        assert_eq!(q.pop().await, 1);
        assert_eq!(q.pop().await, 2);
        q.push(1);
        assert_eq!(q.pop().await, 1);
    }

    #[tokio::test]
    async fn delayed_items_wait_until_due() {
        let q = WorkQueue::default();
        q.push_after(7, Duration::from_secs(3600));
        q.push_after(8, Duration::ZERO);
        q.promote_due();
        assert_eq!(q.pop().await, 8);
        assert_eq!(q.items.lock().unwrap().delayed.len(), 1);
        q.promote_all();
        assert_eq!(q.pop().await, 7);
    }
}
