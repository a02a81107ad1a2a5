//! Kanboard's `groups` table (SPEC §14): created when the database has none, otherwise checked
//! to fit, with every missing piece named in one line.

use tokio_postgres::Client;

use super::PgError;

/// Kanboard's own table, as its PostgreSQL schema leaves it (`name` was created `VARCHAR(100)`
/// and later changed to `TEXT`).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS groups ( \
     id SERIAL PRIMARY KEY, \
     external_id VARCHAR(255) DEFAULT '', \
     name TEXT NOT NULL UNIQUE)";

/// The columns of the `groups` table the search path finds: name, type, not-null, whether the
/// id is filled from a sequence (a `nextval` default or an identity), and whether a unique
/// constraint or plain unique index covers exactly that column, and whether it fills itself.
const COLUMNS: &str = "SELECT a.attname::text, format_type(a.atttypid, NULL), a.attnotnull, \
       (a.attidentity <> '' OR COALESCE(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false)), \
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique \
               AND i.indpred IS NULL AND i.indexprs IS NULL \
               AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum), \
       (d.adbin IS NOT NULL OR a.attidentity <> '' OR a.attgenerated <> '') \
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
     WHERE a.attrelid = to_regclass('groups') AND a.attnum > 0 AND NOT a.attisdropped";

const INTEGER_TYPES: [&str; 3] = ["smallint", "integer", "bigint"];
const TEXT_TYPES: [&str; 2] = ["text", "character varying"];

/// One column as [`COLUMNS`] describes it.
struct Column {
    name: String,
    kind: String,
    not_null: bool,
    from_sequence: bool,
    unique: bool,
    has_default: bool,
}

/// Creates the table when there is none; otherwise checks that it fits.
pub(crate) async fn ensure(client: &Client) -> Result<(), PgError> {
    let failed = |e: tokio_postgres::Error| PgError::from_postgres("schema check", &e);
    let exists = client
        .query_one("SELECT to_regclass('groups') IS NOT NULL", &[])
        .await
        .map_err(failed)?;
    if !exists.try_get::<_, bool>(0).map_err(failed)? {
        // Two groupd processes starting at once may both get here; the loser's error (the
        // catalog's unique index, or "already exists") is harmless: check what the winner made.
        match client.batch_execute(CREATE_TABLE).await {
            Ok(()) => tracing::info!("created the groups table"),
            Err(e) => tracing::debug!(error = %e, "creating the groups table raced another"),
        }
    }
    let rows = client.query(COLUMNS, &[]).await.map_err(failed)?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        columns.push(Column {
            name: row.try_get(0).map_err(failed)?,
            kind: row.try_get(1).map_err(failed)?,
            not_null: row.try_get(2).map_err(failed)?,
            from_sequence: row.try_get(3).map_err(failed)?,
            unique: row.try_get(4).map_err(failed)?,
            has_default: row.try_get(5).map_err(failed)?,
        });
    }
    match misfits(&columns).as_slice() {
        [] => Ok(()),
        missing => Err(PgError::Schema(format!(
            "table groups does not fit groupd: {}",
            missing.join("; ")
        ))),
    }
}

/// What the table lacks, one phrase each; empty when it fits.
fn misfits(columns: &[Column]) -> Vec<String> {
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let mut missing = Vec::new();
    match find("id") {
        None => missing.push("no id column".to_owned()),
        Some(id) => {
            if !INTEGER_TYPES.contains(&id.kind.as_str()) {
                missing.push(format!("id is {}, not an integer", id.kind));
            }
            if !id.from_sequence {
                missing.push("id has no sequence default (SERIAL or identity)".to_owned());
            }
        }
    }
    match find("name") {
        None => missing.push("no name column".to_owned()),
        Some(name) => {
            if !TEXT_TYPES.contains(&name.kind.as_str()) {
                missing.push(format!("name is {}, not text or varchar", name.kind));
            }
            if !name.not_null {
                missing.push("name is not NOT NULL".to_owned());
            }
            if !name.unique {
                missing.push("name has no unique constraint or unique index".to_owned());
            }
        }
    }
    match find("external_id") {
        None => missing.push("no external_id column".to_owned()),
        Some(e) if !TEXT_TYPES.contains(&e.kind.as_str()) => {
            missing.push(format!("external_id is {}, not text or varchar", e.kind));
        }
        Some(_) => {}
    }
    for other in columns {
        let ours = ["id", "name", "external_id"].contains(&other.name.as_str());
        if !ours && other.not_null && !other.has_default {
            missing.push(format!(
                "column {} is NOT NULL without a default",
                other.name
            ));
        }
    }
    missing
}
