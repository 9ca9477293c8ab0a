//! The `gefsd` command line: argument parsing, start-up (creating `./gefs.img` on first use),
//! signals, and the console client subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use gefs_core::fs::Fs;
use gefs_core::store::Config;
use gefs_core::units::human;

use crate::console::{run_client, ClientOpts};
use crate::server::{self, listen, Options, Server};

const ABOUT: &str = "Serve a gefs image over 9P2000.";

const LONG_ABOUT: &str = "\
Serve a gefs image over 9P2000.

With no -f, gefsd serves ./gefs.img, creating a 1 GiB sparse image (first administrator: your \
login name) if there is none. With no -a and no -s it listens on tcp!127.0.0.1!5640.

Authentication is by peer credentials: the kernel tells gefsd which uid made each connection \
(SO_PEERCRED on unix sockets, /proc/net/tcp for loopback TCP), and Tattach must name that \
uid's login name, which must be a user in the image's users table (adm's /users). Tauth is \
always refused. For this reason gefsd listens only on loopback and unix sockets; reach it \
from elsewhere through a tunnel (ssh -L). With -A, anyone who can connect may attach as any \
user in the table.

Attach names: '' = main, LABEL = a snapshot or label, %LABEL = permission checks off (adm \
members, or anyone with -S or console 'permit on'), dump = every label as a read-only \
directory, adm = the users file.

Linux kernel mounts (v9fs) connect as root, so attach as root (add root to adm's /users, or \
format with -u root) or run gefsd with -A: \
mount -t 9p -o trans=tcp,port=5640,version=9p2000,uname=root 127.0.0.1 /mnt

The console (NAME.cmd, mode 0600, beside the first unix! listener or else beside the image) \
takes commands from 'gefsd console'. SIGINT and SIGTERM stop the server after finishing \
in-flight requests and committing.";

/// The gefsd command line.
#[derive(Parser, Debug)]
#[command(name = "gefsd", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Subcommand.
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    /// Server options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Send a command to a running server's console, or type commands at a `gefs#` prompt.
    Console(ConsoleArgs),
}

/// Options of the server.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// The image file or block device [default: ./gefs.img, created if missing].
    #[arg(short = 'f', value_name = "IMAGE")]
    pub image: Option<PathBuf>,
    /// Listen on ADDR: tcp!HOST!PORT, unix!PATH or HOST:PORT; loopback and unix only. May be
    /// repeated [default: tcp!127.0.0.1!5640, unless -s].
    #[arg(short = 'a', value_name = "ADDR")]
    pub addrs: Vec<String>,
    /// Block cache size: N (MiB), NM, NG or N% of RAM, never more than the image [default:
    /// 25%, at most 4G]. Memory is used only as blocks are cached.
    #[arg(short = 'm', value_name = "CACHE")]
    pub cache: Option<String>,
    /// No authentication: any user in the users table may attach (loopback and unix only).
    #[arg(short = 'A')]
    pub noauth: bool,
    /// Read-only: open the image read-only and write nothing.
    #[arg(short = 'R')]
    pub read_only: bool,
    /// Permissive: anyone may attach with %LABEL (no permission checks); a broken users file
    /// falls back to adm and none.
    #[arg(short = 'S')]
    pub permissive: bool,
    /// Serve 9P on standard input and output (the peer is the user running gefsd).
    #[arg(short = 's')]
    pub stdio: bool,
    /// Service name: the console socket is NAME.cmd.
    #[arg(short = 'n', value_name = "NAME", default_value = "gefs")]
    pub name: String,
}

/// Options of `gefsd console`.
#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// The server's name: talk to ./NAME.cmd.
    #[arg(
        short = 'n',
        value_name = "NAME",
        default_value = "gefs",
        conflicts_with = "socket"
    )]
    pub name: String,
    /// The console socket.
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Answer in JSON where there is data.
    #[arg(long = "json")]
    pub json: bool,
    /// The command (e.g. `sync`, `snap -l`, `df`); none: read commands interactively.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The physical memory, from /proc/meminfo.
fn ram_bytes() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Parse a cache size: N (MiB), with M, G or % (of RAM) suffix.
pub fn parse_cache(s: &str, ram: Option<u64>) -> Result<usize, String> {
    let bad = || format!("cache size {s:?}: expected N, NM, NG or N%");
    let t = s.trim();
    let bytes = if let Some(p) = t.strip_suffix('%') {
        let pct: u64 = p.trim().parse().map_err(|_| bad())?;
        if pct == 0 || pct > 90 {
            return Err(format!("cache size {s:?}: 1% to 90% of RAM"));
        }
        let ram = ram.ok_or("cannot read the RAM size from /proc/meminfo; give -m in M or G")?;
        u64::try_from(u128::from(ram) * u128::from(pct) / 100).map_err(|_| bad())?
    } else if let Some(g) = t.strip_suffix(['G', 'g']) {
        g.trim()
            .parse::<u64>()
            .map_err(|_| bad())?
            .checked_mul(1 << 30)
            .ok_or_else(bad)?
    } else {
        let m = t.strip_suffix(['M', 'm']).unwrap_or(t);
        m.trim()
            .parse::<u64>()
            .map_err(|_| bad())?
            .checked_mul(1 << 20)
            .ok_or_else(bad)?
    };
    if bytes < 1 << 20 {
        return Err(format!("cache size {s:?}: at least 1M"));
    }
    usize::try_from(bytes).map_err(|_| bad())
}

