//! Containment of the storage engine: every call into redb (open, repair, read, write, commit,
//! drop) runs inside [`contained`], so that a panic in the engine becomes an error the caller
//! handles, never a dead thread or process.
//!
//! redb's read paths trust the file they read: a damaged page can reach an `unreachable!()`
//! (cberner/redb#1334, 57 of 8,224 single-byte flips), its repair can panic on a malformed
//! freed-tree entry (#1333), and `Database::drop` on a malformed leaf (#1303). Verifying every
//! page checksum before serving (see [`super::open_database`]) keeps damaged files out; this
//! keeps whatever is left (a file damaged while served, an engine bug) from taking groupd down.
//!
//! The panic message is not printed by the default hook: inside a contained call it is recorded
//! for the caller, which logs it at `error` (or puts it in its one-line start-up error). Panics
//! anywhere else still reach the previous hook unchanged. A panic raised while another unwinds
//! (a destructor that panics during the unwind) aborts the process, as Rust always does; no
//! thread boundary can contain that, only another process.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`contained`].
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
    /// The last contained panic's message and location, for [`contained`] to return.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `call`, turning a panic inside it into [`redb::Error::Corrupted`] naming `what` and the
/// panic: the engine that panicked can no longer be trusted with the file, and that is what
/// the callers do with a corrupted database too (refuse writes, refuse to start).
pub(super) fn contained<T>(
    what: &str,
    call: impl FnOnce() -> Result<T, redb::Error>,
) -> Result<T, redb::Error> {
    run(call).unwrap_or_else(|panic| Err(panicked(what, &panic)))
}

/// Runs `call`; `Err` holds the message of a panic inside it.
pub(super) fn run<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let outer = CONTAINED.replace(true);
    let result = panic::catch_unwind(AssertUnwindSafe(call));
    CONTAINED.set(outer);
    result.map_err(|payload| {
        LAST_PANIC
            .take()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// The error a contained panic becomes.
pub(super) fn panicked(what: &str, panic: &str) -> redb::Error {
    let panic = panic.replace('\n', " ");
    redb::Error::Corrupted(format!(
        "the storage engine panicked during {what}: {panic}"
    ))
}

/// Drops `value` inside containment (redb's destructors write to the file); a panic is logged.
pub(super) fn drop_contained<T>(what: &str, value: T) {
    if let Err(panic) = run(move || drop(value)) {
        tracing::error!(panic, "the storage engine panicked while closing {what}");
    }
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CONTAINED.get() {
                LAST_PANIC.set(Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_corrupted_error_with_its_message() {
        let result: Result<(), _> = contained("a test", || panic!("boom\nsecond line"));
        let Err(redb::Error::Corrupted(why)) = result else {
            panic!("{result:?}");
        };
        assert!(why.contains("during a test"), "{why}");
        assert!(why.contains("boom second line"), "{why}");
        assert!(!why.contains('\n'));
        assert_eq!(contained("fine", || Ok(7)).ok(), Some(7));
    }

    #[test]
    fn nested_containment_restores_the_outer_state() {
        let inner = run(|| run(|| panic!("inner")).err());
        assert_eq!(
            inner.ok().flatten().map(|m| m.contains("inner")),
            Some(true)
        );
        assert!(!CONTAINED.get());
    }
}
