//! A disk in memory that can lose power, for tests of what survives a power cut (SPEC §4: "once
//! a client has read the answer, a crash or power cut does not undo it"). SIGKILL cannot show
//! a missing fsync (the page cache survives it); this disk can: it records every write, and
//! at a cut keeps only what an fsync made durable, optionally plus a random subset of the
//! pages written since (torn writes: a disk that wrote some of its queue before the power
//! went). It holds two files, the database and its commit log, and one cut takes both at the
//! same moment. Production never uses it; only [`super::Store::open_on_power_cut`] does.

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

/// The database file.
pub(super) const DATABASE: usize = 0;
/// The commit log.
pub(super) const LOG: usize = 1;

/// One file on the disk.
#[derive(Debug, Default)]
struct FileState {
    /// What reads see.
    current: Vec<u8>,
    /// What the last fsync made durable.
    durable: Vec<u8>,
    /// Changes since then, in order.
    pending: Vec<Pending>,
}

#[derive(Debug, Default)]
struct State {
    files: [FileState; 2],
    /// Writes, length changes and fsyncs so far, to either file.
    ops: u64,
    /// The cut comes instead of this operation.
    cut_at: Option<u64>,
    /// `Some(seed)`: a random subset of the pending pages survives the cut.
    torn: Option<u64>,
    /// After the cut: the files as the power cut left them. Every later operation fails.
    survivor: Option<[Vec<u8>; 2]>,
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

    /// A disk holding `images` (database, log), all of it durable.
    fn from_images(images: [Vec<u8>; 2]) -> Self {
        let disk = Self::default();
        {
            let mut state = disk.lock();
            for (file, image) in state.files.iter_mut().zip(images) {
                file.durable = image.clone();
                file.current = image;
            }
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

    /// The disk as the cut left it, powered up again; `None` while the power is on.
    pub fn survivor(&self) -> Option<PowerCut> {
        let images = self.lock().survivor.clone()?;
        Some(Self::from_images(images))
    }

    /// The database file as it is now (what reads see).
    pub fn database(&self) -> Vec<u8> {
        self.lock().files[DATABASE].current.clone()
    }

    /// Removes the commit log (a clean close does): the file is empty from then on.
    pub(super) fn remove_log(&self) -> io::Result<()> {
        let mut state = self.step()?;
        state.files[LOG] = FileState::default();
        Ok(())
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
    let mut rng = state.torn.map(|seed| seed | 1);
    let images = [DATABASE, LOG].map(|i| cut_file(&mut state.files[i], &mut rng));
    state.survivor = Some(images);
}

/// What a cut leaves of `file`: what was synced, and with `rng`, a random part of the rest.
fn cut_file(file: &mut FileState, rng: &mut Option<u64>) -> Vec<u8> {
    let mut image = file.durable.clone();
    for change in &file.pending {
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
    file.pending.clear();
    image
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

/// A file on a [`PowerCut`] disk, as redb (or the commit log) opens it.
#[derive(Debug)]
pub(super) struct PowerCutFile {
    pub(super) disk: PowerCut,
    /// [`DATABASE`] or [`LOG`].
    pub(super) file: usize,
}

impl StorageBackend for PowerCutFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.disk.lock().files[self.file].current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.disk.lock();
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let bytes = start
            .checked_add(out.len())
            .and_then(|end| state.files[self.file].current.get(start..end))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.disk.step()?;
        let file = &mut state.files[self.file];
        file.current
            .resize(usize::try_from(len).map_err(io::Error::other)?, 0);
        file.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.disk.step()?;
        let file = &mut state.files[self.file];
        file.durable = file.current.clone();
        file.pending.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.disk.step()?;
        let file = &mut state.files[self.file];
        write_into(&mut file.current, offset, data);
        file.pending.push(Pending::Write(offset, data.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_keeps_what_was_synced_and_no_more() {
        let disk = PowerCut::new();
        let file = PowerCutFile {
            disk: disk.clone(),
            file: DATABASE,
        };
        let log = PowerCutFile {
            disk: disk.clone(),
            file: LOG,
        };
        file.write(0, b"synced").unwrap();
        file.sync_data().unwrap();
        log.write(0, b"log").unwrap();
        log.sync_data().unwrap();
        file.write(0, b"lost!!").unwrap();
        log.write(0, b"LOG").unwrap();
        disk.cut_now();
        assert_eq!(disk.survivor().unwrap().database(), b"synced");
        assert_eq!(disk.survivor().unwrap().lock().files[LOG].current, b"log");
        assert!(file.write(0, b"x").is_err() && file.sync_data().is_err());
    }

    #[test]
    fn a_torn_cut_keeps_some_unsynced_pages_whole() {
        let disk = PowerCut::new();
        let file = PowerCutFile {
            disk: disk.clone(),
            file: DATABASE,
        };
        file.set_len(8 * PAGE).unwrap();
        file.sync_data().unwrap();
        let op = disk.ops();
        for page in 0..8 {
            file.write(page * PAGE, &[page as u8 + 1; PAGE as usize])
                .unwrap();
        }
        disk.cut_at(op + 9, Some(7));
        assert!(file.sync_data().is_err());
        let image = disk.survivor().unwrap().database();
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
