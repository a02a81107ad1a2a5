//! The commit log: a write-ahead log beside the database file (`<database>.wal`) that makes a
//! commit durable with one sequential write and one `fdatasync`.
//!
//! Why: a durable redb commit writes its header and every page it changed (six or seven pages
//! scattered over the file for a round of creates) and syncs them: measured here 317 µs for
//! five scattered 4 KiB pages against 110 µs for one appended page. With answers in request
//! order, every connection whose pipeline holds a write waits for that sync, so it bounds the
//! mixed load (90% reads): 0.16–0.19 of the fixed-answer server with redb commits, 0.25–0.29
//! with a log in a prototype, same run.
//!
//! How: the writer decides a round of calls against the groups in memory, appends the changes
//! they made to the log as one record, syncs the log, and answers. The database gets the logged
//! changes in batches, in transactions committed without a sync (`Durability::None`, see
//! [`super::writer`]). Now and then (the log holds [`CHECKPOINT_BYTES`], or writes pause) the
//! writer makes a durable redb commit that records the last record the database holds
//! (`log_lsn` in `meta`) and starts the log again from its first byte. At open,
//! the records after `log_lsn` are applied to the database in one durable commit (recovery);
//! a clean close checkpoints and removes the log, so a stopped server leaves one file.
//!
//! A record is the changes of one round, not its calls: a put (id, name, external id) or a
//! removal, and the id counter after it, so applying one twice changes nothing. Records carry a
//! sequence number (lsn), the database's `log_id` and a CRC-32 of the whole record. Recovery
//! reads the records from the start while each verifies and follows the one before; the first
//! that does not is where the log ends (a torn write of a round nobody was answered for).
//! Records left from before the last checkpoint have lower numbers and are skipped; a log
//! written for another database (a restore to a reused path) has another id and is ignored.
//! A record that does not verify *followed by one that does*, further on, is damage inside
//! the log (acknowledged commits lost), never a torn end: the open fails and says so.

use std::io;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, StorageBackend};

use super::contain::contained;
use super::schema::{GROUPS, LOG_ID_KEY, LOG_LSN_KEY, META, NEXT_ID_KEY};
use super::{OpenError, open_error};

/// A checkpoint comes once the log holds this many bytes: about 100,000 creates. Recovery
/// replays at most this much, and redb reuses the pages freed since the last durable commit
/// only after the next one.
pub(super) const CHECKPOINT_BYTES: u64 = 8 << 20;

/// The log grows by this much at a time (zero-filled, see [`super::file`]).
const GROW_BY: u64 = 1 << 20;

const MAGIC: u32 = u32::from_le_bytes(*b"GDL1");

/// magic u32, payload length u32, log id u64, lsn u64, CRC-32 u32, 4 bytes of padding.
const HEADER: usize = 32;

const PUT: u8 = 1;
const REMOVE: u8 = 2;

/// The changes of one round, encoded as the writer makes them.
#[derive(Default)]
pub(super) struct Entry {
    bytes: Vec<u8>,
}

impl Entry {
    pub(super) fn put(&mut self, id: u64, name: &str, external_id: &str) {
        self.bytes.push(PUT);
        self.bytes.extend_from_slice(&id.to_le_bytes());
        for text in [name, external_id] {
            // Names and external ids are far shorter than 4 GiB (the request size limit).
            self.bytes
                .extend_from_slice(&(text.len() as u32).to_le_bytes());
            self.bytes.extend_from_slice(text.as_bytes());
        }
    }

    pub(super) fn remove(&mut self, id: u64) {
        self.bytes.push(REMOVE);
        self.bytes.extend_from_slice(&id.to_le_bytes());
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends the changes of `later`, which come after these.
    pub(super) fn extend(&mut self, later: &Entry) {
        self.bytes.extend_from_slice(&later.bytes);
    }

    /// The changes, in the order they were made; `None` at the first that does not decode
    /// (the writer's own entries always do; a record read back does when its CRC verified).
    pub(super) fn changes(&self) -> Changes<'_> {
        Changes { rest: &self.bytes }
    }
}

/// A change as encoded in an [`Entry`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChangeRef<'a> {
    Put {
        id: u64,
        name: &'a str,
        external_id: &'a str,
    },
    Remove {
        id: u64,
    },
}

