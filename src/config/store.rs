//! `store`, `store_schema`, `store_password_file`: where the tokens live. Without `store`,
//! in `token_dir` (one SQLite file per token); with `store = "postgresql://..."`, in that
//! PostgreSQL database, shared by every host whose configuration names it.

use std::path::PathBuf;

/// The schema a PostgreSQL store uses when `store_schema` is not set.
pub const DEFAULT_PG_SCHEMA: &str = "ferrohsm";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StoreConfig {
    /// `token_dir`.
    #[default]
    Directory,
    Postgres(PgStoreConfig),
}

#[derive(Clone, PartialEq, Eq)]
pub struct PgStoreConfig {
    /// A libpq connection URL (`postgresql://user@host1,host2/db?target_session_attrs=...`);
    /// kept out of Debug output and messages, as it may carry a password.
    pub url: String,
    /// The schema of ferrohsm's tables: several configurations can share one database.
    pub schema: String,
    /// A file whose first line is the password (when the URL has none).
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStoreConfig")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// The URL without a password (`postgresql://user:secret@host` -> `postgresql://user@host`),
/// for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, hosts)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{user}@{hosts}")
        }
        None => authority.to_string(),
    };
    // A `password=` query parameter goes too.
    let path = match path.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.starts_with("password="))
                .collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => path.to_string(),
    };
    format!("{scheme}://{authority}{path}")
}

/// Checks the `store` keys; the error says what is wrong.
pub fn parse(
    store: Option<String>,
    schema: Option<String>,
    password_file: Option<PathBuf>,
) -> Result<StoreConfig, String> {
    let Some(url) = store else {
        if schema.is_some() || password_file.is_some() {
            return Err(
                "store_schema and store_password_file need store = \"postgresql://...\"".into(),
            );
        }
        return Ok(StoreConfig::Directory);
    };
    if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
        return Err(format!(
            "store = \"{}\": only a PostgreSQL URL (postgresql://...) is supported; leave store \
             out to keep the tokens in token_dir",
            redact_url(&url)
        ));
    }
    let schema = schema.unwrap_or_else(|| DEFAULT_PG_SCHEMA.to_string());
    let valid = schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "store_schema = \"{schema}\": use up to 63 lowercase letters, digits and _, not \
             starting with a digit"
        ));
    }
    Ok(StoreConfig::Postgres(PgStoreConfig {
        url,
        schema,
        password_file,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgresql://app:s3cret@db1,db2:5433/hsm?sslmode=require"),
            "postgresql://app@db1,db2:5433/hsm?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://h/db?password=x&sslmode=require"),
            "postgres://h/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://h/db?password=x"),
            "postgresql://h/db"
        );
        assert_eq!(redact_url("postgresql://u@h"), "postgresql://u@h");
        let config = parse(Some("postgresql://u:pw@h/db".into()), None, None).unwrap();
        assert!(!format!("{config:?}").contains("pw"));
    }

    #[test]
    fn store_keys_are_checked() {
        assert_eq!(parse(None, None, None), Ok(StoreConfig::Directory));
        assert!(parse(None, Some("x".into()), None).is_err());
        assert!(parse(Some("mysql://h/db".into()), None, None)
            .unwrap_err()
            .contains("only a PostgreSQL URL"));
        assert!(parse(
            Some("postgresql://h/db".into()),
            Some("Bad-Name".into()),
            None
        )
        .is_err());
        let StoreConfig::Postgres(pg) =
            parse(Some("postgresql://h/db".into()), None, None).unwrap()
        else {
            panic!("not postgres")
        };
        assert_eq!(pg.schema, DEFAULT_PG_SCHEMA);
    }
}
