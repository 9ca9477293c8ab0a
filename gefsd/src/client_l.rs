//! The 9P2000.L calls of [`Client`]: negotiate with [`Client::version_in`] and
//! [`Dialect::L`](crate::proto::Dialect::L), attach with [`Client::attach_l`], then use these
//! and the calls both dialects share (walk, read, write, clunk, remove). An `Rlerror` is
//! [`ClientError::Errno`](crate::client::ClientError::Errno).

use std::io::{Read, Write};

use crate::client::{unexpected, Client, ClientError, Result};
use crate::proto::dotl::{Attr, Dirent, Flock, SetAttr, StatFs};
use crate::proto::{Qid, Rmsg, RmsgL, Tmsg, TmsgL, NOFID};

impl<S: Read + Write> Client<S> {
    fn rpc_l(&mut self, m: TmsgL) -> Result<RmsgL> {
        match self.rpc(Tmsg::L(m))? {
            Rmsg::L(r) => Ok(r),
            r => unexpected(r),
        }
    }

    /// Attach `fid` (9P2000.L): as `uname`, or as the user with numeric id `n_uname`.
    pub fn attach_l(
        &mut self,
        fid: u32,
        uname: &str,
        aname: &str,
        n_uname: Option<u32>,
    ) -> Result<Qid> {
        let m = TmsgL::Attach {
            fid,
            afid: NOFID,
            uname: uname.into(),
            aname: aname.into(),
            n_uname: n_uname.unwrap_or(crate::proto::dotl::NONUNAME),
        };
        match self.rpc(Tmsg::L(m))? {
            Rmsg::Attach { qid } => Ok(qid),
            r => unexpected(r),
        }
    }

