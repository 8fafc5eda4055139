//! Compiles the sandbox's pause program (`pause/pause.c`) into a static executable,
//! `$OUT_DIR/pause`, which the kubelet embeds and packs as its built-in pause image
//! (`src/images/pause.rs`): with it no pod needs a registry for its sandbox.
//!
//! The compiler is the target's C compiler as the `cc` crate would pick it
//! (`CC_<target>`, `TARGET_CC`, `CC`, else `cc`); static linking needs the C library's
//! static archives (`libc6-dev` on Debian/Ubuntu).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let source = manifest_dir.join("pause/pause.c");
    let output = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("pause");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed=build.rs");

    let target = env::var("TARGET").expect("set by cargo");
    let compiler_vars = [
        format!("CC_{}", target.replace('-', "_")),
        "TARGET_CC".to_string(),
        "CC".to_string(),
    ];
    for var in &compiler_vars {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let compiler = compiler_vars
        .iter()
        .find_map(|var| env::var(var).ok().filter(|value| !value.trim().is_empty()))
        .unwrap_or_else(|| "cc".to_string());
    // `CC="ccache gcc"` and the like: a program and its own arguments.
    let mut words = compiler.split_whitespace();
    let program = words.next().expect("not blank");

    // -s drops symbols (and with them the build's temp paths) and --build-id=none the
    // one hash that would differ, so the same source and compiler give the same bytes.
    let result = Command::new(program)
        .args(words)
        .args(["-static", "-Os", "-s", "-Wl,--build-id=none", "-o"])
        .arg(&output)
        .arg(&source)
        .output();
    let hint = "k3rs embeds a static pause program and needs a C compiler with a static C \
                library to build it (Debian/Ubuntu: apt-get install build-essential libc6-dev)";
    match result {
        Err(err) => panic!("cannot run the C compiler `{compiler}`: {err}\n{hint}"),
        Ok(out) if !out.status.success() => panic!(
            "compiling {} with `{compiler}` failed ({}):\n{}{}\n{hint}",
            source.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        ),
        Ok(_) => {}
    }
}
