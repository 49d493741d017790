//! Installing what a fresh machine lacks: rust targets, Debian packages, the Python peers, the test
//! chain's npm tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::exec;

/// Third-party Python peers, pinned. pytrickle is installed without its declared dependencies
/// (they pull torch with CUDA, gigabytes); its trickle client needs only aiohttp.
/// livepeer-gateway declares Python >= 3.12 but runs on 3.11.
const PEERS_VERSION: &str =
    "peers-v3: aiohttp>=3.9 pytrickle==0.1.6 livepeer-gateway==1.0.0 eth-account==0.13.7 aiortc==1.16.0";

/// The full pytrickle worker (its `StreamServer` media pipeline): torch (CPU use, CUDA wheels),
/// PyAV, OpenCV. About 2 minutes and 5.8 GB. av is pinned: pytrickle allows `av<=14.4.0`, and
/// only 14.2.0 has a binary wheel for CPython 3.11 here (av's sdist does not build).
const WORKER_VERSION: &str = "worker-v1: av==14.2.0 pytrickle==0.1.6";

/// The local test chain's tools (tests/src/chain.rs), pinned: anvil (its npm package and the
/// platform package holding the binary; installed without the package's postinstall step, which
/// the binary does not need) and solc-js (the compiler as JavaScript, offline).
const NPM_PACKAGES: [&str; 3] = ["@foundry-rs/anvil@1.7.1", "@foundry-rs/anvil-linux-amd64@1.7.1", "solc@0.8.28"];

/// Where the installed peers live.
pub struct Peers {
    pub python: PathBuf,
    /// The full pytrickle worker venv's python (`tests/peers/peer_worker.py` runs on it).
    pub worker_python: PathBuf,
    /// The test chain's tools.
    pub chain: ChainTools,
}

/// The test chain's tools, installed by npm under `target/npm`.
pub struct ChainTools {
    /// The anvil binary.
    pub anvil: PathBuf,
    /// solc-js's command line (`solcjs`).
    pub solcjs: PathBuf,
}

/// Everything the tests and the demo need.
pub fn install_all(root: &Path) -> Result<Peers> {
    ensure_rust_target("wasm32-wasip2")?;
    ensure_debian_library_packages(BUILD_LIBRARIES)?;
    // Chromium, ip and unshare: the browser test (WHIP and WHEP in a network namespace it makes).
    ensure_debian_packages(&[
        ("ffmpeg", "ffmpeg"),
        ("ffprobe", "ffmpeg"),
        ("chromium", "chromium"),
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
    ])?;
    Ok(Peers { python: ensure_peers(root)?, worker_python: ensure_worker(root)?, chain: ensure_chain_tools(root)? })
}

fn on_path(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool} >/dev/null 2>&1")]).status().is_ok_and(|s| s.success())
}

pub fn ensure_rust_target(target: &str) -> Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == target) => Ok(()),
        Ok(_) => {
            eprintln!("xtask: installing the {target} rust target");
            exec(Command::new("rustup").args(["target", "add", target]))
        }
        Err(e) => bail!("rustup is needed to add the {target} target: {e}"),
    }
}

/// Debian packages that building the host needs (checked with `dpkg -s`, not on PATH): FFmpeg's
/// libraries and headers for the frame pipeline (`byoc-frames`' `codec` feature, through ffmpeg-next,
/// whose codec module needs libavformat too), and clang + pkg-config for its bindgen build script.
pub const BUILD_LIBRARIES: &[&str] = &[
    "libavcodec-dev",
    "libavformat-dev",
    "libavutil-dev",
    "libswscale-dev",
    "libswresample-dev",
    "clang",
    "libclang-dev",
    "pkg-config",
];

/// `(tool on PATH, Debian package providing it)` pairs; installs the missing packages.
pub fn ensure_debian_packages(tools: &[(&str, &str)]) -> Result<()> {
    let mut missing: Vec<&str> = tools.iter().filter(|(t, _)| !on_path(t)).map(|(_, p)| *p).collect();
    missing.dedup();
    apt_install(&missing)
}

/// Debian packages that put no tool on PATH (libraries, headers), checked with `dpkg -s`; installs the
/// missing ones.
pub fn ensure_debian_library_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    apt_install(&missing)
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg").args(["-s", package]).output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Status: install ok installed")
    })
}

