//! The `gefsd` command line: argument parsing, start-up (creating `./gefs.img` on first use),
//! signals, and the console client subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use gefs_core::fs::Config;
use gefs_core::fs::Fs;
use gefs_core::units::human;

use crate::console::{run_client, ClientOpts};
use crate::server::{self, listen, Options, Server};

const ABOUT: &str = "Serve a gefs image over 9P2000 and 9P2000.L.";

const LONG_ABOUT: &str = "\
Serve a gefs image over 9P2000 and 9P2000.L (each connection's Tversion chooses).

With no --image, gefsd serves ./gefs.img, creating a 1 GiB sparse image (first administrator: your \
login name) if there is none. With no --listen and no --stdio it listens on \
tcp!127.0.0.1!5640.

Authentication is by peer credentials: the kernel tells gefsd which uid made each connection \
(SO_PEERCRED on unix sockets, /proc/net/tcp for loopback TCP), and Tattach must name that \
uid's login name, which must be a user in the image's users table (adm's /users); a \
connection made by root (a kernel mount) may attach as any user of the table. Tauth is \
always refused. For this reason gefsd listens only on loopback and unix sockets; reach it \
from elsewhere through a tunnel (ssh -L). With --no-auth (-A), anyone who can connect may attach as any \
user in the table.

Attach names: '' = main, LABEL = a snapshot or label, %LABEL = permission checks off (adm \
members, or anyone with --permissive or console 'permit on'), dump = every label as a read-only \
directory, adm = the users file.

Linux (v9fs), see the README's 'Mount it from Linux': \
mount -t 9p -o trans=tcp,port=5640,version=9p2000.L,uname=alice,access=user 127.0.0.1 /mnt \
With 9P2000.L a Linux uid is the users-table user of that id (none if there is none; uid 0 \
is id 0, a superuser only if that user is in adm).

The console (NAME.cmd, mode 0600, beside the first unix! listener or else beside the image) \
takes commands from 'gefsd console'.

SIGINT, SIGTERM and SIGHUP stop the server: it stops accepting, finishes in-flight requests, \
commits and exits 0. A second one during that stop commits once more and exits at once (0 if \
that commit succeeded, 1 if not), without waiting for requests still in flight.

Memory: requests in flight (read but not answered, replies not yet written) are bounded per \
connection (--conn-mem) and server-wide (--server-mem, beyond 64 KiB of each connection's \
own); while a budget is full gefsd stops reading the connections that want more. A \
connection that leaves its replies unread for 10 s while others wait for memory, or for 60 s \
in any case, is closed. The 9P unix socket is created mode 0666 (peers are authenticated by \
their credentials), the console mode 0600.";

/// The gefsd command line.
#[derive(Parser, Debug)]
#[command(name = "gefsd", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(args_conflicts_with_subcommands = true, after_help = after_help())]
pub struct Cli {
    /// Subcommand.
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    /// Server options.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Logging.
    #[command(flatten)]
    pub log: gefs_cli::LogArgs,
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
    #[arg(short = 'f', long = "image", value_name = "IMAGE")]
    pub image: Option<PathBuf>,
    /// Listen on ADDR: tcp!HOST!PORT, unix!PATH or HOST:PORT; loopback and unix only. May be
    /// repeated [default: tcp!127.0.0.1!5640, unless --stdio].
    #[arg(short = 'a', long = "listen", value_name = "ADDR")]
    pub addrs: Vec<String>,
    /// Block cache size: a size (512M, 2G) or a share of RAM (25%), never more than the
    /// image [default: 25%, at most 4G]. Memory is used only as blocks are cached.
    #[arg(short = 'm', long = "cache", value_name = "SIZE")]
    pub cache: Option<String>,
    /// No authentication: any user in the users table may attach (loopback and unix only).
    #[arg(short = 'A', long = "no-auth")]
    pub noauth: bool,
    /// Read-only: open the image read-only and write nothing.
    #[arg(short = 'R', long = "read-only")]
    pub read_only: bool,
    /// Permissive: anyone may attach with %LABEL (no permission checks); a broken users file
    /// falls back to adm and none.
    #[arg(short = 'S', long = "permissive")]
    pub permissive: bool,
    /// Serve 9P on standard input and output (the peer is the user running gefsd).
    #[arg(short = 's', long = "stdio")]
    pub stdio: bool,
    /// Service name: the console socket is NAME.cmd.
    #[arg(
        short = 'n',
        long = "name",
        value_name = "NAME",
        default_value = "gefs"
    )]
    pub name: String,
    /// Connections served at once; more are closed as they arrive.
    #[arg(long = "max-conns", value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_conns: u32,
    /// Memory for one connection's requests in flight (read but not answered, replies not
    /// yet written): K, M or G suffix. When it is full gefsd stops reading that connection.
    #[arg(long = "conn-mem", value_name = "SIZE", default_value = "4M",
          value_parser = budget_arg)]
    pub conn_mem: u64,
    /// Memory for all connections' requests in flight, beyond 64 KiB of each connection's
    /// own. When it is full, connections that want more are not read until replies are
    /// written.
    #[arg(long = "server-mem", value_name = "SIZE", default_value = "16M",
          value_parser = budget_arg)]
    pub server_mem: u64,
}

