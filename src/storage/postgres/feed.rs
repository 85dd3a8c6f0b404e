//! Change detection across hosts: every write transaction of a token notifies the channel
//! `ferrohsm_changes` with the token's slot id and the writing location's random id
//! (delivered to listeners at commit); one thread per location listens and raises the
//! changed flag of the token, so that `data_changed` costs an atomic read, as SQLite's
//! `data_version` costs a page read. A location's own writes are not changes for it.
//!
//! The thread exists while the library is initialised: dropping the feed (C_Finalize)
//! stops and joins it within `POLL`, however busy the channel (a forked child never runs
//! it: its inherited library is forgotten). While its connection is down, nothing is
//! flagged; when it is back, every token is flagged, since notifications may have been
//! missed meanwhile.

use super::connect::Connector;
use fallible_iterator::FallibleIterator;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const CHANNEL: &str = "ferrohsm_changes";
/// How long the listener waits for a notification before looking at its stop flag.
const POLL: Duration = Duration::from_millis(100);
/// The shortest wait between two attempts to reach a database that is down.
const RETRY: Duration = Duration::from_secs(1);

type Flags = Mutex<HashMap<i64, Arc<AtomicBool>>>;

pub struct ChangeFeed {
    /// Written into every notification of this location's writes.
    pub writer: u64,
    flags: Arc<Flags>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ChangeFeed {
    pub fn start(connector: Arc<Connector>) -> ChangeFeed {
        let writer = rand::random::<u64>();
        let flags: Arc<Flags> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (flags, stop) = (flags.clone(), stop.clone());
            std::thread::Builder::new()
                .name("ferrohsm-pg-listen".into())
                .spawn(move || listen(&connector, writer, &flags, &stop))
                .ok()
        };
        ChangeFeed {
            writer,
            flags,
            stop,
            thread,
        }
    }

    /// The changed flag of `slot`'s token (raised until its store takes it).
    pub fn flag(&self, slot: i64) -> Arc<AtomicBool> {
        self.flags
            .lock()
            .entry(slot)
            .or_insert_with(|| Arc::new(AtomicBool::new(true)))
            .clone()
    }

    /// The payload of a notification of a write to `slot` by this location.
    pub fn payload(&self, slot: i64) -> String {
        format!("{slot} {}", self.writer)
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn raise_all(flags: &Flags) {
    for flag in flags.lock().values() {
        flag.store(true, Ordering::SeqCst);
    }
}

fn listen(connector: &Connector, writer: u64, flags: &Flags, stop: &AtomicBool) {
    let mut next_attempt = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() < next_attempt {
            std::thread::sleep(POLL);
            continue;
        }
        next_attempt = Instant::now() + RETRY;
        let Ok(mut client) = connector.connect() else {
            continue;
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            continue;
        }
        // Whatever happened while we were not listening.
        raise_all(flags);
        while !stop.load(Ordering::SeqCst) && !client.is_closed() {
            let mut notifications = client.notifications();
            let mut arrived = notifications.timeout_iter(POLL);
            while let Ok(Some(n)) = arrived.next() {
                // Notifications can come faster than POLL for as long as another host
                // writes: the stop flag is looked at between them too.
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let mut fields = n.payload().split(' ');
                let slot = fields.next().and_then(|s| s.parse::<i64>().ok());
                let from = fields.next().and_then(|w| w.parse::<u64>().ok());
                if from == Some(writer) {
                    continue;
                }
                match slot.and_then(|s| flags.lock().get(&s).cloned()) {
                    Some(flag) => flag.store(true, Ordering::SeqCst),
                    // A token this location has not opened (or a payload it cannot read).
                    None if slot.is_none() => raise_all(flags),
                    None => {}
                }
            }
        }
    }
}
