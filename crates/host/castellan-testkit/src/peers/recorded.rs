//! What a running peer reports, item by item (output lines, or the JSON events a scripted
//! client prints): every item received is kept, in order, and a test waits for the first one
//! that matches.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// The items a peer reported so far ([`Deref`] to them), and those still arriving.
#[derive(Debug)]
pub struct Recorded<T> {
    rx: mpsc::UnboundedReceiver<T>,
    seen: Vec<T>,
}

impl<T: Clone + Send + 'static> Recorded<T> {
    /// Records the items sent on `rx`.
    pub fn new(rx: mpsc::UnboundedReceiver<T>) -> Recorded<T> {
        Recorded {
            rx,
            seen: Vec::new(),
        }
    }

    /// Records each line of every reader in `readers`, read by `parse` (lines it returns
    /// `None` for are skipped).
    pub fn lines<R>(readers: Vec<R>, parse: fn(String) -> Option<T>) -> Recorded<T>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        for reader in readers {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(reader).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(item) = parse(line) {
                        let _ = tx.send(item);
                    }
                }
            });
        }
        Recorded::new(rx)
    }

    /// The first item (already received or arriving within `limit`) matching `pred`.
    pub async fn wait(&mut self, pred: impl Fn(&T) -> bool, limit: Duration) -> Option<T> {
        if let Some(item) = self.seen.iter().find(|i| pred(i)) {
            return Some(item.clone());
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(item)) => {
                    self.seen.push(item.clone());
                    if pred(&item) {
                        return Some(item);
                    }
                }
                _ => return None,
            }
        }
    }

    /// Records whatever arrives within `limit` (to count what should not come).
    pub async fn drain(&mut self, limit: Duration) {
        let _ = self.wait(|_| false, limit).await;
    }
}

impl<T> Deref for Recorded<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        &self.seen
    }
}

impl<T> DerefMut for Recorded<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.seen
    }
}