/// The changes of an encoded entry, in order (see [`Entry::changes`]).
pub(super) struct Changes<'a> {
    rest: &'a [u8],
}

impl<'a> Changes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.rest.get(..n)?, self.rest.get(n..)?);
        self.rest = tail;
        Some(head)
    }

    fn text(&mut self) -> Option<&'a str> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

impl<'a> Iterator for Changes<'a> {
    type Item = Option<ChangeRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let tag = *self.take(1)?.first()?;
        let mut change = || {
            let id = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
            match tag {
                PUT => Some(ChangeRef::Put {
                    id,
                    name: self.text()?,
                    external_id: self.text()?,
                }),
                REMOVE => Some(ChangeRef::Remove { id }),
                _ => None,
            }
        };
        let change = change();
        if change.is_none() {
            self.rest = &[];
        }
        Some(change)
    }
}

/// A change read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Logged {
    Put {
        id: u64,
        name: String,
        external_id: String,
    },
    Remove {
        id: u64,
    },
}

impl Logged {
    fn as_ref(&self) -> ChangeRef<'_> {
        match self {
            Logged::Put {
                id,
                name,
                external_id,
            } => ChangeRef::Put {
                id: *id,
                name,
                external_id,
            },
            Logged::Remove { id } => ChangeRef::Remove { id: *id },
        }
    }
}

/// Makes `groups` hold `change`: the one way a logged change reaches the database, whether at
/// recovery or when the writer brings the database up to date.
pub(super) fn apply(
    groups: &mut redb::Table<u64, (&'static str, &'static str)>,
    change: ChangeRef<'_>,
) -> Result<(), redb::Error> {
    match change {
        ChangeRef::Put {
            id,
            name,
            external_id,
        } => groups.insert(id, (name, external_id)).map(drop)?,
        ChangeRef::Remove { id } => groups.remove(id).map(drop)?,
    }
    Ok(())
}

/// One record read back from the log.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) lsn: u64,
    pub(super) next_id: u64,
    pub(super) changes: Vec<Logged>,
}

/// The log file, as the writer holds it.
pub(super) struct CommitLog {
    file: Box<dyn StorageBackend>,
    /// The database's `log_id`, set by [`recover`].
    id: u64,
    /// The number of the next record; the last durable redb commit holds `next_lsn - 1`
    /// once a checkpoint has been made.
    next_lsn: u64,
    /// Where the next record is written.
    at: u64,
    /// The end of bytes past `at` that may hold a record whose calls were answered with an
    /// error: recovery erases them before it reads the log, so that a failed call does not
    /// take effect when the database is reopened.
    unsure_end: Option<u64>,
    len: u64,
    buffer: Vec<u8>,
}

impl CommitLog {
    pub(super) fn new(file: Box<dyn StorageBackend>) -> io::Result<CommitLog> {
        let len = file.len()?;
        Ok(CommitLog {
            file,
            id: 0,
            next_lsn: 1,
            at: 0,
            unsure_end: None,
            len,
            buffer: Vec::new(),
        })
    }

    /// Bytes written since the last checkpoint.
    pub(super) fn written(&self) -> u64 {
        self.at
    }

