//! Finding headless Chromium, which the status-page test drives (`integration/tests/
//! status_page.rs` renders the page and reads its DOM), and installing Debian's `chromium`.

use std::path::PathBuf;

/// The browsers the test tries, in its order (`CHROMIUM` first when set).
pub const NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| NAMES.map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// Makes sure a Chromium is there, installing Debian's `chromium` when it can.
pub fn ensure() -> Result<(), String> {
    if find().is_some() {
        return Ok(());
    }
    eprintln!("xtask: the status-page test needs headless Chromium, which this machine lacks");
    if !crate::apt::is_debian() {
        return Err(
            "this is not Debian: install Chromium with your package manager, or set CHROMIUM \
             to a Chromium or Chrome binary"
                .into(),
        );
    }
    crate::apt::install(&["chromium".to_string()])?;
    find()
        .map(|_| ())
        .ok_or_else(|| "installed chromium, yet no chromium is on PATH".into())
}