/// Options of `gefsd console`.
#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// The server's name: talk to ./NAME.cmd.
    #[arg(
        short = 'n',
        long = "name",
        value_name = "NAME",
        default_value = "gefs",
        conflicts_with = "socket"
    )]
    pub name: String,
    /// The console socket.
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Answer in JSON where there is data (also accepted after the command).
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

fn after_help() -> String {
    format!(
        "Examples:\n  gefsd                                   serve ./gefs.img (created if \
         missing) on tcp!127.0.0.1!5640\n  \
         gefsd --image disk.img --listen unix!/run/gefs/9p.sock --cache 512M\n  \
         gefsd -f disk.img -a tcp!127.0.0.1!5640 -a unix!/tmp/gefs.sock\n  \
         gefsd --image disk.img --read-only --stdio      one client on stdin/stdout\n  \
         gefsd console snap main monday          snapshot main as monday\n  \
         gefsd console df --json                 space as JSON\n  \
         RUST_LOG=debug gefsd --log-format json  every event, commits too, as JSON lines\n\n{}",
        gefs_cli::exit_codes(
            "stopped cleanly (a signal or console halt), the last commit durable",
            "could not serve (the image would not open, a listener failed) or the last commit \
             failed; `gefsd console`: the command failed or check found problems",
            "bad arguments; `gefsd console`: could not reach the server, or check could not \
             read the image"
        )
    )
}

/// Parse a cache size: a size (`512M`, `1.5G`) or a share of RAM (`25%`).
pub fn parse_cache(s: &str, ram: Option<u64>) -> Result<usize, String> {
    let bytes = gefs_core::units::parse_size_or_percent(
        s,
        ram,
        "cannot read the RAM size from /proc/meminfo; give --cache as a size, e.g. 512M",
    )
    .map_err(|e| format!("--cache: {e}"))?;
    if let Some(p) = s.trim().strip_suffix('%') {
        if !matches!(p.trim().parse::<f64>(), Ok(x) if x > 0.0 && x <= 90.0) {
            return Err(format!("--cache {s}: 1% to 90% of RAM"));
        }
    }
    if bytes < 1 << 20 {
        return Err(format!("--cache {s}: at least 1M"));
    }
    usize::try_from(bytes).map_err(|_| format!("--cache {s}: too large"))
}

/// The value parser of a memory budget: a size of at least 64 KiB.
fn budget_arg(s: &str) -> Result<u64, String> {
    let n = gefs_cli::size_arg(s)?;
    if n < 64 << 10 {
        return Err(format!("{s}: at least 64K"));
    }
    Ok(n)
}

