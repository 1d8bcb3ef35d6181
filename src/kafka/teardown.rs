//! Clients torn down off the caller's thread. rust-rdkafka's `AdminClient`, `ThreadedProducer`
//! and `FutureProducer` join a polling thread on drop that sleeps up to 100 ms between polls:
//! a sink's start-up made seven admin clients in turn, and every run ended waiting for its
//! producers, so these waits were most of a second of a short run.

/// Owns `T` and drops it on a thread of its own. Only for clients that hold no pending work
/// when dropped (admin clients; producers flushed or purged by their owners): nothing is lost
/// if the process exits before the drop is done.
pub(crate) struct Detached<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> Detached<T> {
    pub(crate) fn new(value: T) -> Detached<T> {
        Detached(Some(value))
    }
}

impl<T: Send + 'static> std::ops::Deref for Detached<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_ref().expect("taken only by drop")
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            // Should the thread not start, the closure (and the value) drops here instead.
            let _ = std::thread::Builder::new()
                .name("kafka-teardown".into())
                .spawn(move || drop(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    struct Slow(mpsc::Sender<std::thread::ThreadId>);

    impl Drop for Slow {
        fn drop(&mut self) {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let _ = self.0.send(std::thread::current().id());
        }
    }

    #[test]
    fn the_value_is_dropped_on_another_thread() {
        let (tx, rx) = mpsc::channel();
        drop(Detached::new(Slow(tx)));
        // The drop returned before the value's own drop finished: its report is not there yet.
        assert!(rx.try_recv().is_err());
        let by = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the value is dropped");
        assert_ne!(by, std::thread::current().id());
    }
}
