//! Tests of the users table: parsing, lookups, special ids, serialization.

use proptest::prelude::*;

use super::*;

fn parse_err(text: &str) -> String {
    match Users::parse(text) {
        Ok(t) => panic!("{text:?} parsed as {t:?}"),
        Err(Error::Invalid(msg)) => msg,
        Err(e) => panic!("{text:?}: unexpected error kind {e}"),
    }
}

#[test]
fn default_table_is_exact() {
    assert_eq!(
        default_table("glenda"),
        "-1:adm::glenda\n0:none::\n1:glenda:glenda:\n"
    );
}

#[test]
fn default_table_parses_to_the_first_users() {
    let text = default_table("glenda");
    let t = Users::parse(&text).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.adm_id(), -1);
    assert_eq!(t.none_id(), 0);
    assert_eq!(t.nogroup_id(), DEFAULT_NOGROUP_ID);
    let glenda = t.by_name("glenda").unwrap();
    assert_eq!(glenda.id(), 1);
    assert_eq!(glenda.leader(), Some(1));
    assert!(t.is_member(1, -1));
    assert!(
        t.is_leader(1, -1),
        "adm has no leader, so its members lead it"
    );
    assert!(t.is_leader(1, 1));
    assert!(!t.is_member(0, -1));
    assert_eq!(t.by_name("adm").unwrap().leader(), None);
    assert_eq!(t.serialize(), text);
}

#[test]
fn fallback_table() {
    let f = Users::fallback();
    assert_eq!(f, Users::parse("-1:adm::\n0:none::\n").unwrap());
    assert_eq!(f.serialize(), "-1:adm::\n0:none::\n");
    assert_eq!(f.adm_id(), -1);
    assert_eq!(f.none_id(), 0);
}

#[test]
fn comments_blank_lines_and_whitespace() {
    let text = "# users\n\n  \n-5:adm::a\r\n  # indented comment\n 3 : a : a : \n7:b::a, ,a,\n";
    let t = Users::parse(text).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.by_id(-5).unwrap().name(), "adm");
    assert_eq!(t.adm_id(), -5);
    assert_eq!(t.by_name("a").unwrap().id(), 3);
    assert_eq!(t.by_name("b").unwrap().members(), &[3]);
    assert_eq!(t.serialize(), "-5:adm::a\n3:a:a:\n7:b::a\n");
}

#[test]
fn parse_bytes_checks_utf8() {
    let t = Users::parse_bytes(b"0:none::\n1:\xc3\xa9::\n").unwrap();
    assert_eq!(t.by_id(1).unwrap().name(), "\u{e9}");
    let err = Users::parse_bytes(b"0:none::\n1:\xff::\n").unwrap_err();
    assert!(err.to_string().contains("line 2: not valid UTF-8"), "{err}");
    let big = vec![b'#'; MAX_FILE_BYTES];
    assert!(Users::parse_bytes(&big).is_err());
}

#[test]
fn forward_references_resolve() {
    let t = Users::parse("1:g:u:u,v\n2:u::\n3:v::\n").unwrap();
    let g = t.by_name("g").unwrap();
    assert_eq!(g.leader(), Some(2));
    assert_eq!(g.members(), &[2, 3]);
}

