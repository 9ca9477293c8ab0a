//! Permission tests (T16 at the library level).

use super::*;

/// Replace the users table (as a permissive adm) and reload it.
pub(super) fn set_users(fs: &Fs, text: &str) {
    let adm = Who::permissive(-1);
    let (m, root) = fs.attach("adm").unwrap();
    let u = fs.walk(&m, &root, b"users", &adm).unwrap();
    let o = fs.open(&m, &u, OWRITE | OTRUNC, &adm).unwrap();
    fs.write(&o, 0, text.as_bytes(), &adm).unwrap();
    fs.reload_users().unwrap();
}

const ALICE: i32 = 2;
const BOB: i32 = 3;
const STAFF: i32 = 4;
const CAROL: i32 = 6;
const NONE: i32 = 0;

const TABLE: &str = "-1:adm::glenda\n0:none::\n1:glenda:glenda:\n2:alice::\n3:bob::\n\
                     4:staff:alice:alice,bob\n5:nogroup::carol\n6:carol::\n";

fn setup() -> (Arc<MemDev>, Fs, Mount, Entry) {
    let dev = format(DEV);
    let fs = open(&dev);
    set_users(&fs, TABLE);
    let (m, root) = fs.attach("main").unwrap();
    (dev, fs, m, root)
}

/// A file of glenda's in the root with `mode` and group `gid`.
fn file(fs: &Fs, m: &Mount, root: &Entry, name: &str, mode: u32, gid: i32) -> Entry {
    let f = put(fs, m, root, name, b"contents");
    let c = Changes {
        mode: Some(mode),
        gid: Some(gid),
        ..Changes::default()
    };
    let p = Who::permissive(GLENDA);
    fs.wstat(m, &f, &c, &p).unwrap()
}

