//! The password from libpq's password file (`PGPASSFILE`, else `~/.pgpass`) when neither
//! the URL nor `store_password_file` gives one, which the driver does not read itself.
//! Lines `host:port:database:user:password`, `*` matching anything, `\:` and `\\` escaping;
//! the first line matching one of the URL's hosts wins. As libpq does, a file that its
//! group or others can read is ignored (with a warning).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The password file libpq would read, if any.
fn password_file() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pgpass")),
    }
}

/// Splits one line at its unescaped colons, unescaping the fields.
fn fields(line: &str) -> Vec<Zeroizing<String>> {
    let mut out = vec![Zeroizing::new(String::new())];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.last_mut().expect("one field at least").push(next);
                }
            }
            ':' => out.push(Zeroizing::new(String::new())),
            c => out.last_mut().expect("one field at least").push(c),
        }
    }
    out
}

/// The password of the first line of `text` for one of `hosts` (host, port), `database`
/// and `user`.
pub fn find(
    text: &str,
    hosts: &[(String, u16)],
    database: &str,
    user: &str,
) -> Option<Zeroizing<String>> {
    let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(fields)
        .filter(|f| f.len() == 5)
        .find(|f| {
            hosts
                .iter()
                .any(|(host, port)| matches(&f[0], host) && matches(&f[1], &port.to_string()))
                && matches(&f[2], database)
                && matches(&f[3], user)
        })
        .map(|mut f| std::mem::take(&mut f[4]))
}

/// The password for `config` from the password file, if one matches.
pub fn lookup(config: &postgres::Config) -> Option<Zeroizing<String>> {
    use postgres::config::Host;
    let path = password_file()?;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "ferrohsm: password file {} has group or world access; ignored (chmod 0600 it)",
            path.display()
        );
        return None;
    }
    let text = Zeroizing::new(std::fs::read_to_string(&path).ok()?);
    let ports = config.get_ports();
    let hosts: Vec<(String, u16)> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(_) => "localhost".to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            (name, port)
        })
        .collect();
    let user = config.get_user().unwrap_or_default().to_string();
    let database = config.get_dbname().unwrap_or(&user).to_string();
    find(&text, &hosts, &database, &user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins() {
        let text = "# comment\n\
                    db1:5432:kms:app:first\n\
                    *:*:kms:app:wild\\:card\n\
                    db2:5433:*:*:other\n";
        let hosts = |h: &str, p| vec![(h.to_string(), p)];
        assert_eq!(
            find(text, &hosts("db1", 5432), "kms", "app")
                .unwrap()
                .as_str(),
            "first"
        );
        assert_eq!(
            find(text, &hosts("db9", 5432), "kms", "app")
                .unwrap()
                .as_str(),
            "wild:card"
        );
        assert_eq!(
            find(text, &hosts("db2", 5433), "x", "y").unwrap().as_str(),
            "other"
        );
        assert!(find(text, &hosts("db2", 5432), "x", "y").is_none());
        // Either host of a multi-host URL.
        let both = vec![("dbx".to_string(), 1), ("db2".to_string(), 5433)];
        assert_eq!(find(text, &both, "x", "y").unwrap().as_str(), "other");
    }
}
