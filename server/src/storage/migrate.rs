//! `devicetrust-server migrate --from sqlite://… --to postgres://…`: a
//! single-node installation copied into PostgreSQL, in one transaction,
//! into an empty schema only, and checked (rows per table on both sides)
//! before it commits.
//!
//! Columns are taken from the PostgreSQL schema and converted by its
//! types, so columns added later on both backends are copied without a
//! change here.

use tokio_postgres::types::ToSql;

use super::postgres::{PostgresStore, TABLES};
use super::StorageError;

/// Rows read from SQLite and written at once.
const CHUNK: i64 = 5_000;

/// One table's rows on both sides after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub source: i64,
    pub target: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the target database is not empty ({0}); migrate copies into an empty one only")]
    NotEmpty(String),
    #[error("the two schemas differ, nothing was copied: {0}")]
    Schema(String),
    #[error("{table}.{column}: cannot copy a SQLite {found} into PostgreSQL {expected}")]
    Type {
        table: String,
        column: String,
        found: &'static str,
        expected: String,
    },
    #[error("row counts differ after the copy, nothing was committed: {0}")]
    Mismatch(String),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Storage(e.into())
    }
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Storage(e.into())
    }
}

type Value = Box<dyn ToSql + Sync + Send>;

fn kind(v: &rusqlite::types::Value) -> &'static str {
    use rusqlite::types::Value as V;
    match v {
        V::Null => "NULL",
        V::Integer(_) => "integer",
        V::Real(_) => "real",
        V::Text(_) => "text",
        V::Blob(_) => "blob",
    }
}

