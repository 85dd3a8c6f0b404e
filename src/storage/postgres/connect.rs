//! Connections to the store's database: the URL of the configuration (libpq syntax,
//! several hosts and `target_session_attrs` included), the password from the URL or
//! `store_password_file`, each session's `search_path` set to the store's schema.

use super::tls::split_url;
use crate::config::store::{redact_url, PgStoreConfig};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use postgres::Client;
use postgres_native_tls::MakeTlsConnector;
use std::time::Duration;

/// A connection attempt gives up after this (per host), unless the URL says otherwise:
/// a host that is down must not stall a call for the kernel's TCP timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An established connection whose host stops answering is given up after this (unless
/// the URL says otherwise), so a write fails with CKR_DEVICE_ERROR instead of hanging.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Connector {
    config: postgres::Config,
    tls: MakeTlsConnector,
    schema: String,
    /// The URL without password, for messages.
    place: String,
}

impl Connector {
    pub fn new(store: &PgStoreConfig) -> Result<Connector> {
        let place = redact_url(&store.url);
        let (url, tls) = split_url(&store.url);
        let mut config: postgres::Config = url.parse().map_err(|e| {
            Error::with(
                CKR_FUNCTION_FAILED,
                format!("store = \"{place}\" is not a PostgreSQL connection URL: {e}"),
            )
        })?;
        if config.get_password().is_none() {
            if let Some(file) = &store.password_file {
                let text = zeroize::Zeroizing::new(std::fs::read_to_string(file).map_err(|e| {
                    Error::with(
                        CKR_FUNCTION_FAILED,
                        format!("cannot read store_password_file {}: {e}", file.display()),
                    )
                })?);
                config.password(text.lines().next().unwrap_or_default());
            } else if let Some(password) = super::pgpass::lookup(&config) {
                config.password(password.as_bytes());
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("ferrohsm");
        }
        Ok(Connector {
            config,
            tls: tls.connector()?,
            schema: store.schema.clone(),
            place,
        })
    }

    /// The database without password, and the schema: `postgresql://u@h/db (schema s)`.
    pub fn place(&self) -> String {
        format!("{} (schema {})", self.place, self.schema)
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A new session with the store's schema as its search path.
    pub fn connect(&self) -> Result<Client> {
        let place = self.place();
        let mut client = self
            .config
            .connect(self.tls.clone())
            .map_err(|e| pg_error(&place, e))?;
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .map_err(|e| pg_error(&place, e))?;
        Ok(client)
    }
}

/// `e` and its sources: the driver's own text is often only the kind ("invalid
/// configuration", "error connecting to server"), the cause ("password missing", "Connection
/// refused") is in the source.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// A database error as the PKCS#11 caller sees it: CKR_DEVICE_MEMORY when the server's
/// disk is full (as for SQLite), else CKR_DEVICE_ERROR, with the server's message.
pub fn pg_error(place: &str, e: postgres::Error) -> Error {
    let rv = match e.code() {
        Some(code) if *code == postgres::error::SqlState::DISK_FULL => CKR_DEVICE_MEMORY,
        _ => CKR_DEVICE_ERROR,
    };
    let reason = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => with_causes(&e),
    };
    Error::with(rv, format!("token store {place}: {reason}"))
}
