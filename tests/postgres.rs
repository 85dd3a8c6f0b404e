//! The PostgreSQL store as several hosts use it (issue 13): each "host" is a process of its
//! own with its own module instance and cache, on the same database. Runs when
//! `FERROHSM_TEST_STORE_URL` names a server (`.ci/run` starts one, see
//! `.ci/start-postgres`); the outage test starts and stops a server of its own.

#[macro_use]
mod common;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::Session;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn skip_without_postgres(test: &str) -> bool {
    if !on_postgres() || !is_ferrohsm() {
        eprintln!("SKIPPED {test}: needs ferrohsm and {STORE_URL_ENV}");
        return true;
    }
    false
}

/// Waits until `file` exists (another host's signal), at most 60 s.
fn wait_for(file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "waited too long for {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(file: &Path) {
    std::fs::write(file, b"").unwrap();
}

/// Another host: this test binary again in `phase`, on this sandbox (its config and
/// signal files).
fn spawn(test: &str, phase: &str) -> Child {
    phase_command(test, phase)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn host")
}

/// This test binary in `phase` of `test`, in this sandbox.
fn phase_command(test: &str, phase: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{test}/{phase}"));
    command
}

/// Runs `phase` of `test` in another process, with `conf` as its config when given, and
/// fails unless it passed.
fn run_phase(test: &str, phase: &str, conf: Option<&Path>) {
    let mut command = phase_command(test, phase);
    if let Some(conf) = conf {
        command.env("FERROHSM_CONF", conf);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{phase} with {conf:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_ok(child: Child, what: &str) {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{what} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn find_one(
    session: &Session,
    label: &str,
    class: ObjectClass,
) -> Option<cryptoki::object::ObjectHandle> {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert!(found.len() <= 1, "one {label}");
    found.first().copied()
}

fn threads_of_this_process() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

isolated_test! {
    /// Host B is up and logged in before host A makes a key: B's next call finds it and
    /// decrypts with it, without a restart or a full reload.
    fn a_key_made_on_one_host_decrypts_on_the_other_at_once() {
        const TEST: &str = "a_key_made_on_one_host_decrypts_on_the_other_at_once";
        if skip_without_postgres(TEST) {
            return;
        }
        let dir = sandbox_dir();
        let (ready, made) = (dir.join("b-ready"), dir.join("a-made"));
        match child_phase(TEST).as_deref() {
            Some("main") => {
                drop(Token::new());
                let b = spawn(TEST, "host-b");
                let a = spawn(TEST, "host-a");
                wait_ok(a, "host A");
                wait_ok(b, "host B");
            }
            Some("host-a") => {
                wait_for(&ready);
                let token = Token::existing();
                let session = token.user();
                let pair = gen_rsa(&session, 2048, "shared", true);
                let ciphertext = session
                    .encrypt(&Mechanism::RsaPkcsOaep(oaep()), pair.public, b"envelope key")
                    .unwrap();
                std::fs::write(dir.join("ciphertext"), ciphertext).unwrap();
                signal(&made);
            }
            Some("host-b") => {
                let threads_before = threads_of_this_process();
                let token = Token::existing();
                let session = token.user();
                assert!(find_one(&session, "shared", ObjectClass::PRIVATE_KEY).is_none());
                signal(&ready);
                wait_for(&made);
                let private = find_one(&session, "shared", ObjectClass::PRIVATE_KEY)
                    .expect("host A's key, found at B's next call");
                let ciphertext = std::fs::read(dir.join("ciphertext")).unwrap();
                let plain = session
                    .decrypt(&Mechanism::RsaPkcsOaep(oaep()), private, &ciphertext)
                    .unwrap();
                assert_eq!(plain, b"envelope key");
                drop(session);
                let Token { p11, .. } = token;
                p11.finalize().unwrap();
                assert_eq!(
                    threads_of_this_process(),
                    threads_before,
                    "no thread of the module is left after C_Finalize"
                );
            }
            other => panic!("unknown phase {other:?}"),
        }
    }
}

fn oaep() -> cryptoki::mechanism::rsa::PkcsOaepParams<'static> {
    use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
    use cryptoki::mechanism::MechanismType;
    PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    )
}

const PER_HOST: usize = 40;

fn aes_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

isolated_test! {
    /// Two hosts creating and destroying token keys at the same time: every key either
    /// host's C_GenerateKey returned is there for both, none twice.
    fn concurrent_writes_from_two_hosts_lose_nothing() {
        const TEST: &str = "concurrent_writes_from_two_hosts_lose_nothing";
        if skip_without_postgres(TEST) {
            return;
        }
        match child_phase(TEST).as_deref() {
            Some("main") => {
                let token = Token::new();
                let hosts: Vec<Child> = ["host-1", "host-2"]
                    .iter()
                    .map(|h| spawn(TEST, h))
                    .collect();
                for host in hosts {
                    wait_ok(host, "a host");
                }
                // This process's index, loaded before the hosts wrote, catches up.
                let session = token.user();
                for host in ["host-1", "host-2"] {
                    for i in 0..PER_HOST {
                        let label = format!("{host}-{i}");
                        let found = find_one(&session, &label, ObjectClass::SECRET_KEY);
                        assert_eq!(found.is_some(), i % 4 != 0, "{label}");
                    }
                }
            }
            Some(host) => {
                let token = Token::existing();
                let session = token.user();
                for i in 0..PER_HOST {
                    let key = session
                        .generate_key(&Mechanism::AesKeyGen, &aes_template(&format!("{host}-{i}")))
                        .expect("C_GenerateKey");
                    if i % 4 == 0 {
                        session.destroy_object(key).expect("C_DestroyObject");
                    }
                }
                // This host sees the other's keys too (it may still be writing).
                let all = session
                    .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
                    .unwrap();
                assert!(all.len() >= PER_HOST * 3 / 4);
            }
            None => unreachable!("the body runs in a child"),
        }
    }
}

/// The first of `count` ports for test number `test`'s own servers: below Linux's
/// ephemeral range (32768-60999), where a port can be taken at any moment by the local end
/// of some client's connection (a server once failed to start on one), each test in a band
/// of its own, and apart for concurrent runs of the suite by the process id.
fn own_port(test: u16, count: u16) -> u16 {
    20_000 + test * 2_000 + count * (std::process::id() % 900) as u16
}

/// A PostgreSQL server of the test's own, for stopping and starting it.
struct OwnServer {
    data: PathBuf,
    url: String,
}

impl OwnServer {
    fn start(port: u16) -> OwnServer {
        Self::start_with(port, None)
    }

    /// With `tls`: a directory holding the server's server.crt and server.key.
    fn start_with(port: u16, tls: Option<&Path>) -> OwnServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/start-postgres");
        let mut command = Command::new(script);
        command.env("FERROHSM_PG_PORT", port.to_string());
        if let Some(dir) = tls {
            command.env("FERROHSM_PG_TLS_DIR", dir);
        }
        let output = command.output().expect("run .ci/start-postgres");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "start-postgres: {stderr}");
        let dir = stderr
            .split("server in ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .expect("the server's directory");
        OwnServer {
            data: Path::new(dir).join("data"),
            url: String::from_utf8_lossy(&output.stdout).trim().to_string(),
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        assert!(self.try_pg_ctl(args), "pg_ctl {args:?}");
    }

    fn try_pg_ctl(&self, args: &[&str]) -> bool {
        pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-l"])
            .arg(self.data.parent().unwrap().join("server.log"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// kill -9 of the server (its postmaster: the backends end when they see it gone).
    fn kill(&self) {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        let pid = pid_file.lines().next().unwrap().trim();
        assert!(Command::new("kill")
            .args(["-9", pid])
            .status()
            .unwrap()
            .success());
    }

    /// A synchronous streaming standby of this server on `port` (pg_basebackup -R), and
    /// this server made to wait for it at every commit.
    fn start_standby(&self, port: u16) -> OwnServer {
        let dir = tempfile::Builder::new()
            .prefix("ferrohsm-pg-standby.")
            .tempdir()
            .unwrap()
            .keep();
        if running_as_root() {
            assert!(Command::new("chown")
                .arg("postgres")
                .arg(&dir)
                .status()
                .unwrap()
                .success());
        }
        let data = dir.join("data");
        let primary_port = self
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let status = pg_command("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                primary_port,
                "-U",
                "ferrohsm",
                "-R",
                "-X",
                "stream",
                // At once, not at the next spread checkpoint (minutes).
                "-c",
                "fast",
                "-D",
            ])
            .arg(&data)
            .status()
            .unwrap();
        assert!(status.success(), "pg_basebackup");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        use std::io::Write;
        writeln!(
            conf,
            "port = {port}\nunix_socket_directories = '{}'",
            dir.display()
        )
        .unwrap();
        let standby = OwnServer {
            data,
            url: self
                .url
                .replace(&format!(":{primary_port}/"), &format!(":{port}/")),
        };
        standby.pg_ctl(&["start"]);
        self.sql("ALTER SYSTEM SET synchronous_standby_names = '*'");
        self.sql("SELECT pg_reload_conf()");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") != "1"
        {
            assert!(
                Instant::now() < deadline,
                "the standby never became synchronous"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        standby
    }

    fn sql(&self, sql: &str) -> String {
        let output = Command::new("psql")
            .args([self.url.as_str(), "-XAtc", sql])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

/// A PostgreSQL program (newest installed version), run as Debian's `postgres` user when
/// we are root (the server refuses to run as root).
fn pg_command(program: &str) -> Command {
    let bindir = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .map(|e| e.unwrap().path().join("bin"))
        .max()
        .unwrap();
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bindir.join(program));
        c
    } else {
        Command::new(bindir.join(program))
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        // Already stopped or killed: nothing to stop.
        let _ = self.try_pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(self.data.parent().unwrap());
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

isolated_test! {
    /// The database goes away under a running application: operations with loaded keys
    /// and searches go on, writes fail with CKR_DEVICE_ERROR, and when the server is back
    /// the module recovers by itself.
    fn an_outage_keeps_loaded_keys_working_and_recovers_by_itself() {
        const TEST: &str = "an_outage_keeps_loaded_keys_working_and_recovers_by_itself";
        if skip_without_postgres(TEST) {
            return;
        }
        let dir = sandbox_dir();
        match child_phase(TEST).as_deref() {
            Some("main") => {
                let server = OwnServer::start(own_port(0, 1));
                std::fs::write(
                    dir.join("ferrohsm.toml"),
                    format!("token_dir = \"{}\"\nstore = \"{}\"\n", dir.join("tokens").display(), server.url),
                )
                .unwrap();
                let app = spawn(TEST, "app");
                wait_for(&dir.join("loaded"));
                server.pg_ctl(&["-m", "immediate", "stop"]);
                signal(&dir.join("down"));
                wait_for(&dir.join("checked"));
                server.pg_ctl(&["start"]);
                signal(&dir.join("up"));
                wait_ok(app, "the application");
            }
            Some("app") => {
                let token = Token::new();
                let session = token.user();
                let pair = gen_rsa(&session, 2048, "loaded", true);
                let ciphertext = session
                    .encrypt(&Mechanism::RsaPkcsOaep(oaep()), pair.public, b"still here")
                    .unwrap();
                signal(&dir.join("loaded"));
                wait_for(&dir.join("down"));
                let decrypt = || session.decrypt(&Mechanism::RsaPkcsOaep(oaep()), pair.private, &ciphertext);
                assert_eq!(decrypt().expect("a loaded key works while the database is down"), b"still here");
                assert!(find_one(&session, "loaded", ObjectClass::PRIVATE_KEY).is_some());
                expect_rv(
                    session.generate_key(&Mechanism::AesKeyGen, &aes_template("during")),
                    cryptoki::error::RvError::DeviceError,
                );
                assert_eq!(decrypt().unwrap(), b"still here");
                signal(&dir.join("checked"));
                wait_for(&dir.join("up"));
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    match session.generate_key(&Mechanism::AesKeyGen, &aes_template("after")) {
                        Ok(_) => break,
                        Err(e) => assert!(Instant::now() < deadline, "no recovery: {e}"),
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                assert_eq!(decrypt().unwrap(), b"still here");
            }
            other => panic!("unknown phase {other:?}"),
        }
    }
}

isolated_test! {
    /// A token moves between the backends with its keys: copy-store from PostgreSQL to a
    /// token directory and back to another schema, and a backup of the PostgreSQL token
    /// restored into a third; each copy decrypts what the original encrypted.
    fn tokens_move_between_sqlite_and_postgresql() {
        const TEST: &str = "tokens_move_between_sqlite_and_postgresql";
        if skip_without_postgres(TEST) {
            return;
        }
        let dir = sandbox_dir();
        let url = store_url().unwrap();
        let schema = pg_schema(&dir);
        let conf = |name: &str, store: &str| {
            let path = dir.join(format!("{name}.toml"));
            std::fs::write(&path, format!("token_dir = \"{}\"\n{store}", dir.join(name).display())).unwrap();
            path
        };
        match child_phase(TEST).as_deref() {
            Some("main") => {
                {
                    let token = Token::new();
                    let session = token.user();
                    let pair = gen_rsa(&session, 2048, "moving", true);
                    let ciphertext = session
                        .encrypt(&Mechanism::RsaPkcsOaep(oaep()), pair.public, b"moved")
                        .unwrap();
                    std::fs::write(dir.join("ciphertext"), ciphertext).unwrap();
                }
                let copied = dir.join("copied");
                let (ok, text) = run_util_with(&dir.join("ferrohsm.toml"), &[
                    "copy-store", "--from", &url, "--from-schema", &schema, "--to", copied.to_str().unwrap(),
                ]);
                assert!(ok && text.contains("1 of 1 tokens copied"), "{text}");
                let to_schema = format!("{schema}_back");
                let (ok, text) = run_util_with(&dir.join("ferrohsm.toml"), &[
                    "copy-store", "--from", copied.to_str().unwrap(), "--to", &url, "--to-schema", &to_schema,
                ]);
                assert!(ok && text.contains("1 of 1 tokens copied"), "{text}");
                // Again: the token is there now, so it is left out (exit status 3).
                let (ok, text) = run_util_with(&dir.join("ferrohsm.toml"), &[
                    "copy-store", "--from", copied.to_str().unwrap(), "--to", &url, "--to-schema", &to_schema,
                ]);
                assert!(!ok && text.contains("left out token"), "{text}");
                let backup = dir.join("backup.db");
                let (ok, text) = run_util_with(&dir.join("ferrohsm.toml"), &[
                    "backup", "--token", TOKEN_LABEL, "--out", backup.to_str().unwrap(),
                ]);
                assert!(ok, "{text}");
                let restored = conf(
                    "restored",
                    &format!("store = \"{url}\"\nstore_schema = \"{schema}_restored\"\n"),
                );
                let (ok, text) = run_util_with(&restored, &["restore", "--in", backup.to_str().unwrap()]);
                assert!(ok && text.contains("schema"), "{text}");
                let copies = [
                    conf("copied", ""),
                    conf("back", &format!("store = \"{url}\"\nstore_schema = \"{to_schema}\"\n")),
                    restored,
                ];
                for copy in copies {
                    run_phase(TEST, "decrypt", Some(&copy));
                }
            }
            Some("decrypt") => {
                let token = Token::existing();
                let session = token.user();
                let private = find_one(&session, "moving", ObjectClass::PRIVATE_KEY).expect("the key");
                let ciphertext = std::fs::read(dir.join("ciphertext")).unwrap();
                let plain = session
                    .decrypt(&Mechanism::RsaPkcsOaep(oaep()), private, &ciphertext)
                    .unwrap();
                assert_eq!(plain, b"moved");
            }
            other => panic!("unknown phase {other:?}"),
        }
    }
}

/// C_Initialize of the module, which must fail with CKR_FUNCTION_FAILED (its database
/// cannot be used).
fn initialize_fails() {
    let p11 = cryptoki::context::Pkcs11::new(module_path()).unwrap();
    let rv = rv_of(p11.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    )));
    assert_eq!(rv, cryptoki::error::RvError::FunctionFailed);
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`<name>.crt`), and with `server`, a certificate for 127.0.0.1 it signed.
fn make_ca(dir: &Path, name: &str, server: bool) {
    let subject = format!("/CN=ferrohsm test {name}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &subject,
        ],
    );
    if server {
        std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &format!("{name}.crt"),
                "-CAkey",
                &format!("{name}.key"),
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        );
    }
}

isolated_test! {
    /// sslmode as libpq means it: verify-full against the right CA connects over TLS (the
    /// server's pg_stat_ssl says so), against another CA C_Initialize fails naming the
    /// certificate; require without a CA encrypts without checking.
    fn tls_to_the_database_is_verified_as_sslmode_says() {
        const TEST: &str = "tls_to_the_database_is_verified_as_sslmode_says";
        if skip_without_postgres(TEST) {
            return;
        }
        let dir = sandbox_dir();
        match child_phase(TEST).as_deref() {
            Some("main") => {
                let certs = dir.join("certs");
                std::fs::create_dir(&certs).unwrap();
                make_ca(&certs, "ca", true);
                make_ca(&certs, "other-ca", false);
                let server =
                    OwnServer::start_with(own_port(1, 1), Some(&certs));
                let url_with = |query: &str| format!("{}?{query}", server.url);
                std::fs::write(dir.join("server-url"), &server.url).unwrap();
                let conf_for = |name: &str, query: &str| {
                    let path = dir.join(format!("{name}.toml"));
                    std::fs::write(&path, format!(
                        "token_dir = \"{}\"\nstore = \"{}\"\n",
                        dir.join("tokens").display(),
                        url_with(query)
                    )).unwrap();
                    path
                };
                let ca = certs.join("ca.crt");
                let other = certs.join("other-ca.crt");
                for (name, query, phase) in [
                    ("verified", format!("sslmode=verify-full&sslrootcert={}", ca.display()), "tls"),
                    ("wrong-ca", format!("sslmode=verify-full&sslrootcert={}", other.display()), "refused"),
                    ("unchecked", "sslmode=require".to_string(), "tls"),
                ] {
                    let conf = conf_for(name, &query);
                    run_phase(TEST, phase, Some(&conf));
                }
            }
            Some("tls") => {
                let token = Token::new();
                let _session = token.user();
                let url = std::fs::read_to_string(dir.join("server-url")).unwrap();
                let output = Command::new("psql")
                    .args([
                        &format!("{url}?sslmode=disable"),
                        "-XAtc",
                        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
                         WHERE application_name = 'ferrohsm' AND ssl",
                    ])
                    .output()
                    .unwrap();
                let count: u32 = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap();
                assert!(count >= 1, "the module's sessions use TLS");
            }
            Some("refused") => initialize_fails(),
            other => panic!("unknown phase {other:?}"),
        }
    }
}

isolated_test! {
    /// A primary with a synchronous streaming standby; an application generates keys and
    /// decrypts continuously through the multi-host URL; the primary is killed (-9) and the
    /// standby promoted. Every key whose C_GenerateKey returned CKR_OK is there afterwards
    /// and works; a key loaded before the failover never stopped working. The longest gap
    /// between two successful key generations is reported.
    fn failover_to_a_synchronous_standby_keeps_every_acknowledged_key() {
        const TEST: &str = "failover_to_a_synchronous_standby_keeps_every_acknowledged_key";
        if skip_without_postgres(TEST) {
            return;
        }
        let dir = sandbox_dir();
        let acked = dir.join("acked");
        match child_phase(TEST).as_deref() {
            Some("main") => {
                let base = own_port(2, 2);
                let primary = OwnServer::start(base);
                let standby = primary.start_standby(base + 1);
                let hosts = format!("127.0.0.1:{base},127.0.0.1:{}", base + 1);
                std::fs::write(
                    dir.join("ferrohsm.toml"),
                    format!(
                        "token_dir = \"{}\"\nstore = \"postgresql://ferrohsm@{hosts}/ferrohsm_test?target_session_attrs=read-write&connect_timeout=2\"\n",
                        dir.join("tokens").display()
                    ),
                )
                .unwrap();
                let app = spawn(TEST, "app");
                let deadline = Instant::now() + Duration::from_secs(60);
                while std::fs::read_to_string(&acked).map_or(0, |t| t.lines().count()) < 20 {
                    assert!(Instant::now() < deadline, "the application made no keys");
                    std::thread::sleep(Duration::from_millis(20));
                }
                primary.kill();
                let promoting = Instant::now();
                standby.pg_ctl(&["promote"]);
                let promotion = promoting.elapsed();
                signal(&dir.join("failed-over"));
                let output = app.wait_with_output().unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(
                    output.status.success() && stdout.contains("1 passed"),
                    "the application failed\n{stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                // FERROHSM_TEST_REPORT names a file for the figure (a passing test's output is
                // not shown).
                // (libtest may print the test's name on the same line first.)
                let figures = stdout.lines().filter_map(|l| l.find("failover:").map(|at| &l[at..]));
                for line in figures {
                    let line = format!("{line}; kill to promoted standby {:.2} s", promotion.as_secs_f64());
                    eprintln!("{line}");
                    if let Some(report) = std::env::var_os("FERROHSM_TEST_REPORT") {
                        let mut text = std::fs::read_to_string(&report).unwrap_or_default();
                        text.push_str(&line);
                        text.push('\n');
                        std::fs::write(report, text).unwrap();
                    }
                }
                let check = spawn(TEST, "verify");
                wait_ok(check, "the check after the failover");
                drop(primary);
            }
            Some("app") => {
                use std::io::Write;
                let token = Token::new();
                let session = token.user();
                let loaded = session
                    .generate_key(&Mechanism::AesKeyGen, &aes_template("loaded"))
                    .unwrap();
                let use_key = |key| {
                    let sealed = session.encrypt(&Mechanism::AesEcb, key, &[7u8; 16]).unwrap();
                    assert_eq!(session.decrypt(&Mechanism::AesEcb, key, &sealed).unwrap(), [7u8; 16]);
                };
                let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&acked).unwrap();
                let (mut last_ok, mut longest_gap) = (Instant::now(), Duration::ZERO);
                let (mut attempt, mut after_failover, mut failures) = (0u32, 0u32, 0u32);
                let deadline = Instant::now() + Duration::from_secs(120);
                while after_failover < 20 {
                    assert!(Instant::now() < deadline, "no keys after the failover");
                    attempt += 1;
                    let label = format!("k{attempt}");
                    use_key(loaded);
                    match session.generate_key(&Mechanism::AesKeyGen, &aes_template(&label)) {
                        Ok(key) => {
                            writeln!(log, "{label}").unwrap();
                            longest_gap = longest_gap.max(last_ok.elapsed());
                            last_ok = Instant::now();
                            use_key(key);
                            if dir.join("failed-over").exists() {
                                after_failover += 1;
                            }
                        }
                        Err(_) => {
                            failures += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                println!(
                    "failover: longest time without a key generation {:.2} s ({failures} calls refused meanwhile)",
                    longest_gap.as_secs_f64()
                );
            }
            Some("verify") => {
                let token = Token::existing();
                let session = token.user();
                let labels = std::fs::read_to_string(&acked).unwrap();
                for label in labels.lines() {
                    let key = find_one(&session, label, ObjectClass::SECRET_KEY)
                        .unwrap_or_else(|| panic!("acknowledged key {label} lost in the failover"));
                    let sealed = session.encrypt(&Mechanism::AesEcb, key, &[1u8; 16]).unwrap();
                    assert_eq!(session.decrypt(&Mechanism::AesEcb, key, &sealed).unwrap(), [1u8; 16]);
                }
            }
            other => panic!("unknown phase {other:?}"),
        }
    }
}

isolated_test! {
    /// A backup of the previous release's format (the format-2 fixture of
    /// tests/fixtures) restored into PostgreSQL: its first login there tags every object
    /// (`tag_all` on this backend), a second process finds everything intact.
    fn a_backup_of_the_previous_format_restores_into_postgresql() {
        const TEST: &str = "a_backup_of_the_previous_format_restores_into_postgresql";
        if skip_without_postgres(TEST) {
            return;
        }
        let dir = sandbox_dir();
        match child_phase(TEST).as_deref() {
            Some("main") => {
                let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/format2-token/token-0.db");
                let (ok, text) = run_util_with(
                    &dir.join("ferrohsm.toml"),
                    &["restore", "--in", fixture.to_str().unwrap()],
                );
                assert!(ok, "{text}");
                let untagged = || {
                    common::pg::psql(&dir, "SELECT count(*) FROM objects WHERE mac IS NULL OR mac_seal <> 1")
                };
                assert_ne!(untagged().trim(), "0", "restored as it was: untagged");
                for phase in ["login", "login"] {
                    run_phase(TEST, phase, None);
                }
                assert_eq!(untagged().trim(), "0", "the first login tagged every object");
            }
            Some("login") => {
                let p11 = initialized();
                let slot = slot_by_label(&p11, "fixture").expect("the fixture's token");
                let session = p11.open_rw_session(slot).unwrap();
                session
                    .login(cryptoki::session::UserType::User, Some(&pin(USER_PIN)))
                    .expect("the fixture's user PIN");
                let public = find_one(&session, "fixture-rsa", ObjectClass::PUBLIC_KEY).unwrap();
                let private = find_one(&session, "fixture-rsa", ObjectClass::PRIVATE_KEY).unwrap();
                let sealed = session.encrypt(&Mechanism::RsaPkcs, public, b"old format").unwrap();
                assert_eq!(session.decrypt(&Mechanism::RsaPkcs, private, &sealed).unwrap(), b"old format");
            }
            other => panic!("unknown phase {other:?}"),
        }
    }
}

/// The lines of `server`'s pg_hba.conf: `role` must give its password (SCRAM) over TCP,
/// everyone else stays trusted (the tests' superuser, for psql). First match wins.
fn require_password(server: &OwnServer, role: &str, password: &str) {
    server.sql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT CREATE ON DATABASE ferrohsm_test TO {role}"
    ));
    let hba = server.data.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all {role} 127.0.0.1/32 scram-sha-256\n{old}"),
    )
    .unwrap();
    server.pg_ctl(&["reload"]);
}

isolated_test! {
    /// A server that asks for a password (SCRAM): the module logs in with the password of
    /// `store_password_file`, or of the libpq password file (`PGPASSFILE`); without one,
    /// with a wrong one, or with a password file others can read, C_Initialize fails with
    /// CKR_FUNCTION_FAILED and a message naming the cause, never the password.
    fn a_server_that_asks_for_a_password_gets_it_from_the_password_files() {
        const TEST: &str = "a_server_that_asks_for_a_password_gets_it_from_the_password_files";
        if skip_without_postgres(TEST) {
            return;
        }
        const PASSWORD: &str = "pw-Kq8vX2mz";
        let dir = sandbox_dir();
        match child_phase(TEST).as_deref() {
            Some("main") => {
                use std::os::unix::fs::PermissionsExt;
                let server = OwnServer::start(own_port(3, 1));
                require_password(&server, "app", PASSWORD);
                let port = server.url.rsplit(':').next().unwrap().split('/').next().unwrap().to_string();
                let secret_file = |name: &str, text: &str, mode: u32| {
                    let path = dir.join(name);
                    std::fs::write(&path, text).unwrap();
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
                    path
                };
                let password_file = secret_file("password", &format!("{PASSWORD}\n"), 0o600);
                let wrong_file = secret_file("wrong-password", "not-it\n", 0o600);
                let pgpass = secret_file(
                    "pgpass",
                    &format!("# the test's\notherhost:*:*:*:other\n127.0.0.1:{port}:ferrohsm_test:app:{PASSWORD}\n"),
                    0o600,
                );
                let readable_pgpass = secret_file("pgpass-readable", &std::fs::read_to_string(&pgpass).unwrap(), 0o644);
                let no_file = dir.join("no-such-pgpass");
                let url = format!("postgresql://app@127.0.0.1:{port}/ferrohsm_test");
                let conf = |name: &str, extra: String| {
                    let path = dir.join(format!("{name}.toml"));
                    std::fs::write(&path, format!(
                        "token_dir = \"{}\"\nstore = \"{url}\"\nstore_schema = \"app_{name}\"\n{extra}",
                        dir.join("tokens").display(),
                    )).unwrap();
                    path
                };
                let file_key = |file: &Path| format!("store_password_file = \"{}\"\n", file.display());
                // (config, PGPASSFILE, phase, what the refusal's message must name)
                let cases = [
                    (conf("password_file", file_key(&password_file)), &no_file, "works", ""),
                    (conf("pgpass", String::new()), &pgpass, "works", ""),
                    (conf("none", String::new()), &no_file, "refused", "password missing"),
                    (conf("wrong", file_key(&wrong_file)), &no_file, "refused", "password authentication failed"),
                    (conf("readable", String::new()), &readable_pgpass, "refused", "pgpass-readable has group or world access"),
                ];
                for (conf, pgpassfile, phase, cause) in cases {
                    let output = phase_command(TEST, phase)
                        .env("FERROHSM_CONF", &conf)
                        .env("PGPASSFILE", pgpassfile)
                        .env("HOME", &dir)
                        .output()
                        .unwrap();
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    assert!(
                        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
                        "{phase} with {}: {stderr}", conf.display()
                    );
                    assert!(!stderr.contains(PASSWORD), "the password never shows: {stderr}");
                    assert!(stderr.contains(cause), "{} names {cause:?}: {stderr}", conf.display());
                }
            }
            Some("works") => {
                let token = Token::new();
                let session = token.user();
                let key = session.generate_key(&Mechanism::AesKeyGen, &aes_template("by-password")).unwrap();
                assert!(find_one(&session, "by-password", ObjectClass::SECRET_KEY) == Some(key));
            }
            Some("refused") => initialize_fails(),
            other => panic!("unknown phase {other:?}"),
        }
    }
}

/// `run_util_with` with a watchdog: a command that has not ended after a minute fails the
/// test (the PostgreSQL listener thread once kept a process from exiting for as long as
/// other hosts kept writing).
fn run_util_watched(conf: &Path, args: &[&str]) -> (bool, String) {
    let mut child = util_command(conf)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferrohsm-util");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferrohsm-util {args:?} did not end within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    util_result(child.wait_with_output().unwrap())
}

/// The number of lines of `file` (0 while it does not exist).
fn line_count(file: &Path) -> usize {
    std::fs::read_to_string(file).map_or(0, |text| text.lines().count())
}

isolated_test! {
    /// copy-store while an application writes to the token (keys created, others created
    /// and destroyed at once): each copy is one consistent snapshot. It opens with the user
    /// PIN (record, object-set digest and tags agree), its keys are exactly the first n the
    /// application was told were made, n between the counts before and after the copy, and
    /// every one of them encrypts and decrypts. Both ways: PostgreSQL to a token directory
    /// and a token directory to PostgreSQL.
    fn copy_store_takes_a_consistent_snapshot_while_the_token_is_written() {
        const TEST: &str = "copy_store_takes_a_consistent_snapshot_while_the_token_is_written";
        const FILLED: usize = 150;
        if skip_without_postgres(TEST) {
            return;
        }
        let dir = sandbox_dir();
        match child_phase(TEST).as_deref() {
            Some("main") => {
                let url = store_url().unwrap();
                let schema = pg_schema(&dir);
                let sqlite_source = dir.join("sqlite-source");
                let sqlite_conf = dir.join("sqlite-source.toml");
                std::fs::write(&sqlite_conf, format!("token_dir = \"{}\"\n", sqlite_source.display())).unwrap();
                let to_dir = |name: &str| {
                    let path = dir.join(name);
                    let conf = dir.join(format!("{name}.toml"));
                    std::fs::write(&conf, format!("token_dir = \"{}\"\n", path.display())).unwrap();
                    (vec!["--to".to_string(), path.display().to_string()], conf)
                };
                let to_schema = |name: &str| {
                    let conf = dir.join(format!("{name}.toml"));
                    let to = format!("{schema}_{name}");
                    std::fs::write(&conf, format!(
                        "token_dir = \"{}\"\nstore = \"{url}\"\nstore_schema = \"{to}\"\n",
                        dir.join(name).display()
                    )).unwrap();
                    (vec!["--to".to_string(), url.clone(), "--to-schema".to_string(), to], conf)
                };
                type Destination = (Vec<String>, PathBuf);
                let sources: [(&str, Vec<String>, PathBuf, Vec<Destination>); 2] = [
                    (
                        "pg",
                        vec!["--from".into(), url.clone(), "--from-schema".into(), schema.clone()],
                        dir.join("ferrohsm.toml"),
                        (0..3).map(|i| to_dir(&format!("pg-copy-{i}"))).collect(),
                    ),
                    (
                        "sqlite",
                        vec!["--from".into(), sqlite_source.display().to_string()],
                        sqlite_conf.clone(),
                        (0..3).map(|i| to_schema(&format!("sqlite_copy_{i}"))).collect(),
                    ),
                ];
                for (kind, from, source_conf, destinations) in sources {
                    let acked = dir.join(format!("acked-{kind}"));
                    let writer = phase_command(TEST, "writer")
                        .env("FERROHSM_CONF", &source_conf)
                        .env("ACKED", &acked)
                        .env("SIGNALS", dir.join(kind))
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    wait_for(&dir.join(format!("{kind}-filled")));
                    let mut copies = Vec::new();
                    for (to, conf) in destinations {
                        let before = line_count(&acked);
                        let mut args = vec!["copy-store".to_string()];
                        args.extend(from.iter().cloned());
                        args.extend(to);
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        let (ok, text) = run_util_watched(&source_conf, &args);
                        let after = line_count(&acked);
                        assert!(ok && text.contains("1 of 1 tokens copied"), "{kind}: {text}");
                        copies.push((conf, before, after));
                    }
                    signal(&dir.join(format!("{kind}-stop")));
                    wait_ok(writer, "the writer");
                    assert!(
                        copies.iter().any(|(_, before, after)| before < after),
                        "{kind}: no copy overlapped a write ({copies:?}); the test proves nothing"
                    );
                    for (conf, before, after) in copies {
                        let count_file = conf.with_extension("count");
                        let output = phase_command(TEST, "check")
                            .env("FERROHSM_CONF", &conf)
                            .env("COUNT", &count_file)
                            .output()
                            .unwrap();
                        assert!(
                            output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
                            "the copy {}: {}", conf.display(), String::from_utf8_lossy(&output.stderr)
                        );
                        let n: usize = std::fs::read_to_string(&count_file).unwrap().parse().unwrap();
                        // A key committed but not yet acknowledged may be in the copy.
                        assert!(
                            (before..=after + 1).contains(&n),
                            "{}: {n} keys, acknowledged {before} before and {after} after the copy",
                            conf.display()
                        );
                    }
                }
            }
            Some("writer") => {
                let acked = PathBuf::from(std::env::var_os("ACKED").unwrap());
                let signals = std::env::var("SIGNALS").unwrap();
                let token = Token::new();
                let session = token.user();
                let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&acked).unwrap();
                let stop = PathBuf::from(format!("{signals}-stop"));
                let mut n = 0;
                while !stop.exists() {
                    session.generate_key(&Mechanism::AesKeyGen, &aes_template(&format!("w-{n}"))).unwrap();
                    use std::io::Write;
                    writeln!(log, "w-{n}").unwrap();
                    let passing = session
                        .generate_key(&Mechanism::AesKeyGen, &aes_template(&format!("t-{n}")))
                        .unwrap();
                    session.destroy_object(passing).unwrap();
                    n += 1;
                    if n == FILLED {
                        signal(Path::new(&format!("{signals}-filled")));
                    }
                }
                assert!(n > FILLED, "the writer went on during the copies");
            }
            Some("check") => {
                let token = Token::existing();
                let session = token.user();
                let keys = session.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap();
                let mut made = Vec::new();
                let mut passing = 0;
                for key in keys {
                    let label = match session.get_attributes(key, &[cryptoki::object::AttributeType::Label]).unwrap().pop() {
                        Some(Attribute::Label(label)) => String::from_utf8(label).unwrap(),
                        other => panic!("label: {other:?}"),
                    };
                    let sealed = session.encrypt(&Mechanism::AesEcb, key, &[7u8; 16]).unwrap();
                    assert_eq!(session.decrypt(&Mechanism::AesEcb, key, &sealed).unwrap(), [7u8; 16], "{label}");
                    match label.split_once('-') {
                        Some(("w", n)) => made.push(n.parse::<usize>().unwrap()),
                        Some(("t", _)) => passing += 1,
                        _ => panic!("unexpected key {label}"),
                    }
                }
                assert!(passing <= 1, "{passing} passing keys: at most the one not yet destroyed");
                made.sort_unstable();
                assert_eq!(made, (0..made.len()).collect::<Vec<_>>(), "the first n keys, none missing");
                std::fs::write(std::env::var_os("COUNT").unwrap(), made.len().to_string()).unwrap();
            }
            other => panic!("unknown phase {other:?}"),
        }
    }
}