#[test]
fn parse_errors_name_the_rule_and_line() {
    // (text, expected fragment of the message)
    let cases = [
        ("1:a:\n", "line 1: expected id:name:leader:members"),
        ("1:a::\n1:b\n", "line 2: expected"),
        ("1:a:::\n", "found 4 colons"),
        ("x:a::\n", "line 1: id \"x\""),
        ("2147483648:a::\n", "not a 32-bit integer"),
        (":a::\n", "id \"\""),
        ("1:::\n", "is empty"),
        ("1:a,b::\n", "contains ':', ',' or '/'"),
        ("1:a/b::\n", "contains ':', ',' or '/'"),
        ("1:a b::\n", "white-space"),
        ("1:a\u{7}::\n", "control"),
        (
            "1:a::\n2:a::\n",
            "line 2: duplicate name \"a\" (also on line 1)",
        ),
        (
            "1:a::\n\n1:b::\n",
            "line 3: duplicate id 1 (also on line 1)",
        ),
        ("1:a:b:\n", "line 1: unknown leader \"b\""),
        ("1:a::\n2:c::a,zz\n", "line 2: unknown member \"zz\""),
        (
            "0:none::\n1:a:none:\n",
            "line 2: none cannot be a group leader",
        ),
    ];
    for (text, want) in cases {
        let msg = parse_err(text);
        assert!(msg.contains(want), "{text:?}: {msg:?} lacks {want:?}");
    }
    let long = format!("1:{}::\n", "n".repeat(MAX_NAME_BYTES + 1));
    assert!(parse_err(&long).contains("longer than 64 bytes"));
    let ok = format!("1:{}::\n", "n".repeat(MAX_NAME_BYTES));
    assert!(Users::parse(&ok).is_ok());
}

#[test]
fn none_by_id_cannot_lead_even_when_named_otherwise() {
    // Without a user named none, id 0 is the anonymous id.
    let msg = parse_err("0:anon::\n1:a:anon:\n");
    assert!(msg.contains("none cannot be a group leader"), "{msg}");
    // With a user named none elsewhere, id 0 is ordinary.
    assert!(Users::parse("5:none::\n0:anon::\n1:a:anon:\n").is_ok());
}

#[test]
fn file_size_limit() {
    let line = "# padding padding padding padding padding padding padding padding\n";
    let mut text = String::from("1:a::\n");
    while text.len() < MAX_FILE_BYTES {
        text.push_str(line);
    }
    assert!(parse_err(&text).contains("must be smaller than"));
    text.truncate(MAX_FILE_BYTES - 1);
    assert!(Users::parse(&text).is_ok());
}

#[test]
fn large_table_near_the_limit() {
    // ~40k users and one group listing all of them: member de-duplication
    // must not be quadratic.
    let n = 40_000;
    let mut text = String::new();
    let mut all = Vec::new();
    for i in 0..n {
        text.push_str(&format!("{i}:u{i}::\n"));
        all.push(format!("u{i}"));
    }
    text.push_str(&format!("-7:big::{}\n", all.join(",")));
    assert!(text.len() < MAX_FILE_BYTES);
    let t = Users::parse(&text).unwrap();
    assert_eq!(t.len(), n + 1);
    assert_eq!(t.by_name("big").unwrap().members().len(), n);
    assert!(t.is_member(39_999, -7));
    assert_eq!(Users::parse(&t.serialize()).unwrap(), t);
}

#[test]
fn special_ids_looked_up_by_name() {
    let t = Users::parse("-3:adm::\n7:none::\n42:nogroup::\n").unwrap();
    assert_eq!((t.adm_id(), t.none_id(), t.nogroup_id()), (-3, 7, 42));
    let empty = Users::parse("# nothing\n").unwrap();
    assert!(empty.is_empty());
    assert_eq!(
        (empty.adm_id(), empty.none_id(), empty.nogroup_id()),
        (DEFAULT_ADM_ID, DEFAULT_NONE_ID, DEFAULT_NOGROUP_ID)
    );
}

#[test]
fn stat_names_for_known_and_unknown_ids() {
    let t = Users::parse(&default_table("glenda")).unwrap();
    assert_eq!(t.name_of(1), "glenda");
    assert_eq!(t.name_of(-1), "adm");
    assert_eq!(t.name_of(1234), "none");
    assert_eq!(t.group_name_of(-1), "adm");
}

