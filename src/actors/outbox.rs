//! Outbox: the realtime listeners of one worker thread share their messages to the publisher.
//!
//! A listener posts the events that fell due and waits for its share's [`Admission`] before
//! it posts again, so its own events stay in order. The outbox sends what was posted as one
//! [`SimEvents`] message, one message in flight at a time: what falls due while a message is
//! on its way goes in the next. One message per listener and wake-up made the publisher's
//! mailbox the bottleneck at many listeners (96 000 listeners: events reached the topic
//! 0.9 s late at the median); sharing, the batch grows with the load instead.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::Shared;

use crate::messages::{Admission, OutRecord, SimEvents};

use super::publisher::Publisher;

/// Most records and bytes in one message (as the max-rate conductor's chunks): the publisher
/// handles a message at once, and the bus takes a whole message even when it is nearly full.
const MAX_MESSAGE: usize = 8192;
const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// What a listener learns: the publisher's admission of the whole message its records went
/// in (`accepted` counts every listener's), or `None` when the publisher refused it or is gone
/// (the run is ending).
pub type Outcome = Shared<oneshot::Receiver<Option<Admission>>>;

pub struct Outbox {
    publisher: Addr<Publisher>,
    // Only the worker thread's listeners and sender touch it: the lock is never contended.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Messages not sent yet, oldest first.
    queued: VecDeque<Pending>,
    /// A sender task is running on the worker thread.
    sending: bool,
}

struct Pending {
    records: Vec<OutRecord>,
    bytes: usize,
    done: oneshot::Sender<Option<Admission>>,
    outcome: Outcome,
}

impl Pending {
    fn new() -> Self {
        let (done, rx) = oneshot::channel();
        Pending {
            records: Vec::new(),
            bytes: 0,
            done,
            outcome: rx.shared(),
        }
    }
}

impl Outbox {
    pub fn new(publisher: Addr<Publisher>) -> Arc<Self> {
        Arc::new(Outbox {
            publisher,
            state: Mutex::new(State::default()),
        })
    }

    /// Queues `records` behind everything posted before; must be called on an actix thread
    /// (the sender runs there).
    pub fn post(self: &Arc<Self>, records: Vec<OutRecord>) -> Outcome {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let bytes: usize = records.iter().map(|r| r.value.len()).sum();
        let full = |p: &Pending| {
            !p.records.is_empty()
                && (p.records.len() + records.len() > MAX_MESSAGE
                    || p.bytes + bytes > MAX_MESSAGE_BYTES)
        };
        if st.queued.back().is_none_or(full) {
            st.queued.push_back(Pending::new());
        }
        let last = st.queued.back_mut().expect("a message was just queued");
        last.bytes += bytes;
        last.records.extend(records);
        let outcome = last.outcome.clone();
        if !st.sending {
            st.sending = true;
            actix::spawn(self.clone().send_all());
        }
        outcome
    }

    /// Sends the queued messages one after the other until none is left.
    async fn send_all(self: Arc<Self>) {
        loop {
            // Listeners woken in the same pass post before the message leaves.
            tokio::task::yield_now().await;
            let next = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let next = st.queued.pop_front();
                st.sending = next.is_some();
                next
            };
            let Some(p) = next else { return };
            let res = self.publisher.send(SimEvents { records: p.records }).await;
            let _ = p.done.send(res.ok().and_then(Result::ok));
        }
    }
}