/// Raise the soft limit on open files to the hard one: every connection is a descriptor, and
/// a soft limit of 1,024 would refuse connections long before `--max-conns`.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// Run the `gefsd` binary.
pub fn main() -> ExitCode {
    if let Some(code) = gefs_cli::generate_if_asked::<Cli>() {
        return code;
    }
    let cli = Cli::parse();
    gefs_cli::init_logging(cli.log.log_format);
    match cli.cmd {
        Some(Cmd::Console(c)) => {
            let socket = c
                .socket
                .unwrap_or_else(|| PathBuf::from(format!("{}.cmd", c.name)));
            // `--json` anywhere on the line: no console command takes it as a word.
            let json = c.json || c.command.iter().any(|w| w == "--json");
            let command = c.command.into_iter().filter(|w| w != "--json").collect();
            let code = run_client(&ClientOpts {
                socket,
                json,
                command,
            });
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        None => match serve(cli.serve) {
            Ok(()) => ExitCode::SUCCESS,
            Err((code, msg)) => {
                // Why gefsd did not start is always said, whatever RUST_LOG hides.
                if code != 2 && tracing::enabled!(tracing::Level::ERROR) {
                    tracing::error!("{msg}");
                } else {
                    eprintln!("gefsd: {msg}");
                }
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
    tracing::info!(
        image = %path.display(),
        size = m.size,
        admin = %m.user,
        "created {}: a new {} sparse gefs image; first administrator {}",
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
        let addr = listen::parse_addr(t).map_err(|e| usage(e.to_string()))?;
        listen::check_allowed(&addr, a.noauth).map_err(|e| usage(e.to_string()))?;
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
                    return Err(fail(
                        "./gefs.img does not exist (and --read-only cannot create it); give \
                         --image, or start once without --read-only to create it",
                    ));
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
            "{}: users table: {e} (--permissive falls back to adm and none)",
            image.display()
        ))
    })?;
    let mut opts = Options {
        noauth: a.noauth,
        read_only: a.read_only,
        ..Options::default()
    };
    opts.limits.max_conns = a.max_conns as usize;
    opts.limits.conn_bytes =
        usize::try_from(a.conn_mem).map_err(|_| usage("--conn-mem: too large".into()))?;
    opts.limits.total_bytes =
        usize::try_from(a.server_mem).map_err(|_| usage("--server-mem: too large".into()))?;
    raise_fd_limit();
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
    let mut sockets: Vec<PathBuf> = addrs
        .iter()
        .filter_map(|x| match x {
            server::ListenAddr::Unix(p) => Some(p.clone()),
            server::ListenAddr::Tcp(..) => None,
        })
        .collect();
    sockets.push(cons.clone());
    handle_signals(&srv, sockets)?;
    // The pool the store made: the size asked for, bounded by what the image can hold.
    let cache = srv.core().store().stats().cache.capacity * gefs_core::fs::BLKSZ;
    let listen = if bound.is_empty() {
        "-".to_string()
    } else {
        bound.join(", ")
    };
    tracing::info!(
        image = %image.display(),
        read_only = a.read_only,
        listen = %listen,
        stdio = a.stdio,
        console = %cons.display(),
        cache_bytes = cache,
        noauth = a.noauth,
        pid = std::process::id(),
        "serving {}{} on {listen}{}; console unix!{}; cache {}",
        image.display(),
        if a.read_only { " read-only" } else { "" },
        if a.stdio { " and stdio" } else { "" },
        cons.display(),
        human(cache as u64),
    );
    if a.noauth {
        tracing::warn!("no authentication (-A): anyone who can connect may attach as any user");
    }
    // systemd's Type=notify (contrib/gefsd.service): ready once listening. Without
    // NOTIFY_SOCKET this does nothing.
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell the service manager that gefsd is ready");
    }
    srv.wait();
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    match srv.stop() {
        Ok(c) => {
            tracing::info!(commit = c.gen, "stopped after commit {}", c.gen);
            Ok(())
        }
        Err(e) => Err(fail(format!("final sync failed: {}", e.detailed()))),
    }
}

/// The stop signals: the first stops the server as console `halt` does (finish in-flight
/// requests, commit, exit 0); a second one during that stop commits once more and exits at
/// once, without waiting for requests still in flight.
fn handle_signals(srv: &Server, sockets: Vec<PathBuf>) -> Result<(), Failure> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(fail)?;
    let (stopper, core) = (srv.stopper(), srv.core().clone());
    let name = |sig| match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    };
    std::thread::Builder::new()
        .name("gefs-signals".into())
        .spawn(move || {
            let mut it = signals.forever();
            if let Some(sig) = it.next() {
                tracing::info!(signal = name(sig), "{}: stopping", name(sig));
                stopper.stop();
            }
            if let Some(sig) = it.next() {
                tracing::warn!(
                    signal = name(sig),
                    "{} during the stop: a last commit, then exit now",
                    name(sig)
                );
                let code = match server::last_commit(&core, Duration::from_secs(5)) {
                    Ok(c) => {
                        tracing::info!(commit = c.gen, "exiting after commit {}", c.gen);
                        0
                    }
                    Err(e) => {
                        server::log_failed_commit("last commit", &e);
                        1
                    }
                };
                for p in &sockets {
                    let _ = std::fs::remove_file(p);
                }
                std::process::exit(code);
            }
        })
        .map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes() {
        assert_eq!(parse_cache("64M", None), Ok(64 << 20));
        assert_eq!(parse_cache("2G", None), Ok(2 << 30));
        assert_eq!(parse_cache("1.5G", None), Ok(3 << 29));
        assert_eq!(parse_cache("25%", Some(8 << 30)), Ok(2 << 30));
        for bad in ["", "x", "0", "512", "25%%", "0%", "95%", "-1G", "512K"] {
            assert!(parse_cache(bad, Some(1 << 30)).is_err(), "{bad}");
        }
        assert!(parse_cache("10%", None).is_err());
    }
}
