//! proptest strategies for well-formed messages: every variant, strings from empty through
//! multi-byte UTF-8, walks of 0..=16 elements, data up to a few KiB, and "don't touch" stats.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::proto::{Qid, Rmsg, Stat, Tmsg, MAXWELEM};

pub(super) fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9._-]{1,12}",
        "\\PC{0,24}",
        Just("9P2000".to_owned()),
    ]
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..64),
        1 => vec(any::<u8>(), 0..4096),
    ]
}

pub(super) fn qid() -> impl Strategy<Value = Qid> {
    (any::<u8>(), any::<u32>(), any::<u64>()).prop_map(|(ty, version, path)| Qid {
        ty,
        version,
        path,
    })
}

pub(super) fn stat() -> impl Strategy<Value = Stat> {
    let numbers = (
        any::<u16>(),
        any::<u32>(),
        qid(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
    );
    let strings = (string(), string(), string(), string());
    let arbitrary = (numbers, strings).prop_map(
        |((ty, dev, qid, mode, atime, mtime, length), (name, uid, gid, muid))| Stat {
            ty,
            dev,
            qid,
            mode,
            atime,
            mtime,
            length,
            name,
            uid,
            gid,
            muid,
        },
    );
    prop_oneof![
        4 => arbitrary,
        1 => Just(Stat::dont_touch()),
        1 => any::<u32>().prop_map(|mode| Stat { mode, ..Stat::dont_touch() }),
    ]
}

pub(super) fn tmsg() -> impl Strategy<Value = Tmsg> {
    prop_oneof![
        (any::<u32>(), string()).prop_map(|(msize, version)| Tmsg::Version { msize, version }),
        (any::<u32>(), string(), string()).prop_map(|(afid, uname, aname)| Tmsg::Auth {
            afid,
            uname,
            aname
        }),
        (any::<u32>(), any::<u32>(), string(), string()).prop_map(|(fid, afid, uname, aname)| {
            Tmsg::Attach {
                fid,
                afid,
                uname,
                aname,
            }
        }),
        any::<u16>().prop_map(|oldtag| Tmsg::Flush { oldtag }),
        (any::<u32>(), any::<u32>(), vec(string(), 0..=MAXWELEM)).prop_map(
            |(fid, newfid, wnames)| Tmsg::Walk {
                fid,
                newfid,
                wnames
            }
        ),
        (any::<u32>(), any::<u8>()).prop_map(|(fid, mode)| Tmsg::Open { fid, mode }),
        (any::<u32>(), string(), any::<u32>(), any::<u8>()).prop_map(|(fid, name, perm, mode)| {
            Tmsg::Create {
                fid,
                name,
                perm,
                mode,
            }
        }),
        (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(fid, offset, count)| Tmsg::Read {
            fid,
            offset,
            count
        }),
        (any::<u32>(), any::<u64>(), data()).prop_map(|(fid, offset, data)| Tmsg::Write {
            fid,
            offset,
            data
        }),
        any::<u32>().prop_map(|fid| Tmsg::Clunk { fid }),
        any::<u32>().prop_map(|fid| Tmsg::Remove { fid }),
        any::<u32>().prop_map(|fid| Tmsg::Stat { fid }),
        (any::<u32>(), stat()).prop_map(|(fid, stat)| Tmsg::Wstat { fid, stat }),
    ]
}

pub(super) fn rmsg() -> impl Strategy<Value = Rmsg> {
    prop_oneof![
        (any::<u32>(), string()).prop_map(|(msize, version)| Rmsg::Version { msize, version }),
        qid().prop_map(|aqid| Rmsg::Auth { aqid }),
        qid().prop_map(|qid| Rmsg::Attach { qid }),
        string().prop_map(|ename| Rmsg::Error { ename }),
        Just(Rmsg::Flush),
        vec(qid(), 0..=MAXWELEM).prop_map(|wqids| Rmsg::Walk { wqids }),
        (qid(), any::<u32>()).prop_map(|(qid, iounit)| Rmsg::Open { qid, iounit }),
        (qid(), any::<u32>()).prop_map(|(qid, iounit)| Rmsg::Create { qid, iounit }),
        data().prop_map(|data| Rmsg::Read { data }),
        any::<u32>().prop_map(|count| Rmsg::Write { count }),
        Just(Rmsg::Clunk),
        Just(Rmsg::Remove),
        stat().prop_map(|stat| Rmsg::Stat { stat }),
        Just(Rmsg::Wstat),
    ]
}
