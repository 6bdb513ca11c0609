//! Shared helpers for the end-to-end tests in `it/`.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::Duration;

/// The path of the `loan` binary built from this workspace, for tests that run it as a user would.
///
/// Cargo gives `CARGO_BIN_EXE_<name>` only to the tests of the package that owns the binary, and
/// `loan` belongs to `loan-cli`, not to this package. So the binary is found where Cargo puts
/// it: a test executable runs from `<target-dir>/<profile>/deps/`, and `loan` is built to
/// `<target-dir>/<profile>/loan`.
///
/// The first call in a test process runs `cargo build -p loan-cli --bin loan` into that same
/// target directory and profile (later calls, from any thread, wait for it and reuse the
/// result). It runs even when the binary exists, so a test never runs a binary left over from
/// older sources; when nothing changed Cargo does no work. Test runs cross-compiled with
/// `--target` are not supported.
///
/// # Panics
///
/// If the binary cannot be built or found: the tests cannot run without it, and the panic
/// message carries Cargo's output.
pub fn loan_binary() -> PathBuf {
    static LOAN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match LOAN.get_or_init(build_loan) {
        Ok(path) => path.clone(),
        Err(reason) => panic!("the `loan` binary is not available: {reason}"),
    }
}

fn build_loan() -> Result<PathBuf, String> {
    let test_exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the test binary: {e}"))?;
    // <target-dir>/<profile>/deps/<test binary>
    let profile_dir = test_exe.parent().and_then(Path::parent).ok_or_else(|| {
        format!(
            "{} is not inside a Cargo target directory",
            test_exe.display()
        )
    })?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("{} has no target directory", profile_dir.display()))?;
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        // The `dev` and `test` profiles build into `debug/`.
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let workspace_manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));

    let output = Command::new(&cargo)
        .arg("build")
        .arg("--manifest-path")
        .arg(&workspace_manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--profile", profile, "-p", "loan-cli", "--bin", "loan"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build -p loan-cli --bin loan` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }

    let binary = profile_dir.join(format!("loan{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("cargo built no binary at {}", binary.display()))
    }
}

/// `GET path` on `address`: status code and body, or `None` if nothing answers.
pub fn http_get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_request(address, "GET", path, None)
}

/// `POST path` with a JSON body on `address`: status code and body, or `None` if nothing
/// answers.
pub fn http_post(address: SocketAddr, path: &str, json: &[u8]) -> Option<(u16, String)> {
    http_request(address, "POST", path, Some(json))
}

fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&[u8]>,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(body) = json {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(json.unwrap_or_default());
    stream.write_all(&bytes).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

pub fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// Kills the service if a test fails before stopping it.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
