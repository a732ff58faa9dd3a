//! Installing Debian packages with apt-get, when this is Debian and we are root; otherwise
//! the command to run, named.

use std::path::Path;
use std::process::Command;

pub fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `apt-get update` then `apt-get install` of `packages` (no recommends).
pub fn install(packages: &[String]) -> Result<(), String> {
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
    run("apt-get", &args)
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
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