/// Defect #9 postmortem: the reference's stat looked an unknown gid up,
/// then assigned the `nogroup` fallback to the uid variable instead of the
/// gid one, so stat of any file whose group had been deleted from the table
/// failed with Eperm. The rule is: unknown uid/muid → `none`; unknown gid →
/// the `nogroup` user's name if the table has one, else `none`.
#[test]
fn regression_defect_9_unknown_gid_falls_back_to_nogroup() {
    let with = Users::parse("0:none::\n1:a::\n9999:nogroup::\n").unwrap();
    assert_eq!(with.group_name_of(77), "nogroup");
    assert_eq!(with.name_of(77), "none", "the uid fallback is unaffected");
    assert_eq!(with.group_name_of(1), "a");
    let renamed = Users::parse("0:none::\n1:a::\n50:nogroup::\n").unwrap();
    assert_eq!(renamed.group_name_of(77), "nogroup");
    let without = Users::parse("0:none::\n1:a::\n").unwrap();
    assert_eq!(without.group_name_of(77), "none");
    let bare = Users::parse("1:a::\n").unwrap();
    assert_eq!(bare.group_name_of(77), "none");
    assert_eq!(bare.name_of(77), "none");
}

#[test]
fn membership_and_leadership() {
    let t = Users::parse("1:a::\n2:b::\n3:c::\n10:g:a:b\n11:h::b,c\n").unwrap();
    assert!(t.is_member(2, 10));
    assert!(!t.is_member(1, 10), "the leader is not thereby a member");
    assert!(t.is_leader(1, 10));
    assert!(!t.is_leader(2, 10), "a led group is led only by its leader");
    assert!(t.is_leader(2, 11) && t.is_leader(3, 11));
    assert!(!t.is_leader(1, 11));
    assert!(t.is_member(1, 1) && t.is_leader(1, 1));
    assert!(!t.is_member(99, 99), "unknown ids are members of nothing");
    assert!(!t.is_member(1, 99));
    assert!(!t.is_leader(1, 99));
}

#[test]
fn round_trip_preserves_order_and_content() {
    let text = "-1:adm::glenda,bob\n0:none::\n1:glenda:glenda:\n3:bob::\n9:sys:bob:glenda,bob\n";
    let t = Users::parse(text).unwrap();
    assert_eq!(t.serialize(), text);
    assert_eq!(Users::parse(&t.serialize()).unwrap(), t);
    assert_eq!(text.parse::<Users>().unwrap(), t);
}

/// A random valid table, as (id, name, leader index, member indices).
fn arb_table() -> impl Strategy<Value = String> {
    let name = "[a-zA-Z0-9_.é-]{1,12}";
    prop::collection::btree_map(name, any::<i32>(), 0..12)
        .prop_flat_map(|names| {
            let n = names.len();
            let users: Vec<(String, i32)> = names.into_iter().collect();
            let extra = prop::collection::vec(
                (
                    prop::option::of(0..n.max(1)),
                    prop::collection::vec(0..n.max(1), 0..4),
                ),
                n,
            );
            (Just(users), extra)
        })
        .prop_map(|(users, extra)| {
            let mut ids = std::collections::HashSet::new();
            let users: Vec<(String, i32)> = users
                .into_iter()
                .filter(|(name, id)| *id != 0 && name != "none" && ids.insert(*id))
                .collect();
            let mut text = String::from("# generated\n");
            for (i, (name, id)) in users.iter().enumerate() {
                let (lead, members) = extra.get(i).cloned().unwrap_or_default();
                let lead = lead
                    .and_then(|l| users.get(l))
                    .map_or("", |(n, _)| n.as_str());
                let members: Vec<&str> = members
                    .iter()
                    .filter_map(|&m| users.get(m).map(|(n, _)| n.as_str()))
                    .collect();
                text.push_str(&format!("{id}:{name}:{lead}:{}\n\n", members.join(",")));
            }
            text
        })
}

proptest! {
    #[test]
    fn prop_serialize_round_trips(text in arb_table()) {
        let t = Users::parse(&text).unwrap();
        let again = Users::parse(&t.serialize()).unwrap();
        prop_assert_eq!(&again, &t);
        prop_assert_eq!(again.serialize(), t.serialize());
    }

    #[test]
    fn prop_parse_never_panics(text in ".{0,400}") {
        let _ = Users::parse(&text);
    }

    #[test]
    fn prop_parse_never_panics_on_table_like_text(text in "([-0-9a-c:,# \n]{0,12}\n){0,20}") {
        if let Ok(t) = Users::parse(&text) {
            prop_assert_eq!(Users::parse(&t.serialize()).unwrap(), t);
        }
    }
}