fn apt_install(missing: &[&str]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages {missing:?} (apt-get)");
    let sudo = if is_root() { vec![] } else { vec!["sudo", "-n"] };
    let mut update = Command::new(sudo.first().copied().unwrap_or("apt-get"));
    if !sudo.is_empty() {
        update.args(&sudo[1..]).arg("apt-get");
    }
    update.args(["update", "-qq"]);
    exec(&mut update)?;
    let mut install = Command::new(sudo.first().copied().unwrap_or("apt-get"));
    if !sudo.is_empty() {
        install.args(&sudo[1..]).arg("apt-get");
    }
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    exec(&mut install)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A venv under `target/peers-venv` with the pinned third-party peers; returns its python.
pub fn ensure_peers(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target").join("peers-venv");
    let python = venv.join("bin").join("python");
    let marker = venv.join(".byoc-peers");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == PEERS_VERSION) && python.exists() {
        return Ok(python);
    }
    eprintln!("xtask: installing Python peers into {} ({PEERS_VERSION})", venv.display());
    let py = ["python3", "python"].into_iter().find(|p| on_path(p)).context("python3 is required for the peers")?;
    exec(Command::new(py).args(["-m", "venv", "--clear"]).arg(&venv))?;
    let pip = venv.join("bin").join("pip");
    exec(Command::new(&pip).args(["install", "-q", "--disable-pip-version-check", "aiohttp>=3.9"]))?;
    exec(Command::new(&pip).args(["install", "-q", "--disable-pip-version-check", "--no-deps", "pytrickle==0.1.6"]))?;
    exec(Command::new(&pip).args([
        "install",
        "-q",
        "--disable-pip-version-check",
        "--ignore-requires-python",
        "--only-binary=:all:",
        "livepeer-gateway==1.0.0",
    ]))?;
    // An independent Ethereum signing implementation, for the payment crate's test vectors.
    exec(Command::new(&pip).args(["install", "-q", "--disable-pip-version-check", "eth-account==0.13.7"]))?;
    // WebRTC peers (WHIP publisher, WHEP viewer) for the media tests; av comes with livepeer-gateway.
    exec(Command::new(&pip).args(["install", "-q", "--disable-pip-version-check", "aiortc==1.16.0"]))?;
    std::fs::write(&marker, PEERS_VERSION).context("writing the peers marker")?;
    Ok(python)
}

/// A venv under `target/worker-venv` with the full pytrickle worker; returns its python.
pub fn ensure_worker(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target").join("worker-venv");
    let python = venv.join("bin").join("python");
    let marker = venv.join(".byoc-worker");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == WORKER_VERSION) && python.exists() {
        return Ok(python);
    }
    eprintln!("xtask: installing the pytrickle worker into {} ({WORKER_VERSION}; ~2 min, ~6 GB)", venv.display());
    let py = ["python3", "python"].into_iter().find(|p| on_path(p)).context("python3 is required for the peers")?;
    exec(Command::new(py).args(["-m", "venv", "--clear"]).arg(&venv))?;
    let pip = venv.join("bin").join("pip");
    exec(Command::new(&pip).args(["install", "-q", "--disable-pip-version-check", "av==14.2.0", "pytrickle==0.1.6"]))?;
    std::fs::write(&marker, WORKER_VERSION).context("writing the worker marker")?;
    Ok(python)
}

/// anvil and solc-js under `target/npm` (npm, pinned, no install scripts); returns their paths.
pub fn ensure_chain_tools(root: &Path) -> Result<ChainTools> {
    let prefix = root.join("target").join("npm");
    let modules = prefix.join("node_modules");
    let tools = ChainTools {
        anvil: modules.join("@foundry-rs/anvil-linux-amd64/bin/anvil"),
        solcjs: modules.join(".bin/solcjs"),
    };
    let version = format!("npm-v1: {}", NPM_PACKAGES.join(" "));
    let marker = prefix.join(".byoc-npm");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == version) && tools.anvil.is_file() && tools.solcjs.is_file() {
        return Ok(tools);
    }
    if !(std::env::consts::OS == "linux" && std::env::consts::ARCH == "x86_64") {
        bail!(
            "the test chain's anvil package is the linux-amd64 one; this is {}-{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        );
    }
    if !on_path("npm") {
        bail!("npm is required to install the test chain's tools ({})", NPM_PACKAGES.join(" "));
    }
    eprintln!("xtask: installing the test chain's tools into {} ({})", prefix.display(), NPM_PACKAGES.join(" "));
    std::fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
    exec(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&prefix)
            .args(["--ignore-scripts", "--no-audit", "--no-fund", "--save-exact"])
            .args(NPM_PACKAGES),
    )?;
    for tool in [&tools.anvil, &tools.solcjs] {
        if !tool.is_file() {
            bail!("npm install finished but {} is missing", tool.display());
        }
    }
    std::fs::write(&marker, version).context("writing the npm tools marker")?;
    Ok(tools)
}
