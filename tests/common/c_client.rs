//! Building the C clients of tests/c/ against the module under test: p11-kit's pkcs11.h,
//! include/ferrohsm.h when it exists (and the module is ferrohsm), linked with the module
//! and an rpath to it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A C client built from tests/c/<source>.
pub struct CClient {
    pub program: PathBuf,
    /// Built with -DHAVE_FERROHSM_H (the vendor constants and 3.0 prototypes).
    pub with_header: bool,
}

/// Whether a C compiler is installed; prints why a test is skipped when not.
pub fn have_cc() -> bool {
    let found = Command::new("cc").arg("--version").output().is_ok();
    if !found {
        eprintln!("SKIPPED: no C compiler (cc) on this machine");
    }
    found
}

/// Compiles tests/c/<source> into `out_dir`; panics with the compiler's output on failure.
pub fn build(source: &str, out_dir: &Path) -> CClient {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let module = super::module_path();
    let lib_dir = module.parent().expect("module directory");
    let lib_file = module
        .file_name()
        .expect("module file name")
        .to_string_lossy()
        .into_owned();
    let program = out_dir.join(source.trim_end_matches(".c"));
    let with_header = manifest.join("include/ferrohsm.h").exists() && !super::is_softhsm();
    let mut compile = Command::new("cc");
    compile
        .arg(manifest.join("tests/c").join(source))
        .arg("-o")
        .arg(&program)
        .arg("-g")
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
    CClient {
        program,
        with_header,
    }
}
