//! A small synchronous 9P2000 and 9P2000.L client built on the codec, for tests, tools and the
//! fuzz target (the 9P2000.L calls are in `client_l.rs`).
//!
//! [`Client::rpc`] sends one request and waits for its reply; [`Client::send`] and
//! [`Client::recv`] (and [`Client::send_raw`]) let a test pipeline requests, reuse tags or
//! send malformed frames. An `Rerror` is returned as [`ClientError::Rerror`], an `Rlerror` as
//! [`ClientError::Errno`].

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::proto::{
    self, decode_r_in, encode_t, read_frame, Dialect, Qid, Rmsg, RmsgL, Stat, Tmsg, MSIZE_DEFAULT,
    MSIZE_LIMIT, NOFID, NOTAG,
};

/// Why a client call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The stream failed.
    Io(io::Error),
    /// The server closed the connection.
    Closed,
    /// A reply that does not decode.
    Decode(String),
    /// The server answered `Rerror`.
    Rerror(String),
    /// The server answered `Rlerror` (9P2000.L) with this errno.
    Errno(u32),
    /// A reply of the wrong type or tag.
    Unexpected(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "i/o: {e}"),
            ClientError::Closed => f.write_str("connection closed"),
            ClientError::Decode(e) => write!(f, "bad reply: {e}"),
            ClientError::Rerror(e) => write!(f, "Rerror: {e}"),
            ClientError::Errno(e) => write!(f, "Rlerror: errno {e}"),
            ClientError::Unexpected(e) => write!(f, "unexpected reply: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl ClientError {
    /// The Rerror string, if this is one.
    pub fn ename(&self) -> Option<&str> {
        match self {
            ClientError::Rerror(s) => Some(s),
            _ => None,
        }
    }

    /// The Rlerror errno, if this is one.
    pub fn errno(&self) -> Option<u32> {
        match self {
            ClientError::Errno(e) => Some(*e),
            _ => None,
        }
    }
}

/// The result type of client calls.
pub type Result<T> = std::result::Result<T, ClientError>;

/// A 9P2000 client over any byte stream.
#[derive(Debug)]
pub struct Client<S> {
    s: S,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    msize: u32,
    tag: u16,
    dialect: Dialect,
}

impl Client<TcpStream> {
    /// Connect over TCP.
    pub fn tcp(addr: impl ToSocketAddrs) -> Result<Self> {
        let s = TcpStream::connect(addr)?;
        let _ = s.set_nodelay(true);
        Ok(Client::new(s))
    }
}

impl Client<UnixStream> {
    /// Connect to a Unix socket.
    pub fn unix(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Client::new(UnixStream::connect(path)?))
    }
}

pub(crate) fn unexpected<T>(r: Rmsg) -> Result<T> {
    match r {
        Rmsg::Error { ename } => Err(ClientError::Rerror(ename)),
        Rmsg::L(RmsgL::Lerror { ecode }) => Err(ClientError::Errno(ecode)),
        r => Err(ClientError::Unexpected(r.name().to_string())),
    }
}

impl<S: Read + Write> Client<S> {
    /// A client over `s` (call [`Client::version`] first).
    pub fn new(s: S) -> Self {
        Client {
            s,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            msize: MSIZE_DEFAULT,
            tag: 0,
            dialect: Dialect::P9,
        }
    }

    /// The stream.
    pub fn stream(&mut self) -> &mut S {
        &mut self.s
    }

    /// The negotiated msize.
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// Send a request with `tag`.
    pub fn send(&mut self, tag: u16, m: &Tmsg) -> Result<()> {
        self.wbuf.clear();
        encode_t(tag, m, &mut self.wbuf).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.s.write_all(&self.wbuf)?;
        self.s.flush()?;
        Ok(())
    }

    /// Send raw bytes.
    pub fn send_raw(&mut self, b: &[u8]) -> Result<()> {
        self.s.write_all(b)?;
        self.s.flush()?;
        Ok(())
    }

