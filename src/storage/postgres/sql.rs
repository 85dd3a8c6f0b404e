//! How the store's statements reach the server: in a `CachedTx`, which prepares each
//! statement once per connection and from then on runs it in one round trip. The driver's
//! query by text is two (parse and describe, then bind and execute), and a write runs a
//! dozen statements.

use postgres::types::ToSql;
use postgres::{Error, Row, Statement, Transaction};
use std::collections::HashMap;

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The prepared statements of one connection, by their text (dropped with it).
#[derive(Default)]
pub struct Statements(HashMap<String, Statement>);

/// A transaction whose statements are prepared once per connection.
pub struct CachedTx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut Statements,
}

impl<'a> CachedTx<'a> {
    pub fn new(tx: Transaction<'a>, statements: &'a mut Statements) -> CachedTx<'a> {
        CachedTx { tx, statements }
    }

    pub fn commit(self) -> Result<(), Error> {
        self.tx.commit()
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, Error> {
        if let Some(statement) = self.statements.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql)?;
        self.statements.0.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        let statement = self.statement(sql)?;
        self.tx.query(&statement, params)
    }
    pub fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
        let statement = self.statement(sql)?;
        self.tx.query_one(&statement, params)
    }
    pub fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error> {
        let statement = self.statement(sql)?;
        self.tx.query_opt(&statement, params)
    }
    pub fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        let statement = self.statement(sql)?;
        self.tx.execute(&statement, params)
    }
    /// Statements without parameters, sent as they are (simple query protocol).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.tx.batch_execute(sql)
    }
}
