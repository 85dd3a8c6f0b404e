//! The PostgreSQL side of a sandbox (see `STORE_URL_ENV`): SQL run on its schema with
//! psql, as someone with access to the database could, and the schema's whole content.

use std::path::Path;
use std::process::Command;

fn psql_command(sandbox: &Path) -> Command {
    let url = super::store_url().expect("not a PostgreSQL run");
    let mut cmd = Command::new("psql");
    cmd.args([url.as_str(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At"])
        .env(
            "PGOPTIONS",
            format!("-c search_path={}", super::pg_schema(sandbox)),
        );
    cmd
}

/// Runs `sql` on the sandbox's schema; returns psql's output (unaligned, tuples only).
pub fn psql(sandbox: &Path, sql: &str) -> String {
    let output = psql_command(sandbox)
        .args(["-c", sql])
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql failed on {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every table of the sandbox's schema, each row with its bytea values in hex, as bytes.
pub fn dump(sandbox: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for table in ["tokens", "pins", "objects", "attributes", "audit"] {
        out.extend(psql(sandbox, &format!("SELECT t::text FROM {table} t")).into_bytes());
    }
    out
}

/// Runs `sql` on the sandbox's store as someone with access to it but no PIN could: on
/// its one SQLite file, or on its PostgreSQL schema (the tables and columns the tests use
/// have the same names in both). A SELECT returns its rows as psql prints them
/// (`a|b` per line).
pub fn store_sql(sandbox: &Path, sql: &str) -> String {
    if super::on_postgres() {
        return psql(sandbox, sql);
    }
    let db = std::fs::read_dir(sandbox.join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .expect("the token's store file");
    let conn = rusqlite::Connection::open(db).unwrap();
    if !sql.trim_start().to_ascii_uppercase().starts_with("SELECT") {
        conn.execute_batch(sql).unwrap();
        return String::new();
    }
    let mut stmt = conn.prepare(sql).unwrap();
    let columns = stmt.column_count();
    let mut rows = stmt.query([]).unwrap();
    let mut out = String::new();
    while let Some(row) = rows.next().unwrap() {
        let fields: Vec<String> = (0..columns)
            .map(|i| match row.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => String::new(),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Real(v) => v.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(b) => {
                    b.iter().map(|x| format!("{x:02x}")).collect()
                }
            })
            .collect();
        out.push_str(&fields.join("|"));
        out.push('\n');
    }
    out
}

/// Loses every token of the sandbox, as a lost disk or database would: its token
/// directory emptied, or its schema dropped.
pub fn lose_store(sandbox: &Path) {
    if super::on_postgres() {
        psql(
            sandbox,
            &format!("DROP SCHEMA {} CASCADE", super::pg_schema(sandbox)),
        );
        return;
    }
    let tokens = sandbox.join("tokens");
    std::fs::remove_dir_all(&tokens).unwrap();
    std::fs::create_dir_all(&tokens).unwrap();
}