    /// The number of the last record written.
    pub(super) fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }

    /// Appends `entry` with the id counter after it and syncs it. On an error nothing counts as
    /// written: the next append goes to the same place, with the same number, and recovery
    /// erases what may have reached the file.
    pub(super) fn append(&mut self, next_id: u64, entry: &Entry) -> io::Result<()> {
        let payload = 8 + entry.bytes.len();
        let padded = (HEADER + payload).next_multiple_of(8);
        let length = u32::try_from(payload)
            .map_err(|_| io::Error::other("a commit too large for the log"))?;
        self.buffer.clear();
        self.buffer.extend_from_slice(&MAGIC.to_le_bytes());
        self.buffer.extend_from_slice(&length.to_le_bytes());
        self.buffer.extend_from_slice(&self.id.to_le_bytes());
        self.buffer.extend_from_slice(&self.next_lsn.to_le_bytes());
        self.buffer.extend_from_slice(&[0; 8]);
        self.buffer.extend_from_slice(&next_id.to_le_bytes());
        self.buffer.extend_from_slice(&entry.bytes);
        self.buffer.resize(padded, 0);
        let crc = checksum(&self.buffer[..HEADER + payload]);
        self.buffer[24..28].copy_from_slice(&crc.to_le_bytes());
        let end = self.at + padded as u64;
        if end > self.len {
            let len = end.next_multiple_of(GROW_BY);
            self.file.set_len(len)?;
            self.len = len;
        }
        let written = self
            .file
            .write(self.at, &self.buffer)
            .and_then(|()| self.file.sync_data());
        if written.is_err() {
            self.unsure_end = self.unsure_end.max(Some(end));
            return written;
        }
        self.at = end;
        self.next_lsn += 1;
        Ok(())
    }

    /// Overwrites with zeros, and syncs, the bytes that may hold a record of a failed round.
    fn erase_unsure(&mut self) -> io::Result<()> {
        if let Some(end) = self.unsure_end {
            let zeros = vec![0; usize::try_from(end.saturating_sub(self.at)).unwrap_or(0)];
            self.file.write(self.at, &zeros)?;
            self.file.sync_data()?;
            self.unsure_end = None;
        }
        Ok(())
    }

    /// The database now holds every record durably: the next one goes to the start.
    pub(super) fn checkpointed(&mut self) {
        self.at = 0;
    }
}

/// The CRC of a record with its CRC field taken as zero.
fn checksum(record: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&record[..24]);
    crc.update(&[0; 4]);
    crc.update(&record[28..]);
    crc.finalize()
}

/// A record in `log` at `at` that verifies and belongs to log `id`: it and where the next one
/// starts.
fn read_at(log: &[u8], at: u64, id: u64) -> Option<(Record, u64)> {
    let start = usize::try_from(at).ok()?;
    let header = log.get(start..start.checked_add(HEADER)?)?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let long = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap_or([0; 8]));
    if word(0) != MAGIC || long(8) != id {
        return None;
    }
    let payload = word(4) as usize;
    let end = start.checked_add((HEADER + payload).next_multiple_of(8))?;
    if payload < 8 || end > log.len() {
        return None;
    }
    let record = &log[start..start + HEADER + payload];
    if checksum(record) != word(24) {
        return None;
    }
    let (next_id, changes) = decode(&record[HEADER..])?;
    Some((
        Record {
            lsn: long(16),
            next_id,
            changes,
        },
        end as u64,
    ))
}