/// One SQLite value as the PostgreSQL column type wants it.
fn convert(v: rusqlite::types::Value, pg_type: &str) -> Option<Value> {
    use rusqlite::types::Value as V;
    Some(match (pg_type, v) {
        ("bigint", V::Null) => Box::new(None::<i64>),
        ("integer", V::Null) => Box::new(None::<i32>),
        ("boolean", V::Null) => Box::new(None::<bool>),
        ("bytea", V::Null) => Box::new(None::<Vec<u8>>),
        ("text", V::Null) => Box::new(None::<String>),
        ("bigint", V::Integer(i)) => Box::new(i),
        ("integer", V::Integer(i)) => Box::new(i32::try_from(i).ok()?),
        ("boolean", V::Integer(i)) => Box::new(i != 0),
        ("bytea", V::Blob(b)) => Box::new(b),
        ("bytea", V::Text(t)) => Box::new(t.into_bytes()),
        ("text", V::Text(t)) => Box::new(t),
        ("text", V::Integer(i)) => Box::new(i.to_string()),
        _ => return None,
    })
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Copies the SQLite database `from` (a path) into the PostgreSQL database
/// `to` (a URL), which must be empty; returns the counts, equal on both sides.
pub async fn sqlite_to_postgres(from: &str, to: &str) -> Result<Vec<TableCount>, MigrateError> {
    let Some(path) = from.strip_prefix("sqlite://") else {
        return Err(MigrateError::Usage("--from must be sqlite://PATH".into()));
    };
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(MigrateError::Usage("--to must be postgres://…".into()));
    }
    if !std::path::Path::new(path).is_file() {
        return Err(MigrateError::Usage(format!(
            "{path}: no such database file"
        )));
    }
    // Brings the SQLite schema to the latest version first, so both sides
    // have the same columns.
    drop(super::sqlite::SqliteStore::open(path).await?);
    let target = PostgresStore::open(to).await?;
    // A column only SQLite has would be left behind without a word.
    let differences = schema_differences(path, &target).await?;
    if !differences.is_empty() {
        return Err(MigrateError::Schema(differences.join("; ")));
    }
    let not_empty: Vec<String> = target
        .counts()
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{t}: {n} rows"))
        .collect();
    if !not_empty.is_empty() {
        return Err(MigrateError::NotEmpty(not_empty.join(", ")));
    }

    let mut client = target.raw_client().await?;
    let tx = client.transaction().await?;
    let mut report = Vec::new();
    let mut read_counts = Vec::new();
    for table in TABLES {
        let columns: Vec<(String, String)> = tx
            .query(
                "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                 ORDER BY ordinal_position",
                &[table],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()?;
        let names: Vec<String> = columns.iter().map(|(c, _)| quote(c)).collect();
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                quote(table),
                names.join(", "),
                (1..=names.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await?;
        let select = format!(
            "SELECT {} FROM {} ORDER BY rowid LIMIT ?1 OFFSET ?2",
            names.join(", "),
            quote(table)
        );
        let mut offset = 0i64;
        let source: i64 = loop {
            let (path, select, width) = (path.to_owned(), select.clone(), names.len());
            let rows = tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                let mut stmt = conn.prepare(&select)?;
                let rows = stmt
                    .query_map(rusqlite::params![CHUNK, offset], |r| {
                        (0..width)
                            .map(|i| r.get::<_, rusqlite::types::Value>(i))
                            .collect::<Result<Vec<_>, _>>()
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, rusqlite::Error>(rows)
            })
            .await
            .map_err(|e| StorageError::Task(e.to_string()))??;
            let n = rows.len() as i64;
            for row in rows {
                let mut values: Vec<Value> = Vec::with_capacity(row.len());
                for (v, (column, ty)) in row.into_iter().zip(&columns) {
                    let found = kind(&v);
                    values.push(convert(v, ty).ok_or_else(|| MigrateError::Type {
                        table: (*table).to_owned(),
                        column: column.clone(),
                        found,
                        expected: ty.clone(),
                    })?);
                }
                let params: Vec<&(dyn ToSql + Sync)> = values
                    .iter()
                    .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                tx.execute(&insert, &params).await?;
            }
            offset += n;
            if n < CHUNK {
                break offset;
            }
        };
        // Ids kept from SQLite: the sequence goes on after the largest.
        if columns.iter().any(|(c, _)| c == "id") {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence($1, 'id'),
                                   COALESCE((SELECT MAX(id) FROM {}), 0) + 1, false)",
                    quote(table)
                ),
                &[table],
            )
            .await?;
        }
        let copied: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {}", quote(table)), &[])
            .await?
            .try_get(0)?;
        read_counts.push(source);
        report.push(TableCount {
            table: (*table).to_owned(),
            source,
            target: copied,
        });
    }
    // The source counted independently of the copy loop, and compared.
    let (path2, tables) = (path.to_owned(), TABLES.to_vec());
    let source_counts = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_with_flags(
            &path2,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        tables
            .iter()
            .map(|t| {
                conn.query_row(&format!("SELECT COUNT(*) FROM {}", quote(t)), [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| StorageError::Task(e.to_string()))??;
    // A row read twice or skipped by the paging would show here too.
    let mut differing = Vec::new();
    for ((entry, counted), read) in report.iter_mut().zip(source_counts).zip(read_counts) {
        entry.source = counted;
        if counted != entry.target || read != counted {
            differing.push(format!(
                "{}: {counted} in SQLite, {read} read, {} in PostgreSQL",
                entry.table, entry.target
            ));
        }
    }
    if !differing.is_empty() {
        tx.rollback().await?;
        return Err(MigrateError::Mismatch(differing.join(", ")));
    }
    tx.commit().await?;
    Ok(report)
}

/// Where the SQLite database at `path` and the PostgreSQL schema of `pg`
/// differ in tables or columns (names only; types are checked row by row
/// while copying). Empty when both backends' migrations are in step: a
/// migration added to one backend and not the other shows here (and in the
/// migrate test).
pub async fn schema_differences(
    path: &str,
    pg: &PostgresStore,
) -> Result<Vec<String>, MigrateError> {
    use std::collections::BTreeSet;
    let path = path.to_owned();
    let sqlite: Vec<(String, BTreeSet<String>)> = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
               AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let tables = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for t in tables {
            let mut cols = conn.prepare(&format!(
                "SELECT name FROM pragma_table_info({})",
                quote_literal(&t)
            ))?;
            let names = cols
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<BTreeSet<_>, _>>()?;
            out.push((t, names));
        }
        Ok::<_, rusqlite::Error>(out)
    })
    .await
    .map_err(|e| StorageError::Task(e.to_string()))??;
    let client = pg.raw_client().await?;
    let rows = client
        .query(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name <> 'devicetrust_schema'",
            &[],
        )
        .await?;
    let mut postgres: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for r in &rows {
        postgres
            .entry(r.try_get(0)?)
            .or_default()
            .insert(r.try_get(1)?);
    }
    let mut differences = Vec::new();
    for (table, columns) in &sqlite {
        match postgres.remove(table) {
            None => differences.push(format!("table {table} only in SQLite")),
            Some(pg_columns) => {
                for c in columns.difference(&pg_columns) {
                    differences.push(format!("{table}.{c} only in SQLite"));
                }
                for c in pg_columns.difference(columns) {
                    differences.push(format!("{table}.{c} only in PostgreSQL"));
                }
            }
        }
    }
    for table in postgres.keys() {
        differences.push(format!("table {table} only in PostgreSQL"));
    }
    Ok(differences)
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
