//! TLS to the database with libpq's meaning of `sslmode` and `sslrootcert`, which the
//! driver's own URL parser does not know beyond disable/prefer/require: the URL's
//! `verify-ca` / `verify-full` and `sslrootcert` are taken out before it is parsed and
//! become the TLS connector's checks.
//!
//! - `disable`: no TLS. `prefer` (the default) and `require`: TLS (required or if offered)
//!   without checking the certificate, as libpq does, unless `sslrootcert` is given: then
//!   as `verify-ca`.
//! - `verify-ca`: the server's chain must lead to `sslrootcert` (or the system's roots).
//! - `verify-full`: that, and the certificate must name the host connected to.

use crate::error::{Error, Result};
use cryptoki_sys::*;
use postgres_native_tls::MakeTlsConnector;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Encrypt, whoever the server is.
    None,
    Chain,
    ChainAndName,
}

/// What the URL asks of TLS, and the URL left for the driver.
pub struct TlsSettings {
    check: Check,
    root_cert: Option<PathBuf>,
}

/// Splits the TLS keys the driver does not know out of `url`; returns the URL for the
/// driver and the settings.
pub fn split_url(url: &str) -> (String, TlsSettings) {
    let mut settings = TlsSettings {
        check: Check::None,
        root_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), settings);
    };
    let mut kept = Vec::new();
    for param in query.split('&') {
        match param.split_once('=') {
            Some(("sslmode", "verify-ca")) => {
                settings.check = Check::Chain;
                kept.push("sslmode=require".to_string());
            }
            Some(("sslmode", "verify-full")) => {
                settings.check = Check::ChainAndName;
                kept.push("sslmode=require".to_string());
            }
            Some(("sslrootcert", path)) => settings.root_cert = Some(PathBuf::from(path)),
            _ => kept.push(param.to_string()),
        }
    }
    if settings.root_cert.is_some() && settings.check == Check::None {
        settings.check = Check::Chain;
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, settings)
}

impl TlsSettings {
    /// The connector the driver negotiates TLS with.
    pub fn connector(&self) -> Result<MakeTlsConnector> {
        let bad = |what: String| Error::with(CKR_FUNCTION_FAILED, what);
        let mut builder = native_tls::TlsConnector::builder();
        if let Some(path) = &self.root_cert {
            let pem = std::fs::read(path)
                .map_err(|e| bad(format!("cannot read sslrootcert {}: {e}", path.display())))?;
            let cert = native_tls::Certificate::from_pem(&pem)
                .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
            builder.add_root_certificate(cert);
        }
        match self.check {
            Check::None => {
                builder.danger_accept_invalid_certs(true);
                builder.danger_accept_invalid_hostnames(true);
            }
            Check::Chain => {
                builder.danger_accept_invalid_hostnames(true);
            }
            Check::ChainAndName => {}
        }
        let connector = builder
            .build()
            .map_err(|e| bad(format!("cannot set up TLS: {e}")))?;
        Ok(MakeTlsConnector::new(connector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_keys_become_checks() {
        let (url, tls) = split_url(
            "postgresql://h/db?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x",
        );
        assert_eq!(url, "postgresql://h/db?sslmode=require&application_name=x");
        assert_eq!(tls.check, Check::ChainAndName);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/ca.pem")));
        let (url, tls) = split_url("postgresql://h/db?sslmode=require&sslrootcert=/ca.pem");
        assert_eq!(url, "postgresql://h/db?sslmode=require");
        assert_eq!(tls.check, Check::Chain);
        let (url, tls) = split_url("postgresql://h/db");
        assert_eq!(
            (url.as_str(), tls.check),
            ("postgresql://h/db", Check::None)
        );
    }
}
