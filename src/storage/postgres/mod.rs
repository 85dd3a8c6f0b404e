//! The PostgreSQL backend: the tokens of a configuration in one schema of a database that
//! several hosts share (`store = "postgresql://..."`). The database never sees a PIN or a
//! clear secret: sealing stays in the module, exactly as with SQLite.

mod connect;
mod feed;
mod image;
mod location;
mod pgpass;
mod schema;
mod sql;
mod store;
mod tls;

pub use location::PgLocation;
pub use store::PgStore;
