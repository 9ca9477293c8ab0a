//! Formatting: the trees, root directories and users file a new image
//! holds (`fs/format.rs` and `store/format.rs`).

use std::sync::Arc;

use crate::alloc::Tier;
use crate::device::MemDev;
use crate::error::Error;
use crate::format::key;
use crate::format::msg::Msg;
use crate::format::value::Xdir;
use crate::format::Bptr;
use crate::format::Decode;
use crate::store::Store;

const DEV: u64 = 64 << 20;

/// Format `dev` (8 MiB cache).
fn fmt(dev: &Arc<MemDev>) -> Store {
    crate::testing::format(dev.clone(), 8 << 20)
}

/// Open the store on `dev` (8 MiB cache).
fn open(dev: &Arc<MemDev>) -> Store {
    crate::testing::open_store(dev, 8 << 20)
}

/// A `KCONF` key numbered `i`.
fn k(i: u64) -> Vec<u8> {
    let mut v = vec![key::KCONF];
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
        .lookup(adm, &key::ent(super::super::format::QID_ADM_ROOT, b"users"))
        .unwrap()
        .unwrap();
    let u = Xdir::decode(&u).unwrap();
    let p = s
        .lookup(adm, &key::dat(super::super::format::QID_USERS, 0))
        .unwrap()
        .unwrap();
    let bp = Bptr::from_slice(&p).unwrap();
    let b = s.read_data(&bp).unwrap();
    assert_eq!(
        &b.bytes()[..u.length as usize],
        crate::users::default_table("glenda").as_bytes()
    );
    let empty = s.mount("empty").unwrap();
    assert!(matches!(
        s.upsert(empty, vec![Msg::insert(k(1), vec![1])], Tier::Normal),
        Err(Error::ReadOnly)
    ));
}
