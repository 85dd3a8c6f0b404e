//! A C program that includes include/ferrohsm.h (when build.rs has generated it) with
//! p11-kit's pkcs11.h, links -lferrohsm and runs an RSA round trip through the module.

mod common;

use std::process::Command;

#[test]
fn c_program_links_and_round_trips() {
    if !common::c_client::have_cc() {
        return;
    }
    let sandbox = common::Sandbox::new();
    let client = common::c_client::build("rsa_roundtrip.c", sandbox.path());
    let module = common::module_path();
    let lib_dir = module.parent().expect("module directory");

    let mut run = Command::new(&client.program);
    run.env("LD_LIBRARY_PATH", lib_dir)
        .env("FERROHSM_CONF", sandbox.path().join("ferrohsm.toml"));
    if common::is_softhsm() {
        run.env("SOFTHSM2_CONF", sandbox.path().join("softhsm2.conf"));
    }
    let output = run.output().expect("run the C program");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("round trip OK"),
        "C program failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    if client.with_header {
        assert!(
            stdout.contains("SM3 digest and interface list OK"),
            "{stdout}"
        );
    }
}
