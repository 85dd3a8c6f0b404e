//! A C program that includes include/ferrohsm.h (when build.rs has generated it) with
//! p11-kit's pkcs11.h, links -lferrohsm and runs an RSA round trip through the module.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn c_program_links_and_round_trips() {
    if Command::new("cc").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no C compiler (cc) on this machine");
        return;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = manifest.join("tests/c/rsa_roundtrip.c");
    let module = common::module_path();
    let lib_dir = module.parent().expect("module directory");
    let lib_file = module
        .file_name()
        .expect("module file name")
        .to_string_lossy()
        .into_owned();
    let sandbox = common::Sandbox::new();
    let program = sandbox.path().join("rsa_roundtrip");

    let with_header = manifest.join("include/ferrohsm.h").exists() && !common::is_softhsm();
    let mut compile = Command::new("cc");
    compile
        .arg(&source)
        .arg("-o")
        .arg(&program)
        .arg("-Wall")
        .arg("-I/usr/include/p11-kit-1");
    if with_header {
        compile
            .arg("-DHAVE_FERROHSM_H")
            .arg("-I")
            .arg(manifest.join("include"));
    }
    compile
        .arg("-L")
        .arg(lib_dir)
        .arg(format!("-l:{lib_file}"))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()));
    let output = compile.output().expect("run cc");
    assert!(
        output.status.success(),
        "cc failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let mut run = Command::new(&program);
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
    if with_header {
        assert!(
            stdout.contains("SM3 digest and interface list OK"),
            "{stdout}"
        );
    }
}