fn can(fs: &Fs, m: &Mount, e: &Entry, omode: u8, uid: i32) -> bool {
    match fs.check_open(m, e, omode, &Who::user(uid)) {
        Ok(_) => true,
        Err(Error::Perm) => false,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn perm_non_owner_cannot_write() {
    let (_d, fs, m, root) = setup();
    let f = file(&fs, &m, &root, "f", 0o644, GLENDA);
    assert!(can(&fs, &m, &f, OWRITE, GLENDA));
    assert!(!can(&fs, &m, &f, OWRITE, ALICE));
    assert!(!can(&fs, &m, &f, OREAD | OTRUNC, ALICE));
    assert!(can(&fs, &m, &f, OREAD, ALICE));
    // The owner is held to the owner bits too.
    let r = file(&fs, &m, &root, "r", 0o444, GLENDA);
    assert!(!can(&fs, &m, &r, OWRITE, GLENDA));
}

#[test]
fn perm_group_and_other_bits() {
    let (_d, fs, m, root) = setup();
    let f = file(&fs, &m, &root, "g", 0o640, STAFF);
    assert!(can(&fs, &m, &f, OREAD, ALICE));
    assert!(can(&fs, &m, &f, OREAD, BOB));
    assert!(!can(&fs, &m, &f, OWRITE, BOB));
    assert!(!can(&fs, &m, &f, OREAD, CAROL));
    let o = file(&fs, &m, &root, "o", 0o604, STAFF);
    // Plan 9 (and the reference): a member denied by the group bits still
    // gets the other bits.
    assert!(can(&fs, &m, &o, OREAD, BOB));
    // carol is in nogroup: denied the other bits, except directory search.
    assert!(!can(&fs, &m, &o, OREAD, CAROL));
    let d = fs
        .create(&m, &root, b"d", DMDIR | 0o771, OREAD, &glenda())
        .unwrap();
    assert!(fs.walk(&m, d.entry(), b"x", &Who::user(CAROL)).is_err());
    assert!(matches!(
        fs.walk(&m, d.entry(), b"x", &Who::user(CAROL)),
        Err(Error::NotFound)
    ));
}

#[test]
fn perm_none_gets_only_the_other_bits() {
    let (_d, fs, m, root) = setup();
    let f = file(&fs, &m, &root, "n", 0o664, NONE);
    // Even as the group, none gets only the other bits.
    assert!(can(&fs, &m, &f, OREAD, NONE));
    assert!(!can(&fs, &m, &f, OWRITE, NONE));
    let p = file(&fs, &m, &root, "p", 0o660, GLENDA);
    assert!(!can(&fs, &m, &p, OREAD, NONE));
}

#[test]
fn perm_create_remove_and_rename_need_write_on_the_parent() {
    let (_d, fs, m, root) = setup();
    let g = glenda();
    let d = fs
        .create(&m, &root, b"d", DMDIR | 0o755, OREAD, &g)
        .unwrap();
    let f = put(&fs, &m, d.entry(), "f", b"x");
    let alice = Who::user(ALICE);
    let r = fs.create(&m, d.entry(), b"mine", 0o666, OREAD, &alice);
    assert!(matches!(r, Err(Error::Perm)), "{r:?}");
    assert!(matches!(fs.remove(&m, &f, &alice), Err(Error::Perm)));
    let c = Changes {
        name: Some(b"g".to_vec()),
        ..Changes::default()
    };
    assert!(matches!(fs.wstat(&m, &f, &c, &alice), Err(Error::Perm)));
    // #7: remove-on-close needs write on the parent at open.
    let o = fs.open(&m, &f, OREAD | ORCLOSE, &alice);
    assert!(matches!(o, Err(Error::Perm)), "{o:?}");
    assert!(fs.open(&m, &f, OREAD | ORCLOSE, &g).unwrap().info().rclose);
    // The created file's mode inherits the directory's bits.
    let x = fs.create(&m, d.entry(), b"x", 0o777, OREAD, &g).unwrap();
    assert_eq!(x.entry().dir.mode, 0o755);
    assert_eq!(x.entry().dir.gid, d.entry().dir.gid);
    let y = fs
        .create(&m, d.entry(), b"y", DMDIR | 0o777, OREAD, &g)
        .unwrap();
    assert_eq!(y.entry().dir.mode, DMDIR | 0o755);
}

#[test]
fn perm_walk_needs_exec_and_dotdot_never_leaves_the_root() {
    let (_d, fs, m, root) = setup();
    let g = glenda();
    let d = fs
        .create(&m, &root, b"private", DMDIR | 0o700, OREAD, &g)
        .unwrap();
    put(&fs, &m, d.entry(), "f", b"x");
    assert!(matches!(
        fs.walk(&m, d.entry(), b"f", &Who::user(ALICE)),
        Err(Error::Perm)
    ));
    assert!(fs.walk(&m, d.entry(), b"f", &g).is_ok());
    let mut e = root.clone();
    for _ in 0..10 {
        e = fs.walk(&m, &e, b"..", &Who::user(ALICE)).unwrap();
        assert_eq!(e.qid, fs.stat(&m, &root).unwrap().qid);
    }
}

#[test]
fn perm_wstat_rules() {
    let (_d, fs, m, root) = setup();
    let f = file(&fs, &m, &root, "w", 0o666, GLENDA);
    let alice = Who::user(ALICE);
    let chmod = Changes {
        mode: Some(0o600),
        ..Changes::default()
    };
    let r = fs.wstat(&m, &f, &chmod, &alice);
    assert!(matches!(r, Err(Error::Wstat(WstatRule::NotOwner))), "{r:?}");
    // alice may change the length (write permission) and becomes muid.
    let len = Changes {
        length: Some(3),
        ..Changes::default()
    };
    assert_eq!(fs.wstat(&m, &f, &len, &alice).unwrap().dir.muid, ALICE);
    let chown = Changes {
        uid: Some(ALICE),
        ..Changes::default()
    };
    let r = fs.wstat(&m, &f, &chown, &glenda());
    assert!(matches!(r, Err(Error::Wstat(WstatRule::NotPermissive))));
    let p = Who::permissive(GLENDA);
    assert_eq!(fs.wstat(&m, &f, &chown, &p).unwrap().dir.uid, ALICE);
    // Owner alice, member of staff: may give the file to staff, not to adm.
    let chgrp = |gid| Changes {
        gid: Some(gid),
        ..Changes::default()
    };
    let r = fs.wstat(&m, &f, &chgrp(-1), &alice);
    assert!(matches!(r, Err(Error::Wstat(WstatRule::NotInGroup))));
    assert_eq!(
        fs.wstat(&m, &f, &chgrp(STAFF), &alice).unwrap().dir.gid,
        STAFF
    );
    let r = fs.wstat(&m, &f, &chgrp(777), &p);
    assert!(matches!(r, Err(Error::NoUser)));
    let bits = Changes {
        mode: Some(0x0100_0000 | 0o644),
        ..Changes::default()
    };
    let r = fs.wstat(&m, &f, &bits, &alice);
    assert!(matches!(r, Err(Error::Wstat(WstatRule::UnknownBits))));
}

#[test]
fn perm_permissive_attach_is_for_adm() {
    let (_d, fs, _m, _root) = setup();
    assert!(fs.may_permit(GLENDA));
    assert!(fs.may_permit(-1));
    assert!(!fs.may_permit(ALICE));
    assert!(!fs.may_permit(NONE));
    fs.set_permissive(true);
    assert!(fs.may_permit(ALICE));
}

#[test]
fn users_table_load_and_fallback() {
    let dev = format(DEV);
    let fs = open(&dev);
    assert_eq!(fs.uid("glenda").unwrap(), GLENDA);
    assert!(matches!(fs.uid("nobody"), Err(Error::NoUser)));
    set_users(&fs, TABLE);
    assert_eq!(fs.uid("carol").unwrap(), CAROL);
    // A broken table: a reload reports it and keeps the old one.
    let adm = Who::permissive(-1);
    let (m, root) = fs.attach("adm").unwrap();
    let u = fs.walk(&m, &root, b"users", &adm).unwrap();
    let o = fs.open(&m, &u, OWRITE | OTRUNC, &adm).unwrap();
    fs.write(&o, 0, b"-1:adm::nosuchuser\n", &adm).unwrap();
    assert!(fs.reload_users().is_err());
    assert_eq!(fs.uid("carol").unwrap(), CAROL);
    fs.sync().unwrap();
    let store = fs.store().clone();
    drop((o, u, root, m, fs));
    assert!(Fs::new(store.clone(), false).is_err());
    let fs = Fs::new(store, true).unwrap();
    assert!(matches!(fs.uid("glenda"), Err(Error::NoUser)));
    assert_eq!(fs.uid("adm").unwrap(), -1);
}
