//! The console's command language: one command per line, fields separated by blanks, quoted
//! with `'…'` (a doubled `''` inside quotes is a quote), as in rc(1).
//!
//! Every command's argument count is checked (the reference dereferenced missing arguments,
//! §13.2 #18); a line longer than [`MAX_LINE`] bytes or with more than [`MAX_FIELDS`] fields is
//! refused; an unknown command is answered with the help text. A leading `json` asks for JSON
//! output. The parser never panics on any input (fuzzed: `tests/fuzz/fuzz_targets/console.rs`).

use gefs_core::admin::{self, Snap};

/// The longest command line accepted, in bytes (newline excluded).
pub const MAX_LINE: usize = 1024;
/// The most fields a line may have.
pub const MAX_FIELDS: usize = 8;

/// The help text: every command and its arguments.
pub const HELP: &str = "\
check                    sync, then check that commit while serving (in parallel;
                         exit 0 clean, 1 problems, 2 could not check)
clear [snap] key         remove a configuration key (retain)
df                       space: size, used, free, reserve, held only by snapshots
halt                     sync, then stop the server
help                     this text
permit on|off            permissive mode (% attaches for everyone) on or off
set [snap] key value     set a configuration key, e.g. set main retain '60@m 24@h'
show cache|alloc|free|fid|users   server and store state
show check               the running check's progress, or the last one's result
show tree [label]        the tree of a label (default main), level by level
snap -l                  list labels, with what deleting each snapshot would free
snap [-m] old new        snapshot old as new (-m: a mutable fork)
snap -d name             delete a label
sync                     commit; answers once the commit is durable
users                    reload the users table from adm's /users
Prefix a command with json for JSON output where it has data.
";

/// What `show` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// Every connection's fids.
    Fid,
    /// Cache counters.
    Cache,
    /// Per-arena allocation counters.
    Alloc,
    /// Free ranges per arena.
    Free,
    /// A tree, level by level.
    Tree(Option<String>),
    /// The users table.
    Users,
    /// The running check's progress, or the last one's outcome.
    Check,
}

/// A parsed console command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help`.
    Help,
    /// `check`.
    Check,
    /// `df`.
    Df,
    /// `halt`.
    Halt,
    /// `permit on|off`.
    Permit(bool),
    /// `snap …`.
    Snap(Snap),
    /// `sync`.
    Sync,
    /// `users`.
    Users,
    /// `set [snap] key value` (arguments after `set`).
    Set(Vec<String>),
    /// `clear [snap] key` (arguments after `clear`).
    Clear(Vec<String>),
    /// `show …`.
    Show(Show),
}

/// A parsed line: the command and whether JSON was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command.
    pub cmd: Command,
    /// Answer in JSON.
    pub json: bool,
}

/// Split a line into fields.
pub fn tokenize(line: &str) -> Result<Vec<String>, String> {
    if line.len() > MAX_LINE {
        return Err(format!("line longer than {MAX_LINE} bytes"));
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_field = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_field = true;
                loop {
                    match chars.next() {
                        None => return Err("unterminated quote".into()),
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            cur.push('\'');
                        }
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_field {
                    out.push(std::mem::take(&mut cur));
                    in_field = false;
                }
            }
            c => {
                in_field = true;
                cur.push(c);
            }
        }
        if out.len() > MAX_FIELDS {
            return Err(format!("more than {MAX_FIELDS} fields"));
        }
    }
    if in_field {
        out.push(cur);
    }
    if out.len() > MAX_FIELDS {
        return Err(format!("more than {MAX_FIELDS} fields"));
    }
    Ok(out)
}

fn usage(u: &str) -> String {
    format!("usage: {u}")
}

fn none(args: &[&str], name: &str, cmd: Command) -> Result<Command, String> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(usage(name))
    }
}

/// Parse a line. `Ok(None)` for a blank line.
pub fn parse(line: &str) -> Result<Option<Request>, String> {
    let f = tokenize(line)?;
    let mut f: Vec<&str> = f.iter().map(String::as_str).collect();
    let json = f.first() == Some(&"json");
    if json {
        f.remove(0);
    }
    let Some((&name, args)) = f.split_first() else {
        return if json {
            Err(usage("json COMMAND"))
        } else {
            Ok(None)
        };
    };
    let cmd = match name {
        "help" => none(args, "help", Command::Help)?,
        "check" => none(args, "check", Command::Check)?,
        "df" => none(args, "df", Command::Df)?,
        "halt" => none(args, "halt", Command::Halt)?,
        "sync" => none(args, "sync", Command::Sync)?,
        "users" => none(args, "users", Command::Users)?,
        "permit" => match args {
            ["on"] => Command::Permit(true),
            ["off"] => Command::Permit(false),
            _ => return Err(usage("permit on|off")),
        },
        "snap" => Command::Snap(admin::parse_snap(args).map_err(|e| e.to_string())?),
        "set" if (2..=3).contains(&args.len()) => {
            Command::Set(args.iter().map(|s| s.to_string()).collect())
        }
        "set" => return Err(usage(admin::SET_USAGE)),
        "clear" if (1..=2).contains(&args.len()) => {
            Command::Clear(args.iter().map(|s| s.to_string()).collect())
        }
        "clear" => return Err(usage(admin::CLEAR_USAGE)),
        "show" => Command::Show(parse_show(args)?),
        _ => return Err(format!("unknown command {name:?}; commands:\n{HELP}")),
    };
    Ok(Some(Request { cmd, json }))
}

fn parse_show(args: &[&str]) -> Result<Show, String> {
    Ok(match args {
        ["fid"] => Show::Fid,
        ["cache"] => Show::Cache,
        ["alloc"] => Show::Alloc,
        ["free"] => Show::Free,
        ["users"] => Show::Users,
        ["check"] => Show::Check,
        ["tree"] => Show::Tree(None),
        ["tree", l] => Show::Tree(Some((*l).to_string())),
        _ => {
            return Err(usage(
                "show cache|alloc|free|fid|users|check | show tree [label]",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Command {
        match parse(s) {
            Ok(Some(r)) => r.cmd,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn commands_and_counts() {
        assert_eq!(cmd("sync"), Command::Sync);
        assert_eq!(cmd("  permit   on "), Command::Permit(true));
        assert_eq!(
            cmd("set main retain '60@m 24@h'"),
            Command::Set(vec!["main".into(), "retain".into(), "60@m 24@h".into()])
        );
        assert_eq!(
            cmd("show tree other"),
            Command::Show(Show::Tree(Some("other".into())))
        );
        assert!(matches!(
            parse("json df"),
            Ok(Some(Request { json: true, .. }))
        ));
        assert_eq!(parse(""), Ok(None));
        for bad in [
            "sync now",
            "halt x",
            "permit",
            "permit maybe",
            "snap",
            "snap -m",
            "snap -d",
            "set",
            "set a",
            "set a b c d",
            "clear",
            "clear a b c",
            "show",
            "show tree a b",
            "bogus",
            "json",
            "'open",
            "a b c d e f g h i",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&"x".repeat(MAX_LINE + 1)).is_err());
        assert_eq!(
            tokenize("'it''s' ''"),
            Ok(vec!["it's".into(), String::new()])
        );
    }
}
