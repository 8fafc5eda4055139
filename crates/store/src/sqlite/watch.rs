//! Watch streams: history replay followed by live events, gap- and duplicate-free.
//!
//! The order of steps is what makes this correct. The caller subscribes to the live
//! broadcast *first* and only then reads the current revision `upto`. Every event at or
//! below `upto` is committed, so the replay from the log finds it; every event above it
//! is broadcast after the subscription, so the receiver gets it. Events that show up on
//! both paths are dropped by revision. A receiver that lags loses broadcast batches, so
//! it ends with an error instead of pretending nothing happened.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::history::History;
use super::EventBatch;
use crate::{Error, Event, Result, WatchLagged, WatchStream};

/// Events replayed per history query; bounds the memory of a long replay.
const REPLAY_PAGE: usize = 512;

struct WatchState {
    history: Arc<History>,
    live: broadcast::Receiver<EventBatch>,
    prefix: String,
    /// Replay has covered revisions up to here.
    replayed: i64,
    /// Replay stops here; from then on only the broadcast is read.
    upto: i64,
    /// Highest revision handed to the buffer (whether or not it matched the prefix).
    seen: i64,
    buffer: VecDeque<Event>,
    finished: bool,
}

pub(crate) fn stream(
    history: Arc<History>,
    live: broadcast::Receiver<EventBatch>,
    prefix: String,
    after: i64,
    upto: i64,
) -> WatchStream {
    let state = WatchState {
        history,
        live,
        prefix,
        replayed: after,
        upto,
        seen: after.max(upto),
        buffer: VecDeque::new(),
        finished: false,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            if self.replayed < self.upto {
                let page = self
                    .history
                    .events(self.prefix.clone(), self.replayed, self.upto, REPLAY_PAGE)
                    .await;
                match page {
                    Ok((events, covered)) => {
                        self.buffer.extend(events);
                        self.replayed = covered;
                    }
                    Err(error) => return Some(self.fail(error)),
                }
                continue;
            }
            match self.live.recv().await {
                Ok(batch) => {
                    for event in batch.iter() {
                        if event.revision() <= self.seen {
                            continue;
                        }
                        self.seen = event.revision();
                        if event.kv.key.starts_with(&self.prefix) {
                            self.buffer.push_back(event.clone());
                        }
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let lagged = WatchLagged {
                        last_delivered: self.seen,
                        missed,
                    };
                    return Some(self.fail(Error::backend("watch", lagged)));
                }
                Err(RecvError::Closed) => return Some(self.fail(Error::Closed)),
            }
        }
    }

    fn fail(&mut self, error: Error) -> Result<Event> {
        self.finished = true;
        self.buffer.clear();
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::{EventKind, KeyValue};

    fn batch(revision: i64) -> EventBatch {
        Arc::from(vec![Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: format!("/k/{revision}"),
                value: vec![],
                create_revision: revision,
                mod_revision: revision,
            },
            prev: None,
        }])
    }

    #[tokio::test]
    async fn a_lagging_watcher_gets_an_error_instead_of_a_gap() {
        let (sender, receiver) = broadcast::channel(2);
        // Nothing to replay (after == upto), so the history is never opened.
        let history = Arc::new(History::new("/nonexistent/state.db".into()));
        let mut stream = stream(history, receiver, "/k/".into(), 0, 0);
        for revision in 1..=5 {
            sender.send(batch(revision)).unwrap();
        }
        let error = stream.next().await.unwrap().unwrap_err();
        assert!(error.is_watch_lagged(), "{error}");
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn live_events_are_filtered_and_deduplicated() {
        let (sender, receiver) = broadcast::channel(16);
        let history = Arc::new(History::new("/nonexistent/state.db".into()));
        // Replay is considered done through revision 2 (after = upto = 2).
        let mut stream = stream(history, receiver, "/k/".into(), 2, 2);
        for revision in 1..=4 {
            sender.send(batch(revision)).unwrap();
        }
        let mut other = batch(5).to_vec();
        other[0].kv.key = "/other/5".into();
        sender.send(Arc::from(other)).unwrap();
        sender.send(batch(6)).unwrap();
        let mut revisions = Vec::new();
        for _ in 0..3 {
            revisions.push(stream.next().await.unwrap().unwrap().revision());
        }
        assert_eq!(revisions, [3, 4, 6]);
    }
}
