//! The stdio session: one conversation over stdin/stdout, owned by the process that started
//! groupd (so no token).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::connection::{self, End};
use crate::dispatch::Service;
use crate::session::Session;

/// Serves one conversation over stdin/stdout until EOF, `exit` or `shutdown`, and says how it
/// ended: after `exit`, the process exits at once (SPEC §11), though stdin may still be open.
pub async fn serve_stdio(
    service: Arc<Service>,
    shutdown: CancellationToken,
) -> std::io::Result<End> {
    let (stdin, stdout) = (tokio::io::stdin(), tokio::io::stdout());
    connection::serve(stdin, stdout, &service, Session::trusted(), None, &shutdown).await
}
