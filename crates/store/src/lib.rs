//! Store: latest value per device/state and history (SQLite, PostgreSQL). Filled in by its issue.
