//! Errors of the store: SQLite, PostgreSQL and bad queries.

/// Something the store could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite history {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The history file's mode, or the writer thread, could not be set up.
    #[error("sqlite history {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sqlite history: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("postgres history: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(
        "invalid postgres table name {0:?} (use letters, digits and _; optionally schema.table)"
    )]
    BadTableName(String),
    #[error("unknown state {0:?} (expected a catalog key like \"EnergyStreamItem.pvPwr\")")]
    UnknownState(String),
    #[error("history write failed: {0}")]
    WriteFailed(#[source] std::sync::Arc<rusqlite::Error>),
    #[error("the history writer has stopped")]
    WriterGone,
}