fn decode(payload: &[u8]) -> Option<(u64, Vec<Logged>)> {
    let next_id = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let changes = Changes {
        rest: payload.get(8..)?,
    };
    let logged = changes
        .map(|change| {
            Some(match change? {
                ChangeRef::Put {
                    id,
                    name,
                    external_id,
                } => Logged::Put {
                    id,
                    name: name.to_owned(),
                    external_id: external_id.to_owned(),
                },
                ChangeRef::Remove { id } => Logged::Remove { id },
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((next_id, logged))
}

/// The records of log `id` numbered after `after`, in order; `Err` with the byte where the log
/// is damaged when a record that does not verify is followed by one of this log, numbered
/// higher, that does (see the module doc), or when the first record after `after` is missing.
/// With `cut_at_damage`, the records before the damage instead.
pub(super) fn scan(
    file: &dyn StorageBackend,
    id: u64,
    after: u64,
    cut_at_damage: bool,
) -> io::Result<Result<Vec<Record>, u64>> {
    // Read whole (at most a checkpoint's worth and one record): the damage probe below looks
    // at every 8th byte, which one read per look would make a million system calls.
    let len = file.len()?;
    let mut log = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    file.read(0, &mut log)?;
    let (mut at, mut records, mut last) = (0, Vec::new(), None::<u64>);
    while let Some((record, next)) = read_at(&log, at, id) {
        if last.map_or(record.lsn > after + 1, |last| record.lsn != last + 1) {
            break;
        }
        last = Some(record.lsn);
        if record.lsn > after {
            records.push(record);
        }
        at = next;
    }
    if cut_at_damage {
        return Ok(Ok(records));
    }
    let expected = last.map_or(after + 1, |l| l + 1).max(after + 1);
    let mut probe = at;
    while probe + HEADER as u64 <= len {
        if let Some((record, _)) = read_at(&log, probe, id)
            && record.lsn >= expected
        {
            return Ok(Err(at));
        }
        probe += 8;
    }
    Ok(Ok(records))
}

/// The commit log of the database at `db`: beside it, named after it.
pub(super) fn path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".wal");
    db.with_file_name(name)
}

/// Opens the log at `path`, creating it if missing; a new log's name is synced into its
/// directory before anything is written to it, or a power cut could lose the whole file.
pub(super) fn open_file(path: &Path) -> io::Result<std::fs::File> {
    let created = !path.exists();
    let file = super::schema::open_file(path)?;
    if created {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

/// [`recover`] as a store opens: the records applied are logged, damage is the open's error
/// (naming the log and `groupd check --repair`).
pub(super) fn recover_at_open(
    path: &Path,
    db: &Database,
    mut log: CommitLog,
    repair: bool,
) -> Result<CommitLog, OpenError> {
    let recovered = contained("the commit log's recovery", || {
        recover(db, &mut log, repair)
    })
    .map_err(|e| open_error(path, e))?;
    match recovered {
        Recovered::Applied(0) => {}
        Recovered::Applied(records) => {
            tracing::info!(records, "commits applied from the commit log");
        }
        Recovered::Damaged(at) => {
            return Err(OpenError::Damaged {
                path: path.to_path_buf(),
                why: format!(
                    "its commit log {} does not verify at byte {at}, and commits after it do",
                    self::path(path).display()
                ),
            });
        }
    }
    Ok(log)
}

/// What [`recover`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Recovered {
    /// Records applied to the database (0: it held them all).
    Applied(usize),
    /// The log is damaged at this byte (see [`scan`]); nothing was changed.
    Damaged(u64),
}

/// Applies the records of `log` the database lacks, in one durable commit that also records
/// the last of them, and readies `log` for appending from its start. With `cut_at_damage`, a
/// damaged log is applied up to the damage (what `groupd check --repair` does); without, it is
/// reported and nothing is changed.
pub(super) fn recover(
    db: &Database,
    log: &mut CommitLog,
    cut_at_damage: bool,
) -> Result<Recovered, redb::Error> {
    let read = db.begin_read()?;
    let meta = read.open_table(META)?;
    let id = meta.get(LOG_ID_KEY)?.map_or(0, |v| v.value());
    let lsn = meta.get(LOG_LSN_KEY)?.map_or(0, |v| v.value());
    drop((meta, read));
    log.erase_unsure()?;
    log.id = id;
    log.len = log.file.len()?;
    let records = match scan(log.file.as_ref(), id, lsn, cut_at_damage)? {
        Ok(records) => records,
        Err(at) => return Ok(Recovered::Damaged(at)),
    };
    let last = records.last().map_or(lsn, |r| r.lsn);
    if !records.is_empty() {
        let txn = db.begin_write()?;
        {
            let mut groups = txn.open_table(GROUPS)?;
            let mut meta = txn.open_table(META)?;
            let mut next_id = meta.get(NEXT_ID_KEY)?.map_or(1, |v| v.value());
            for record in &records {
                for change in &record.changes {
                    apply(&mut groups, change.as_ref())?;
                }
                next_id = next_id.max(record.next_id);
            }
            meta.insert(NEXT_ID_KEY, next_id)?;
            meta.insert(LOG_LSN_KEY, last)?;
        }
        txn.commit()?;
    }
    log.next_lsn = last + 1;
    log.at = 0;
    Ok(Recovered::Applied(records.len()))
}

/// Makes the database hold every record of `log` durably, and starts the log again.
pub(super) fn checkpoint(db: &Database, log: &mut CommitLog) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(META)?.insert(LOG_LSN_KEY, log.last_lsn())?;
    txn.commit()?;
    log.checkpointed();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::backends::InMemoryBackend;
    use std::sync::Arc;

    /// A backend the test and the log share, so the test can damage what the log wrote.
    #[derive(Debug, Clone, Default)]
    struct Shared(Arc<InMemoryBackend>);

    impl StorageBackend for Shared {
        fn len(&self) -> io::Result<u64> {
            self.0.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
            self.0.read(offset, out)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.0.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
        fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            self.0.write(offset, data)
        }
    }

    const ID: u64 = 0x1234;

    fn log_on(disk: &Shared) -> CommitLog {
        let mut log = CommitLog::new(Box::new(disk.clone())).unwrap();
        log.id = ID;
        log
    }

    /// Appends one record creating group `id` named `name`; returns where it starts.
    fn append(log: &mut CommitLog, id: u64, name: &str) -> u64 {
        let mut entry = Entry::default();
        entry.put(id, name, "x");
        let at = log.written();
        log.append(id + 1, &entry).unwrap();
        at
    }

    fn names(records: &[Record]) -> Vec<(u64, String)> {
        let mut all = Vec::new();
        for record in records {
            for change in &record.changes {
                if let Logged::Put { name, .. } = change {
                    all.push((record.lsn, name.clone()));
                }
            }
        }
        all
    }

    fn flip(disk: &Shared, at: u64) {
        let mut byte = [0];
        disk.read(at, &mut byte).unwrap();
        disk.write(at, &[byte[0] ^ 0x40]).unwrap();
    }

    #[test]
    fn records_read_back_with_their_changes_and_counter() {
        let disk = Shared::default();
        let mut log = log_on(&disk);
        append(&mut log, 1, "Ops");
        let mut entry = Entry::default();
        entry.put(1, "Dev", "e");
        entry.remove(7);
        log.append(9, &entry).unwrap();
        let records = scan(&disk, ID, 0, false).unwrap().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].lsn, records[0].next_id), (1, 2));
        assert_eq!((records[1].lsn, records[1].next_id), (2, 9));
        assert_eq!(
            records[1].changes,
            [
                Logged::Put {
                    id: 1,
                    name: "Dev".into(),
                    external_id: "e".into()
                },
                Logged::Remove { id: 7 }
            ]
        );
        // Records the database already holds are skipped.
        assert_eq!(
            names(&scan(&disk, ID, 1, false).unwrap().unwrap()),
            [(2, "Dev".into())]
        );
    }

    #[test]
    fn a_torn_last_record_ends_the_log() {
        let disk = Shared::default();
        let mut log = log_on(&disk);
        append(&mut log, 1, "a");
        let last = append(&mut log, 2, "b");
        flip(&disk, last + HEADER as u64 + 10);
        let records = scan(&disk, ID, 0, false).unwrap().unwrap();
        assert_eq!(names(&records), [(1, "a".into())]);
    }

    #[test]
    fn damage_before_a_record_that_verifies_is_reported_and_repair_stops_there() {
        let disk = Shared::default();
        let mut log = log_on(&disk);
        append(&mut log, 1, "a");
        let second = append(&mut log, 2, "b");
        append(&mut log, 3, "c");
        flip(&disk, second + HEADER as u64 + 10);
        assert_eq!(scan(&disk, ID, 0, false).unwrap().unwrap_err(), second);
        let cut = scan(&disk, ID, 0, true).unwrap().unwrap();
        assert_eq!(names(&cut), [(1, "a".into())]);
        // A first record lost with later ones intact is damage too.
        let disk = Shared::default();
        let mut log = log_on(&disk);
        append(&mut log, 1, "a");
        append(&mut log, 2, "b");
        flip(&disk, 0);
        assert_eq!(scan(&disk, ID, 0, false).unwrap().unwrap_err(), 0);
    }

    #[test]
    fn after_a_checkpoint_the_log_starts_over_and_old_records_are_skipped() {
        let disk = Shared::default();
        let mut log = log_on(&disk);
        for (id, name) in [(1, "a"), (2, "b"), (3, "c")] {
            append(&mut log, id, name);
        }
        log.checkpointed();
        append(&mut log, 4, "d");
        // The database holds 1..=3: only 4 is new, and what is left of 2 and 3 is not damage.
        assert_eq!(
            names(&scan(&disk, ID, 3, false).unwrap().unwrap()),
            [(4, "d".into())]
        );
        // Crashed right after the checkpoint, before any new record: nothing to apply.
        let disk = Shared::default();
        let mut log = log_on(&disk);
        append(&mut log, 1, "a");
        log.checkpointed();
        assert!(scan(&disk, ID, 1, false).unwrap().unwrap().is_empty());
    }

    #[test]
    fn a_log_of_another_database_is_ignored() {
        let disk = Shared::default();
        let mut log = log_on(&disk);
        append(&mut log, 1, "a");
        assert!(scan(&disk, ID + 1, 0, false).unwrap().unwrap().is_empty());
    }
}
