//! A file backend for redb whose writes, syncs and growth can be made to fail, so tests can
//! prove what a failing disk does to groupd: the calls in a failed commit are answered
//! `-32603`, nothing that is not durable is acknowledged, reads go on, and writes recover once
//! the fault clears. Production opens plain files; only [`super::Store::open_with_faults`] uses
//! this.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::StorageBackend;

use super::file::{ZeroFilledFile, delegate_locks};

/// Switches shared between a test and every backend opened with them (the store reopens its
/// database after a failure, and the new backend must obey the same switches).
#[derive(Debug, Clone, Default)]
pub struct DiskFaults {
    fail_writes: Arc<AtomicBool>,
    fail_syncs: Arc<AtomicBool>,
    full: Arc<AtomicBool>,
    panic_once: Arc<AtomicBool>,
}

impl DiskFaults {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every write fails with an I/O error.
    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }

    /// Every fsync fails with an I/O error.
    pub fn fail_syncs(&self, on: bool) {
        self.fail_syncs.store(on, Ordering::SeqCst);
    }

    /// The disk is full: the file cannot grow, and writes past its end fail.
    pub fn fill(&self, on: bool) {
        self.full.store(on, Ordering::SeqCst);
    }

    /// The next write or fsync panics, once: what a panic inside the storage engine looks like
    /// to groupd (SPEC §13 says it is caught and handled as a fault, never silent).
    pub fn panic_once(&self) {
        self.panic_once.store(true, Ordering::SeqCst);
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.fail_writes(false);
        self.fail_syncs(false);
        self.fill(false);
    }
}

/// groupd's file backend, with [`DiskFaults`] in front of its writes.
#[derive(Debug)]
pub(super) struct FaultyFile {
    inner: ZeroFilledFile,
    faults: DiskFaults,
}

impl FaultyFile {
    pub(super) fn new(file: File, faults: DiskFaults) -> Result<Self, redb::DatabaseError> {
        Ok(FaultyFile {
            inner: ZeroFilledFile::new(file)?,
            faults,
        })
    }

    fn maybe_panic(&self, what: &str) {
        if self.faults.panic_once.swap(false, Ordering::SeqCst) {
            panic!("injected panic in {what}");
        }
    }

    fn check(flag: &AtomicBool, what: &str) -> io::Result<()> {
        if flag.load(Ordering::SeqCst) {
            return Err(io::Error::other(format!("injected fault: {what}")));
        }
        Ok(())
    }

    fn check_space(&self, end: u64) -> io::Result<()> {
        if self.faults.full.load(Ordering::SeqCst) && end > self.inner.len()? {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected fault: disk full",
            ));
        }
        Ok(())
    }
}

impl StorageBackend for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_space(len)?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.maybe_panic("fsync");
        Self::check(&self.faults.fail_syncs, "fsync failed")?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.maybe_panic("a write");
        Self::check(&self.faults.fail_writes, "write failed")?;
        self.check_space(offset + data.len() as u64)?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    delegate_locks!(inner);
}