    /// Receive one reply.
    pub fn recv(&mut self) -> Result<(u16, Rmsg)> {
        let f = read_frame(&mut self.s, MSIZE_LIMIT, &mut self.rbuf)
            .map_err(|e| match e {
                proto::ReadFrameError::Io(e) => ClientError::Io(e),
                e => ClientError::Decode(e.to_string()),
            })?
            .ok_or(ClientError::Closed)?;
        decode_r_in(f, MSIZE_LIMIT, self.dialect).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// A fresh tag (never NOTAG).
    pub fn next_tag(&mut self) -> u16 {
        self.tag = self.tag.wrapping_add(1);
        if self.tag == NOTAG {
            self.tag = 0;
        }
        self.tag
    }

    /// Send `m` and wait for its reply; `Rerror` becomes an error.
    pub fn rpc(&mut self, m: Tmsg) -> Result<Rmsg> {
        let tag = if matches!(m, Tmsg::Version { .. }) {
            NOTAG
        } else {
            self.next_tag()
        };
        self.send(tag, &m)?;
        let (t, r) = self.recv()?;
        if t != tag {
            return Err(ClientError::Unexpected(format!("tag {t}, wanted {tag}")));
        }
        match r {
            Rmsg::Error { ename } => Err(ClientError::Rerror(ename)),
            Rmsg::L(RmsgL::Lerror { ecode }) => Err(ClientError::Errno(ecode)),
            r => Ok(r),
        }
    }

    /// The dialect negotiated.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Negotiate 9P2000; returns the msize.
    pub fn version(&mut self, msize: u32) -> Result<u32> {
        self.version_in(msize, Dialect::P9)
    }

    /// Negotiate 9P2000 or 9P2000.L; returns the msize.
    pub fn version_in(&mut self, msize: u32, dialect: Dialect) -> Result<u32> {
        let want = match dialect {
            Dialect::P9 => proto::VERSION_9P2000,
            Dialect::L => proto::VERSION_9P2000_L,
        };
        match self.rpc(Tmsg::Version {
            msize,
            version: want.into(),
        })? {
            Rmsg::Version { msize, version } if version == want => {
                self.msize = msize;
                self.dialect = dialect;
                Ok(msize)
            }
            Rmsg::Version { version, .. } => Err(ClientError::Rerror(version)),
            r => unexpected(r),
        }
    }

    /// Attach `fid` as `uname` to `aname`, without authentication.
    pub fn attach(&mut self, fid: u32, uname: &str, aname: &str) -> Result<Qid> {
        match self.rpc(Tmsg::Attach {
            fid,
            afid: NOFID,
            uname: uname.into(),
            aname: aname.into(),
        })? {
            Rmsg::Attach { qid } => Ok(qid),
            r => unexpected(r),
        }
    }

    /// Walk `fid` along `names` to `newfid`; the qids walked (fewer than asked: a partial walk).
    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Result<Vec<Qid>> {
        match self.rpc(Tmsg::Walk {
            fid,
            newfid,
            wnames: names.iter().map(|s| s.to_string()).collect(),
        })? {
            Rmsg::Walk { wqids } => Ok(wqids),
            r => unexpected(r),
        }
    }

    /// Open `fid`; its qid and iounit.
    pub fn open(&mut self, fid: u32, mode: u8) -> Result<(Qid, u32)> {
        match self.rpc(Tmsg::Open { fid, mode })? {
            Rmsg::Open { qid, iounit } => Ok((qid, iounit)),
            r => unexpected(r),
        }
    }

    /// Create `name` in directory `fid`; its qid and iounit.
    pub fn create(&mut self, fid: u32, name: &str, perm: u32, mode: u8) -> Result<(Qid, u32)> {
        match self.rpc(Tmsg::Create {
            fid,
            name: name.into(),
            perm,
            mode,
        })? {
            Rmsg::Create { qid, iounit } => Ok((qid, iounit)),
            r => unexpected(r),
        }
    }

    /// Read up to `count` bytes at `offset`.
    pub fn read(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>> {
        match self.rpc(Tmsg::Read { fid, offset, count })? {
            Rmsg::Read { data } => Ok(data),
            r => unexpected(r),
        }
    }

    /// Write `data` at `offset`; the count written.
    pub fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Result<u32> {
        match self.rpc(Tmsg::Write {
            fid,
            offset,
            data: data.to_vec(),
        })? {
            Rmsg::Write { count } => Ok(count),
            r => unexpected(r),
        }
    }

    /// Clunk `fid`.
    pub fn clunk(&mut self, fid: u32) -> Result<()> {
        match self.rpc(Tmsg::Clunk { fid })? {
            Rmsg::Clunk => Ok(()),
            r => unexpected(r),
        }
    }

    /// Remove the file of `fid` (and clunk it).
    pub fn remove(&mut self, fid: u32) -> Result<()> {
        match self.rpc(Tmsg::Remove { fid })? {
            Rmsg::Remove => Ok(()),
            r => unexpected(r),
        }
    }

    /// The stat of `fid`.
    pub fn stat(&mut self, fid: u32) -> Result<Stat> {
        match self.rpc(Tmsg::Stat { fid })? {
            Rmsg::Stat { stat } => Ok(stat),
            r => unexpected(r),
        }
    }

    /// Change the stat of `fid` (start from [`Stat::dont_touch`]).
    pub fn wstat(&mut self, fid: u32, stat: &Stat) -> Result<()> {
        match self.rpc(Tmsg::Wstat {
            fid,
            stat: stat.clone(),
        })? {
            Rmsg::Wstat => Ok(()),
            r => unexpected(r),
        }
    }

    /// Read a whole open file from offset 0.
    pub fn read_all(&mut self, fid: u32) -> Result<Vec<u8>> {
        let n = proto::iounit(self.msize);
        let mut out = Vec::new();
        loop {
            let b = self.read(fid, out.len() as u64, n)?;
            if b.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&b);
        }
    }

    /// Read a whole open directory: its entries.
    pub fn read_dir(&mut self, fid: u32) -> Result<Vec<Stat>> {
        let n = proto::iounit(self.msize);
        let (mut off, mut out) = (0u64, Vec::new());
        loop {
            let b = self.read(fid, off, n)?;
            if b.is_empty() {
                return Ok(out);
            }
            off += b.len() as u64;
            let mut rest = &b[..];
            while !rest.is_empty() {
                let (st, used) =
                    Stat::decode(rest).map_err(|e| ClientError::Decode(e.to_string()))?;
                out.push(st);
                rest = rest.get(used..).unwrap_or_default();
            }
        }
    }
}