/// Run the `gefsd` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Console(c)) => {
            let socket = c
                .socket
                .unwrap_or_else(|| PathBuf::from(format!("{}.cmd", c.name)));
            let code = run_client(&ClientOpts {
                socket,
                json: c.json,
                command: c.command,
            });
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        None => match serve(cli.serve) {
            Ok(()) => ExitCode::SUCCESS,
            Err((code, msg)) => {
                eprintln!("gefsd: {msg}");
                ExitCode::from(code)
            }
        },
    }
}

type Failure = (u8, String);

fn usage(msg: String) -> Failure {
    (2, msg)
}

fn fail(msg: impl std::fmt::Display) -> Failure {
    (1, msg.to_string())
}

/// Create `path` as a new 1 GiB sparse image, first administrator = the login name.
fn create_default(path: &Path) -> Result<(), Failure> {
    let user = gefs_core::host::login_name()
        .ok_or_else(|| fail("cannot tell your login name to make the first administrator"))?;
    let (m, store) = gefs_core::image::format_image(path, None, &user, false).map_err(fail)?;
    drop(store);
    eprintln!(
        "gefsd: created {}: a new {} sparse gefs image; first administrator {}",
        path.display(),
        human(m.size),
        m.user
    );
    Ok(())
}

fn serve(a: ServeArgs) -> Result<(), Failure> {
    let texts = if a.addrs.is_empty() && !a.stdio {
        vec![listen::DEFAULT_ADDR.to_string()]
    } else {
        a.addrs.clone()
    };
    let mut addrs = Vec::new();
    for t in &texts {
        let addr = listen::parse_addr(t).map_err(usage)?;
        listen::check_allowed(&addr, a.noauth).map_err(usage)?;
        addrs.push(addr);
    }
    let cache = match &a.cache {
        Some(s) => parse_cache(s, ram_bytes()).map_err(usage)?,
        None => ram_bytes().map_or(128 << 20, |r| (r / 4).min(4 << 30)) as usize,
    };
    let image = match &a.image {
        Some(p) => p.clone(),
        None => {
            let p = PathBuf::from("gefs.img");
            if !p.exists() {
                if a.read_only {
                    return Err(fail("./gefs.img does not exist (and -R cannot create it)"));
                }
                create_default(&p)?;
            }
            p
        }
    };
    let cfg = Config {
        cache_bytes: cache,
        read_only: a.read_only,
    };
    let store = gefs_core::image::open_store(&image, &cfg).map_err(fail)?;
    let fs = Fs::new(Arc::new(store), a.permissive).map_err(|e| {
        fail(format!(
            "{}: users table: {e} (-S falls back to adm and none)",
            image.display()
        ))
    })?;
    let opts = Options {
        noauth: a.noauth,
        read_only: a.read_only,
        ..Options::default()
    };
    let mut srv = Server::start(Arc::new(fs), opts).map_err(fail)?;
    let mut bound = Vec::new();
    for addr in &addrs {
        bound.push(srv.listen(addr).map_err(|e| fail(format!("{addr}: {e}")))?);
    }
    let dir = addrs
        .iter()
        .find_map(|x| match x {
            server::ListenAddr::Unix(p) => p.parent().map(Path::to_path_buf),
            server::ListenAddr::Tcp(..) => None,
        })
        .or_else(|| image.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let cons = dir.join(format!("{}.cmd", a.name));
    srv.start_console(cons.clone())
        .map_err(|e| fail(format!("console {}: {e}", cons.display())))?;
    if a.stdio {
        srv.serve_stdio().map_err(fail)?;
    }
    let stopper = srv.stopper();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(fail)?;
    std::thread::Builder::new()
        .name("gefs-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                eprintln!("gefsd: signal {sig}: stopping");
                stopper.stop();
            }
        })
        .map_err(fail)?;
    eprintln!(
        "gefsd: serving {}{} on {}{}; console unix!{}{}",
        image.display(),
        if a.read_only { " read-only" } else { "" },
        if bound.is_empty() {
            "-".to_string()
        } else {
            bound.join(", ")
        },
        if a.stdio { " and stdio" } else { "" },
        cons.display(),
        if a.noauth {
            "; WARNING: -A, no authentication"
        } else {
            ""
        },
    );
    srv.wait();
    match srv.stop() {
        Ok(c) => {
            eprintln!("gefsd: stopped after commit {}", c.gen);
            Ok(())
        }
        Err(e) => Err(fail(format!("final sync failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes() {
        assert_eq!(parse_cache("512", None), Ok(512 << 20));
        assert_eq!(parse_cache("64M", None), Ok(64 << 20));
        assert_eq!(parse_cache("2G", None), Ok(2 << 30));
        assert_eq!(parse_cache("25%", Some(8 << 30)), Ok(2 << 30));
        for bad in ["", "x", "0", "25%%", "0%", "95%", "-1G"] {
            assert!(parse_cache(bad, Some(1 << 30)).is_err(), "{bad}");
        }
        assert!(parse_cache("10%", None).is_err());
    }
}
