//! Spreading independent work over the machine's cores, keeping the order of the results.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// `items.iter().map(f).collect()`, computed on as many threads as there are cores (and items):
/// each thread takes the next item not yet taken, so one slow item does not hold up a share.
/// The results come back in the order of `items`.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let work = || {
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(at) else { break };
            let result = f(item);
            results.lock().unwrap_or_else(PoisonError::into_inner)[at] = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    // Every slot is filled: each index was taken by exactly one thread, and a thread that
    // panicked would have made the scope panic.
    results.into_inner().unwrap_or_else(PoisonError::into_inner).into_iter().flatten().collect()
}

/// Drops `value` on a thread of its own: freeing tens of thousands of small allocations takes a
/// tenth of a second or more, which the caller need not wait for (a command can go on to commit
/// and print, and its process may exit before the thread is done). When no thread can be
/// started, `spawn` drops the closure, and the value with it, before returning.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    let freeing = std::thread::Builder::new().name("drop".to_owned());
    // A detached thread: nothing waits for it, so its handle and any error are of no use.
    let _ = freeing.spawn(move || drop(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = map(&items, |n| {
            // Uneven work, so threads finish out of order.
            if n % 7 == 0 {
                std::thread::yield_now();
            }
            n * n
        });
        assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        assert!(map(&[] as &[u64], |n| *n).is_empty());
    }
}
