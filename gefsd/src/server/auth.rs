//! Peer credentials: who is at the other end of a Unix socket or a loopback TCP connection.
//!
//! gefsd has no auth protocol (there is no factotum on Linux). Instead it asks the kernel:
//! - on a Unix socket, `SO_PEERCRED` gives the uid of the process that connected;
//! - on a loopback TCP connection, the client's socket is a local socket too, and
//!   `/proc/net/tcp` (or `tcp6`) lists it, with its owner's uid, as the line whose local
//!   address is our peer's and whose remote address is ours (the identd technique).
//!
//! The uid's login name (the password database's) must be a user in the gefs users table, and
//! a Tattach's uname must equal it. Non-loopback TCP has no such answer, so gefsd refuses to
//! listen there (see `listen`).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;

use super::conn::Peer;

/// The peer of a Unix-socket connection.
pub fn unix_peer(sock: &impl AsFd, desc: String) -> Peer {
    let uid = rustix::net::sockopt::socket_peercred(sock)
        .ok()
        .map(|c| c.uid.as_raw());
    Peer {
        uid,
        user: uid.and_then(gefs_core::host::user_name),
        desc,
    }
}

/// The peer of a loopback TCP connection from `peer` to our `local` address.
pub fn tcp_peer(peer: SocketAddr, local: SocketAddr) -> Peer {
    let uid = if peer.ip().is_loopback() || mapped_loopback(peer.ip()) {
        tcp_owner(peer, local)
    } else {
        None
    };
    Peer {
        uid,
        user: uid.and_then(gefs_core::host::user_name),
        desc: format!("tcp!{}!{}", peer.ip(), peer.port()),
    }
}

fn mapped_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        IpAddr::V4(_) => false,
    }
}

/// The uid owning the socket whose local address is `peer` and remote address is `local`.
fn tcp_owner(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        find_owner(&text, peer, local)
    })
}

/// Search a `/proc/net/tcp{,6}` table for the line `peer → local`; its uid.
pub fn find_owner(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(l), Some(r), Some(uid)) = (f.get(1), f.get(2), f.get(7)) else {
            continue;
        };
        if same(l, peer) && same(r, local) {
            return uid.parse().ok();
        }
    }
    None
}

/// Whether `/proc/net/tcp`'s `HEXIP:HEXPORT` names `a` (IPv4-mapped IPv6 matches IPv4).
fn same(field: &str, a: SocketAddr) -> bool {
    let Some((ip, port)) = field.split_once(':') else {
        return false;
    };
    if u16::from_str_radix(port, 16).ok() != Some(a.port()) {
        return false;
    }
    let Some(got) = parse_ip(ip) else {
        return false;
    };
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    canon(got) == canon(a.ip())
}

/// The kernel prints each 32-bit word of the address as a number in host byte order.
fn word_bytes(w: u32) -> [u8; 4] {
    #[cfg(target_endian = "little")]
    {
        w.to_le_bytes()
    }
    #[cfg(target_endian = "big")]
    {
        w.to_be_bytes()
    }
}

fn parse_ip(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => {
            let w = u32::from_str_radix(hex, 16).ok()?;
            Some(IpAddr::from(word_bytes(w)))
        }
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                let s = hex.get(i * 8..i * 8 + 8)?;
                chunk.copy_from_slice(&word_bytes(u32::from_str_radix(s, 16).ok()?));
            }
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_the_line() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1 1 0\n   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1234        0 2 1 0\n";
        let server: SocketAddr = "127.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!());
        let client: SocketAddr = "127.0.0.1:54321".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(find_owner(t, client, server), Some(1234));
        assert_eq!(find_owner(t, server, client), Some(1000));
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(find_owner(t, other, server), None);
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0000000000000000FFFF00000100007F:D431 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000    42        0 3 1 0\n";
        assert_eq!(find_owner(v6, client, server), Some(42));
    }
}