    /// File-system statistics.
    pub fn statfs(&mut self, fid: u32) -> Result<StatFs> {
        match self.rpc_l(TmsgL::Statfs { fid })? {
            RmsgL::Statfs(s) => Ok(s),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Open with Linux open flags; the qid and I/O unit.
    pub fn lopen(&mut self, fid: u32, flags: u32) -> Result<(Qid, u32)> {
        match self.rpc_l(TmsgL::Lopen { fid, flags })? {
            RmsgL::Lopen { qid, iounit } => Ok((qid, iounit)),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Create and open `name` in directory `fid` (which becomes the file's).
    pub fn lcreate(
        &mut self,
        fid: u32,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<Qid> {
        let m = TmsgL::Lcreate {
            fid,
            name: name.into(),
            flags,
            mode,
            gid,
        };
        match self.rpc_l(m)? {
            RmsgL::Lcreate { qid, .. } => Ok(qid),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Make symbolic link `name` → `target` in directory `fid`.
    pub fn symlink(&mut self, fid: u32, name: &str, target: &str, gid: u32) -> Result<Qid> {
        let m = TmsgL::Symlink {
            fid,
            name: name.into(),
            symtgt: target.into(),
            gid,
        };
        match self.rpc_l(m)? {
            RmsgL::Symlink { qid } => Ok(qid),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Make a node (`mode` with its file type) in directory `dfid`.
    pub fn mknod(&mut self, dfid: u32, name: &str, mode: u32, gid: u32) -> Result<Qid> {
        self.mknod_dev(dfid, name, mode, (0, 0), gid)
    }

    /// Make a node (`mode` with its file type) in directory `dfid`, with device numbers
    /// `(major, minor)` (for a block or character device).
    pub fn mknod_dev(
        &mut self,
        dfid: u32,
        name: &str,
        mode: u32,
        (major, minor): (u32, u32),
        gid: u32,
    ) -> Result<Qid> {
        let m = TmsgL::Mknod {
            dfid,
            name: name.into(),
            mode,
            major,
            minor,
            gid,
        };
        match self.rpc_l(m)? {
            RmsgL::Mknod { qid } => Ok(qid),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Make directory `name` in `dfid`.
    pub fn mkdir(&mut self, dfid: u32, name: &str, mode: u32, gid: u32) -> Result<Qid> {
        let m = TmsgL::Mkdir {
            dfid,
            name: name.into(),
            mode,
            gid,
        };
        match self.rpc_l(m)? {
            RmsgL::Mkdir { qid } => Ok(qid),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Move the file of `fid` to `name` in directory `dfid`.
    pub fn rename(&mut self, fid: u32, dfid: u32, name: &str) -> Result<()> {
        let m = TmsgL::Rename {
            fid,
            dfid,
            name: name.into(),
        };
        self.expect_l(m, |r| matches!(r, RmsgL::Rename))
    }

    /// Move `old` in `olddir` to `new` in `newdir`.
    pub fn renameat(&mut self, olddir: u32, old: &str, newdir: u32, new: &str) -> Result<()> {
        let m = TmsgL::Renameat {
            olddirfid: olddir,
            oldname: old.into(),
            newdirfid: newdir,
            newname: new.into(),
        };
        self.expect_l(m, |r| matches!(r, RmsgL::Renameat))
    }

    /// Remove `name` from directory `dir` (`flags`: 0x200 for a directory).
    pub fn unlinkat(&mut self, dir: u32, name: &str, flags: u32) -> Result<()> {
        let m = TmsgL::Unlinkat {
            dirfid: dir,
            name: name.into(),
            flags,
        };
        self.expect_l(m, |r| matches!(r, RmsgL::Unlinkat))
    }

    /// Hard link `name` in `dfid` to the file of `fid`.
    pub fn link(&mut self, dfid: u32, fid: u32, name: &str) -> Result<()> {
        let m = TmsgL::Link {
            dfid,
            fid,
            name: name.into(),
        };
        self.expect_l(m, |r| matches!(r, RmsgL::Link))
    }

    /// The target of a symbolic link.
    pub fn readlink(&mut self, fid: u32) -> Result<String> {
        match self.rpc_l(TmsgL::Readlink { fid })? {
            RmsgL::Readlink { target } => Ok(target),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Attributes (`mask`: the `getattr` bits wanted).
    pub fn getattr(&mut self, fid: u32, mask: u64) -> Result<Attr> {
        match self.rpc_l(TmsgL::Getattr {
            fid,
            request_mask: mask,
        })? {
            RmsgL::Getattr(a) => Ok(a),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Change attributes.
    pub fn setattr(&mut self, fid: u32, attr: SetAttr) -> Result<()> {
        self.expect_l(TmsgL::Setattr { fid, attr }, |r| {
            matches!(r, RmsgL::Setattr)
        })
    }

    /// Bind `newfid` to extended attribute `name` of `fid`; its size.
    pub fn xattrwalk(&mut self, fid: u32, newfid: u32, name: &str) -> Result<u64> {
        let m = TmsgL::Xattrwalk {
            fid,
            newfid,
            name: name.into(),
        };
        match self.rpc_l(m)? {
            RmsgL::Xattrwalk { size } => Ok(size),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Entries of open directory `fid` after `offset`, at most `count` bytes of them.
    pub fn readdir(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<Dirent>> {
        match self.rpc_l(TmsgL::Readdir { fid, offset, count })? {
            RmsgL::Readdir { data } => {
                Dirent::decode_all(&data).map_err(|e| ClientError::Decode(e.to_string()))
            }
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// Every entry of open directory `fid`, in pieces of `count` bytes.
    pub fn readdir_all(&mut self, fid: u32, count: u32) -> Result<Vec<Dirent>> {
        let (mut off, mut out) = (0, Vec::new());
        loop {
            let batch = self.readdir(fid, off, count)?;
            let Some(last) = batch.last() else {
                return Ok(out);
            };
            off = last.offset;
            out.extend(batch);
        }
    }

    /// Make the file of `fid` durable (answered once the commit is).
    pub fn fsync(&mut self, fid: u32) -> Result<()> {
        self.expect_l(TmsgL::Fsync { fid, datasync: 0 }, |r| {
            matches!(r, RmsgL::Fsync)
        })
    }

    /// Take or release a record lock; the status.
    pub fn lock(&mut self, fid: u32, lock: Flock) -> Result<u8> {
        match self.rpc_l(TmsgL::Lock { fid, lock })? {
            RmsgL::Lock { status } => Ok(status),
            r => unexpected(Rmsg::L(r)),
        }
    }

    /// The first lock conflicting with `lock` (type UNLCK: none).
    pub fn getlock(&mut self, fid: u32, lock: Flock) -> Result<Flock> {
        match self.rpc_l(TmsgL::Getlock { fid, lock })? {
            RmsgL::Getlock(l) => Ok(l),
            r => unexpected(Rmsg::L(r)),
        }
    }

    fn expect_l(&mut self, m: TmsgL, ok: impl Fn(&RmsgL) -> bool) -> Result<()> {
        match self.rpc_l(m)? {
            r if ok(&r) => Ok(()),
            r => unexpected(Rmsg::L(r)),
        }
    }
}
