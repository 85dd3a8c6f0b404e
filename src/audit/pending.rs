//! Operation entries waiting to be written. One store transaction per operation would cost
//! more than a decryption, so `audit = "operations"` writes them in batches: when a second
//! has passed since the oldest waiting entry, when `MAX_WAITING` wait, at logout and at
//! C_Finalize. Checked on the calling thread (a library starts no threads of its own), so a
//! process killed without C_Finalize loses the entries of its last second of operations,
//! and a process that stops working keeps its last entries until it logs out or finalises.

use std::time::{Duration, Instant};

/// How long an entry may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(1);
/// How many entries may wait.
pub const MAX_WAITING: usize = 4096;

/// Entries (`T`: what they are made of, turned into text only when written, off the
/// operations' path) in the order they happened; an entry alike the one before is folded
/// into it (a count), so a busy key costs one entry a second, not one per operation.
pub struct PendingEntries<T> {
    entries: Vec<T>,
    oldest: Option<Instant>,
}

impl<T> Default for PendingEntries<T> {
    fn default() -> Self {
        PendingEntries {
            entries: Vec::new(),
            oldest: None,
        }
    }
}

impl<T> PendingEntries<T> {
    /// Adds `entry`, or folds it into the newest one when `fold(newest, &entry)` does;
    /// returns the batch to write now when one is due.
    pub fn push(
        &mut self,
        entry: T,
        now: Instant,
        fold: impl FnOnce(&mut T, &T) -> bool,
    ) -> Option<Vec<T>> {
        let oldest = *self.oldest.get_or_insert(now);
        let folded = self
            .entries
            .last_mut()
            .is_some_and(|last| fold(last, &entry));
        if !folded {
            self.entries.push(entry);
        }
        let due = self.entries.len() >= MAX_WAITING || now.duration_since(oldest) >= MAX_WAIT;
        due.then(|| self.take())
    }

    /// Every waiting entry, oldest first; none wait afterwards.
    pub fn take(&mut self) -> Vec<T> {
        self.oldest = None;
        std::mem::take(&mut self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &mut String, _: &String) -> bool {
        false
    }

    #[test]
    fn alike_entries_fold_into_one() {
        let now = Instant::now();
        let mut p = PendingEntries::<(char, u32)>::default();
        let fold = |last: &mut (char, u32), new: &(char, u32)| {
            let same = last.0 == new.0;
            if same {
                last.1 += new.1;
            }
            same
        };
        for c in ['a', 'a', 'b', 'a'] {
            assert_eq!(p.push((c, 1), now, fold), None);
        }
        assert_eq!(p.take(), [('a', 2), ('b', 1), ('a', 1)]);
    }

    #[test]
    fn a_batch_is_due_after_a_second_or_when_full() {
        let start = Instant::now();
        let mut p = PendingEntries::<String>::default();
        assert_eq!(p.push("a".into(), start, never), None);
        assert_eq!(
            p.push("b".into(), start + Duration::from_millis(500), never),
            None
        );
        assert_eq!(
            p.push("c".into(), start + MAX_WAIT, never),
            Some(vec!["a".to_string(), "b".into(), "c".into()])
        );
        assert!(p.take().is_empty());
        let later = start + Duration::from_secs(10);
        for n in 1..MAX_WAITING {
            assert_eq!(p.push(n.to_string(), later, never), None);
        }
        assert_eq!(
            p.push("last".into(), later, never).map(|b| b.len()),
            Some(MAX_WAITING)
        );
    }
}
