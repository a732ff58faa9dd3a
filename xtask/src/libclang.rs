//! Finding libclang (the shared library bindgen loads, and clang's own headers such as
//! `stdbool.h` it parses RocksDB's C header with), and installing it from Debian's packages.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What is missing, as found on this machine.
#[derive(Debug, PartialEq, Eq)]
pub enum Missing {
    Library,
    Headers,
}

/// Looks under `root` ("/" on a real machine) the way clang-sys and bindgen do.
pub fn find(root: &Path, libclang_path: Option<&str>) -> Result<PathBuf, Missing> {
    let mut lib_dirs: Vec<PathBuf> = Vec::new();
    if let Some(p) = libclang_path.filter(|p| !p.is_empty()) {
        lib_dirs.push(root.join(p.trim_start_matches('/')));
    }
    lib_dirs.extend(llvm_dirs(root).into_iter().map(|d| d.join("lib")));
    for d in [
        "usr/lib/x86_64-linux-gnu",
        "usr/lib/aarch64-linux-gnu",
        "usr/lib64",
        "usr/lib",
        "usr/local/lib",
    ] {
        lib_dirs.push(root.join(d));
    }
    let lib = lib_dirs
        .iter()
        .find(|d| has_libclang(d))
        .cloned()
        .ok_or(Missing::Library)?;
    // clang's resource headers: /usr/lib/llvm-N/lib/clang/VERSION/include/stdbool.h
    let headers = llvm_dirs(root)
        .into_iter()
        .chain([root.join("usr"), root.join("usr/local")])
        .flat_map(|d| entries(&d.join("lib/clang")))
        .any(|v| v.join("include/stdbool.h").is_file());
    if headers {
        Ok(lib)
    } else {
        Err(Missing::Headers)
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn llvm_dirs(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = entries(&root.join("usr/lib"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("llvm-"))
        })
        .collect();
    v.sort();
    v.reverse();
    v
}

fn has_libclang(dir: &Path) -> bool {
    entries(dir).iter().any(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.starts_with("libclang") && n.contains(".so") && !n.starts_with("libclang-cpp")
        })
    })
}

/// Makes sure libclang is there, installing it with apt-get when this is Debian and we are root.
pub fn ensure() -> Result<(), String> {
    let env_path = std::env::var("LIBCLANG_PATH").ok();
    let missing = match find(Path::new("/"), env_path.as_deref()) {
        Ok(_) => return Ok(()),
        Err(m) => m,
    };
    let what = match missing {
        Missing::Library => "libclang (the library)",
        Missing::Headers => "clang's headers (stdbool.h)",
    };
    eprintln!("xtask: RocksDB's bindings need {what}, which this machine lacks");
    if !Path::new("/etc/debian_version").exists() {
        return Err(
            "this is not Debian: install libclang and clang's headers with your package \
                    manager (e.g. `dnf install clang-devel`, `apk add clang-dev`), or set \
                    LIBCLANG_PATH"
                .into(),
        );
    }
    let packages = debian_packages();
    if !is_root() {
        return Err(format!(
            "not root, so it cannot be installed from here: run `sudo apt-get install -y \
             --no-install-recommends {}` and try again",
            packages.join(" ")
        ));
    }
    eprintln!(
        "xtask: installing {} from Debian's packages",
        packages.join(" ")
    );
    run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(packages.iter().map(String::as_str));
    run("apt-get", &args)?;
    find(Path::new("/"), env_path.as_deref())
        .map(|_| ())
        .map_err(|m| {
            format!(
                "installed {}, yet {m:?} is still missing",
                packages.join(" ")
            )
        })
}

/// The smallest packages that have both parts: libclang1-N and libclang-common-N-dev for the
/// LLVM this Debian ships (14 on bookworm), else the meta-package.
fn debian_packages() -> Vec<String> {
    for v in [19, 18, 17, 16, 15, 14, 13] {
        let lib = format!("libclang1-{v}");
        let ok = Command::new("apt-cache")
            .args(["show", &lib])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
        if ok {
            return vec![lib, format!("libclang-common-{v}-dev")];
        }
    }
    vec!["libclang-dev".into()]
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let st = Command::new(cmd)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`{cmd} {}` failed ({st})", args.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, p: &str) {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, b"").unwrap();
    }

    #[test]
    fn finds_debians_layout_and_says_which_part_is_missing() {
        let root = std::env::temp_dir().join(format!("xtask-libclang-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        assert_eq!(find(&root, None), Err(Missing::Library));
        // libclang1-14 alone: the library, not the headers.
        touch(&root, "usr/lib/x86_64-linux-gnu/libclang-14.so.1");
        touch(&root, "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14");
        assert_eq!(find(&root, None), Err(Missing::Headers));
        // libclang-common-14-dev adds them.
        touch(&root, "usr/lib/llvm-14/lib/clang/14.0.6/include/stdbool.h");
        assert_eq!(find(&root, None), Ok(root.join("usr/lib/x86_64-linux-gnu")));
        // LIBCLANG_PATH wins.
        touch(&root, "opt/clang/libclang.so");
        assert_eq!(find(&root, Some("/opt/clang")), Ok(root.join("opt/clang")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
