//! Store tests: format, open, upsert, sync, reopen, space reuse.

use std::ops::Bound;
use std::sync::Arc;

use super::*;
use crate::device::MemDev;
use crate::format::value::Xdir;

const DEV: u64 = 64 << 20;

fn fmt(dev: &Arc<MemDev>) -> Store {
    let opts = FormatOpts {
        user: "glenda".into(),
        cache_bytes: 8 << 20,
    };
    Store::format(dev.clone(), &opts).unwrap()
}

fn open(dev: &Arc<MemDev>) -> Store {
    Store::open(
        dev.clone(),
        &Config {
            cache_bytes: 8 << 20,
            read_only: false,
        },
    )
    .unwrap()
}

fn k(i: u64) -> Vec<u8> {
    let mut v = vec![crate::format::key::KCONF];
    v.extend_from_slice(&i.to_be_bytes());
    v
}

#[test]
fn format_open_and_read_back() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    for label in ["main", "adm", "empty"] {
        let t = s.mount(label).unwrap();
        let d = s
            .lookup(t, &key::ent(key::ROOT_PQID, b""))
            .unwrap()
            .unwrap();
        assert!(Xdir::decode(&d).unwrap().is_dir(), "{label}");
    }
    let adm = s.mount("adm").unwrap();
    let u = s
        .lookup(adm, &key::ent(format::QID_ADM_ROOT, b"users"))
        .unwrap()
        .unwrap();
    let u = Xdir::decode(&u).unwrap();
    let p = s
        .lookup(adm, &key::dat(format::QID_USERS, 0))
        .unwrap()
        .unwrap();
    let bp = Bptr::from_slice(&p).unwrap();
    let b = s.read_data(&bp).unwrap();
    assert_eq!(
        &b.bytes()[..u.length as usize],
        default_users("glenda").as_bytes()
    );
    let empty = s.mount("empty").unwrap();
    assert!(matches!(
        s.upsert(empty, vec![Msg::insert(k(1), vec![1])], Tier::Normal),
        Err(Error::ReadOnly)
    ));
}

#[test]
fn upserts_survive_sync_and_reopen_and_space_is_reused() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    let free0 = s.allocator().free_blocks();
    for round in 0..20u64 {
        for i in 0..500u64 {
            let key = k(i);
            s.upsert(
                t,
                vec![Msg::insert(key, (round * 1000 + i).to_be_bytes().to_vec())],
                Tier::Normal,
            )
            .unwrap();
        }
        s.sync().unwrap();
    }
    let used = free0 - s.allocator().free_blocks();
    assert!(
        used < 200,
        "{used} blocks used by 500 small keys: space is not being reused"
    );
    drop(s);
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    let all = s
        .scan(t, Bound::Included(&k(0)[..]), Bound::Unbounded, 10_000)
        .unwrap();
    assert_eq!(all.len(), 500);
    for (i, (key, v)) in all.iter().enumerate() {
        assert_eq!(key, &k(i as u64));
        assert_eq!(v, &(19 * 1000 + i as u64).to_be_bytes().to_vec());
    }
}
