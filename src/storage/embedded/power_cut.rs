//! A disk in memory that can lose power, for tests of what survives a power cut (SPEC §4: "once
//! a client has read the answer, a crash or power cut does not undo it"). SIGKILL cannot show
//! a missing fsync (the page cache survives it); this disk can: it records every write, and
//! at a cut keeps only what an fsync made durable, optionally plus a random subset of the
//! pages written since (torn writes: a disk that wrote some of its queue before the power
//! went). Production never uses it; only [`super::Store::open_on_power_cut`] does.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::StorageBackend;

/// The unit a torn write keeps or loses.
const PAGE: u64 = 4096;

/// One change to the file since the last fsync.
#[derive(Debug)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Default)]
struct State {
    /// What reads see.
    current: Vec<u8>,
    /// What the last fsync made durable.
    durable: Vec<u8>,
    /// Changes since then, in order.
    pending: Vec<Pending>,
    /// Writes, length changes and fsyncs so far.
    ops: u64,
    /// The cut comes instead of this operation.
    cut_at: Option<u64>,
    /// `Some(seed)`: a random subset of the pending pages survives the cut.
    torn: Option<u64>,
    /// After the cut: the file as the power cut left it. Every later operation fails.
    survivor: Option<Vec<u8>>,
}

/// A shared handle on one disk: the test keeps one, every backend opened on it another.
#[derive(Debug, Clone, Default)]
pub struct PowerCut {
    state: Arc<Mutex<State>>,
}

impl PowerCut {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk holding `image`, all of it durable (a file after a power cut, powered up again).
    pub fn from_image(image: Vec<u8>) -> Self {
        let disk = Self::default();
        {
            let mut state = disk.lock();
            state.durable = image.clone();
            state.current = image;
        }
        disk
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes, length changes and fsyncs done so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Cuts the power instead of operation number `op` (see [`PowerCut::ops`]). With
    /// `torn: Some(seed)`, each page written since the last fsync survives with probability 1/2.
    pub fn cut_at(&self, op: u64, torn: Option<u64>) {
        let mut state = self.lock();
        state.cut_at = Some(op);
        state.torn = torn;
    }

    /// Cuts the power now, if it is still on.
    pub fn cut_now(&self) {
        let mut state = self.lock();
        if state.survivor.is_none() {
            cut(&mut state);
        }
    }

    /// The file as the cut left it; `None` while the power is on.
    pub fn survivor(&self) -> Option<Vec<u8>> {
        self.lock().survivor.clone()
    }

    /// Counts one operation; fails it if the power is (now) off.
    fn step<'a>(&'a self) -> io::Result<MutexGuard<'a, State>> {
        let mut state = self.lock();
        state.ops += 1;
        if state.survivor.is_none() && state.cut_at.is_some_and(|at| state.ops >= at) {
            cut(&mut state);
        }
        if state.survivor.is_some() {
            return Err(io::Error::other("power cut"));
        }
        Ok(state)
    }

    /// Writes and syncs a scratch area: whether the disk works (the store's probe before it
    /// reopens a database after a failed commit).
    pub(super) fn probe(&self) -> io::Result<()> {
        self.step().map(drop)
    }
}

fn cut(state: &mut State) {
    let mut image = state.durable.clone();
    let mut rng = state.torn.map(|seed| seed | 1);
    for change in &state.pending {
        let Some(seed) = rng.as_mut() else { break };
        match change {
            Pending::SetLen(len) => {
                if coin(seed) {
                    image.resize(usize::try_from(*len).unwrap_or(0), 0);
                }
            }
            Pending::Write(offset, data) => {
                let mut at = 0;
                while at < data.len() {
                    let page_end = ((offset + at as u64) / PAGE + 1) * PAGE;
                    let end = data.len().min((page_end - offset) as usize);
                    if coin(seed) {
                        write_into(&mut image, offset + at as u64, &data[at..end]);
                    }
                    at = end;
                }
            }
        }
    }
    state.pending.clear();
    state.survivor = Some(image);
}

/// xorshift64: heads or tails.
fn coin(seed: &mut u64) -> bool {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed & 1 == 1
}

fn write_into(file: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = start.saturating_add(data.len());
    if file.len() < end {
        file.resize(end, 0);
    }
    file[start..end].copy_from_slice(data);
}

/// The backend redb opens on a [`PowerCut`] disk.
#[derive(Debug)]
pub(super) struct PowerCutFile {
    pub(super) disk: PowerCut,
}

impl StorageBackend for PowerCutFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.disk.lock().current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.disk.lock();
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let bytes = start
            .checked_add(out.len())
            .and_then(|end| state.current.get(start..end))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.disk.step()?;
        state
            .current
            .resize(usize::try_from(len).map_err(io::Error::other)?, 0);
        state.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.disk.step()?;
        state.durable = state.current.clone();
        state.pending.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.disk.step()?;
        write_into(&mut state.current, offset, data);
        state.pending.push(Pending::Write(offset, data.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_keeps_what_was_synced_and_no_more() {
        let disk = PowerCut::new();
        let file = PowerCutFile { disk: disk.clone() };
        file.write(0, b"synced").unwrap();
        file.sync_data().unwrap();
        file.write(0, b"lost!!").unwrap();
        disk.cut_now();
        assert_eq!(disk.survivor().unwrap(), b"synced");
        assert!(file.write(0, b"x").is_err() && file.sync_data().is_err());
    }

    #[test]
    fn a_torn_cut_keeps_some_unsynced_pages_whole() {
        let disk = PowerCut::new();
        let file = PowerCutFile { disk: disk.clone() };
        file.set_len(8 * PAGE).unwrap();
        file.sync_data().unwrap();
        let op = disk.ops();
        for page in 0..8 {
            file.write(page * PAGE, &[page as u8 + 1; PAGE as usize])
                .unwrap();
        }
        disk.cut_at(op + 9, Some(7));
        assert!(file.sync_data().is_err());
        let image = disk.survivor().unwrap();
        let kept: Vec<bool> = image
            .chunks(PAGE as usize)
            .enumerate()
            .map(|(i, page)| {
                assert!(page.iter().all(|&b| b == page[0]), "page {i} torn inside");
                page[0] != 0
            })
            .collect();
        assert!(
            kept.iter().any(|&k| k) && kept.iter().any(|&k| !k),
            "{kept:?}"
        );
    }
}
