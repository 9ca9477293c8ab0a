//! Man pages and shell completions, generated from a tool's own clap
//! definition so they say exactly what `--help` says: `TOOL --generate
//! man|bash|zsh|fish|all DIR` (a hidden first argument, for packagers and
//! `contrib/install`) writes `DIR/TOOL.1`, `DIR/TOOL.bash`, `DIR/_TOOL` or
//! `DIR/TOOL.fish`.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// If the command line is `TOOL --generate KIND DIR`, write the files and
/// return the exit code; otherwise `None` (parse the command line as usual).
pub fn generate_if_asked<C: CommandFactory>() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().map(|a| a.as_os_str()) != Some("--generate".as_ref()) {
        return None;
    }
    let (Some(kind), Some(dir), None) = (
        args.get(1).and_then(|k| k.to_str()),
        args.get(2),
        args.get(3),
    ) else {
        eprintln!("usage: --generate man|bash|zsh|fish|all DIR");
        return Some(ExitCode::from(2));
    };
    let kinds: &[&str] = match kind {
        "all" => &["man", "bash", "zsh", "fish"],
        "man" | "bash" | "zsh" | "fish" => std::slice::from_ref(&kind),
        _ => {
            eprintln!("--generate {kind}: expected man, bash, zsh, fish or all");
            return Some(ExitCode::from(2));
        }
    };
    for k in kinds {
        if let Err(e) = write(C::command(), k, Path::new(dir)) {
            eprintln!("--generate {k} {}: {e}", Path::new(dir).display());
            return Some(ExitCode::from(1));
        }
    }
    Some(ExitCode::SUCCESS)
}

fn write(mut cmd: clap::Command, kind: &str, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = cmd.get_name().to_string();
    if kind == "man" {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return std::fs::write(dir.join(format!("{name}.1")), out);
    }
    let (shell, file) = match kind {
        "bash" => (Shell::Bash, format!("{name}.bash")),
        "zsh" => (Shell::Zsh, format!("_{name}")),
        _ => (Shell::Fish, format!("{name}.fish")),
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, &name, &mut out);
    std::fs::write(dir.join(file), out)
}
