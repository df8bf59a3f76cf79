//! The store against the machine's PostgreSQL (`E2E_DATABASE_URL`), each test in a schema of
//! its own, dropped at its end: tenant isolation, the order of LINE follows and unfollows,
//! block periods, lists and their search.

use chat_kit::DatabaseSettings;
use sqlx::Executor;
use strum::IntoEnumIterator;

use super::*;

/// A schema of its own on the test PostgreSQL.
pub(crate) struct TestDb {
    pub store: Store,
    url: String,
    schema: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let url =
            std::env::var("E2E_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/chat".into());
        let schema = format!("contacts_test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let settings = DatabaseSettings {
            url: url.clone(),
            schema: schema.clone(),
            max_connections: 4,
            idle_in_transaction_timeout_ms: 0,
        };
        let store = match Store::connect(&settings).await {
            Ok(store) => store,
            Err(err) => panic!("PostgreSQL is needed at {url} (make test starts it): {err}"),
        };
        Self { store, url, schema }
    }

    /// Drop the schema (call at the end of the test).
    pub async fn drop(self) {
        self.store.pool.close().await;
        let pool = sqlx::AnyPool::connect(&self.url).await.unwrap();
        pool.execute(format!("DROP SCHEMA \"{}\" CASCADE", self.schema).as_str()).await.unwrap();
        pool.close().await;
    }
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn alice() -> UserId {
    UserId::new("alice@acme")
}

fn bob() -> UserId {
    UserId::new("bob@acme")
}

fn carol() -> UserId {
    UserId::new("carol@globex")
}

/// Alice's saved external contact Carol.
pub(crate) async fn save_carol(store: &Store) -> Contact {
    let room = RoomId::new("room-ac");
    let peer = ExternalPeer {
        peer: &carol(),
        peer_tenant: &TenantId::new("globex"),
        display_name: "Carol Chen",
        company: Some("Globex"),
        room_id: &room,
    };
    let (contact, was_saved) = store.save_external(&alice(), &acme(), &peer, 1_000).await.unwrap();
    assert!(!was_saved);
    contact
}

#[test]
fn contact_kinds_keep_their_stored_names() {
    let names: Vec<&str> = ContactKind::iter().map(ContactKind::as_str).collect();
    assert_eq!(names, ["external", "line"]);
    for kind in ContactKind::iter() {
        assert_eq!(ContactKind::try_from(kind.as_str().to_owned()), Ok(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
    assert!(ContactKind::try_from("External".to_owned()).is_err());
    assert!(ContactKind::try_from("group".to_owned()).is_err());
    assert!(ContactKind::try_from(String::new()).is_err());
}

#[test]
fn search_text_is_a_lowercase_substring_with_its_wildcards_escaped() {
    assert_eq!(like_pattern("Taro"), "%taro%");
    assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
}

#[tokio::test]
async fn another_members_or_another_tenants_contact_is_absent() {
    let db = TestDb::new().await;
    let store = &db.store;
    let contact = save_carol(store).await;
    assert_eq!(contact.kind, ContactKind::External);
    assert_eq!(contact.peer_tenant, Some(TenantId::new("globex")));
    assert_eq!(contact.room_id, Some(RoomId::new("room-ac")));
    assert!(contact.saved && !contact.blocked && contact.following.is_none());

    // The owner sees it; the same id asked by Bob, or by "alice" of another tenant, is absent.
    assert!(store.contact(&alice(), &acme(), &contact.id).await.unwrap().is_some());
    assert!(store.contact(&bob(), &acme(), &contact.id).await.unwrap().is_none());
    assert!(store.contact(&alice(), &TenantId::new("globex"), &contact.id).await.unwrap().is_none());
    assert!(store.contact_by_peer(&bob(), &acme(), &carol()).await.unwrap().is_none());

    let notes = Notes { name: Some("Mallory's".into()), phone: None, email: None };
    assert!(store.set_notes(&bob(), &acme(), &contact.id, &notes, 2_000).await.unwrap().is_none());
    assert!(store.set_notes(&alice(), &TenantId::new("globex"), &contact.id, &notes, 2_000).await.unwrap().is_none());
    assert!(!store.unsave(&bob(), &acme(), &contact.id, 2_000).await.unwrap());
    assert!(!store.unsave(&alice(), &TenantId::new("globex"), &contact.id, 2_000).await.unwrap());
    let page = ListFilter { saved_only: true, limit: 10, ..ListFilter::default() };
    assert!(store.contacts(&bob(), &acme(), &page).await.unwrap().is_empty());
    assert!(store.contacts(&alice(), &TenantId::new("globex"), &page).await.unwrap().is_empty());

    // Nothing of Alice's changed.
    let unchanged = store.contact(&alice(), &acme(), &contact.id).await.unwrap().unwrap();
    assert_eq!(unchanged, contact);

    // Bob blocking Carol does not block Alice's contact.
    store.block(&bob(), &carol(), 3_000).await.unwrap();
    assert!(!store.contact(&alice(), &acme(), &contact.id).await.unwrap().unwrap().blocked);
    db.drop().await;
}

#[tokio::test]
async fn notes_are_set_and_cleared_and_removing_keeps_room_and_block() {
    let db = TestDb::new().await;
    let store = &db.store;
    let contact = save_carol(store).await;
    let notes =
        Notes { name: Some("Carol (Globex)".into()), phone: Some("+81 3".into()), email: Some("c@g.example".into()) };
    let noted = store.set_notes(&alice(), &acme(), &contact.id, &notes, 2_000).await.unwrap().unwrap();
    assert_eq!((noted.name.as_deref(), noted.updated_at_ms), (Some("Carol (Globex)"), 2_000));
    store.block(&alice(), &carol(), 2_500).await.unwrap();

    assert!(store.unsave(&alice(), &acme(), &contact.id, 3_000).await.unwrap());
    let removed = store.contact(&alice(), &acme(), &contact.id).await.unwrap().unwrap();
    assert!(!removed.saved);
    assert_eq!((removed.name, removed.phone, removed.email), (None, None, None));
    assert_eq!(removed.room_id, Some(RoomId::new("room-ac")), "the room stays");
    assert!(removed.blocked, "the block stays");
    assert!(!store.unsave(&alice(), &acme(), &contact.id, 3_000).await.unwrap(), "not saved any more");
    assert!(store.set_notes(&alice(), &acme(), &contact.id, &notes, 3_000).await.unwrap().is_none());

    // Saving again keeps the id.
    let room = RoomId::new("room-ac");
    let peer = ExternalPeer {
        peer: &carol(),
        peer_tenant: &TenantId::new("globex"),
        display_name: "Carol C.",
        company: Some("Globex"),
        room_id: &room,
    };
    let (again, was_saved) = store.save_external(&alice(), &acme(), &peer, 4_000).await.unwrap();
    assert!(!was_saved && again.saved);
    assert_eq!((again.id.as_str(), again.display_name.as_str()), (contact.id.as_str(), "Carol C."));
    let (_, was_saved) = store.save_external(&alice(), &acme(), &peer, 5_000).await.unwrap();
    assert!(was_saved);
    db.drop().await;
}

#[tokio::test]
async fn line_follows_and_unfollows_apply_in_the_order_of_their_time() {
    let db = TestDb::new().await;
    let store = &db.store;
    let friend = UserId::new("line:U1");
    let row = || async { store.contact_by_peer(&alice(), &acme(), &friend).await.unwrap().unwrap() };

    assert!(store.line_follow(&alice(), &acme(), &friend, "Taro", Some("https://p.example/1"), 100, 1).await.unwrap());
    let first = row().await;
    assert_eq!((first.kind, first.following, first.saved), (ContactKind::Line, Some(true), false));
    assert_eq!((first.peer_tenant, first.picture_url.as_deref()), (None, Some("https://p.example/1")));

    // An unfollow older than the follow arrives late: ignored.
    assert!(!store.line_unfollow(&alice(), &acme(), &friend, 50, 2).await.unwrap());
    assert_eq!(row().await.following, Some(true));
    // A newer unfollow applies; nothing is deleted.
    assert!(store.line_unfollow(&alice(), &acme(), &friend, 200, 3).await.unwrap());
    let unfollowed = row().await;
    assert_eq!((unfollowed.following, unfollowed.display_name.as_str()), (Some(false), "Taro"));
    assert_eq!(unfollowed.id, first.id);
    // An older follow arriving late does not bring it back.
    assert!(!store.line_follow(&alice(), &acme(), &friend, "Old name", None, 150, 4).await.unwrap());
    assert_eq!((row().await.following, row().await.display_name), (Some(false), "Taro".to_owned()));
    // A newer follow does, with the name it carries.
    assert!(store.line_follow(&alice(), &acme(), &friend, "Taro Y.", None, 300, 5).await.unwrap());
    assert_eq!((row().await.following, row().await.display_name), (Some(true), "Taro Y.".to_owned()));

    // An unfollow before any follow leaves a row that an older follow does not override.
    let other = UserId::new("line:U2");
    assert!(store.line_unfollow(&alice(), &acme(), &other, 500, 6).await.unwrap());
    assert!(!store.line_follow(&alice(), &acme(), &other, "Hanako", None, 400, 7).await.unwrap());
    let tombstone = store.contact_by_peer(&alice(), &acme(), &other).await.unwrap().unwrap();
    assert_eq!(tombstone.following, Some(false));

    // A room set on the row keeps the follow state and `saved`; a missing row is made.
    store.set_line_room(&alice(), &acme(), &friend, &RoomId::new("room-l1"), 8).await.unwrap();
    let with_room = row().await;
    assert_eq!(
        (with_room.room_id, with_room.following, with_room.saved),
        (Some(RoomId::new("room-l1")), Some(true), false)
    );
    let third = UserId::new("line:U3");
    store.set_line_room(&alice(), &acme(), &third, &RoomId::new("room-l3"), 9).await.unwrap();
    let made = store.contact_by_peer(&alice(), &acme(), &third).await.unwrap().unwrap();
    assert_eq!((made.display_name.as_str(), made.saved), ("line:U3", false));
    // A later follow names it.
    assert!(store.line_follow(&alice(), &acme(), &third, "Jiro", None, 10, 10).await.unwrap());
    assert_eq!(store.contact_by_peer(&alice(), &acme(), &third).await.unwrap().unwrap().display_name, "Jiro");

    // Saving a LINE friend puts it in Clients/Partners once.
    let (saved, was_saved) = store.save_line(&alice(), &acme(), &friend, 11).await.unwrap().unwrap();
    assert!(saved.saved && !was_saved);
    assert!(store.save_line(&alice(), &acme(), &friend, 12).await.unwrap().unwrap().1);
    assert!(store.save_line(&bob(), &acme(), &friend, 12).await.unwrap().is_none(), "Bob has no such friend");
    db.drop().await;
}

#[tokio::test]
async fn a_block_is_a_period_opened_once_and_closed_once() {
    let db = TestDb::new().await;
    let store = &db.store;
    let peer = UserId::new("line:U1");
    assert_eq!(store.unblock(&alice(), &peer, 50).await.unwrap(), None, "never blocked");

    let opened = store.block(&alice(), &peer, 100).await.unwrap();
    assert_eq!(opened, BlockChange { period: BlockPeriod { since_ms: 100, until_ms: None }, changed: true });
    let repeated = store.block(&alice(), &peer, 150).await.unwrap();
    assert_eq!(repeated, BlockChange { period: BlockPeriod { since_ms: 100, until_ms: None }, changed: false });

    let closed = store.unblock(&alice(), &peer, 200).await.unwrap().unwrap();
    assert_eq!(closed, BlockChange { period: BlockPeriod { since_ms: 100, until_ms: Some(200) }, changed: true });
    let again = store.unblock(&alice(), &peer, 250).await.unwrap().unwrap();
    assert_eq!(again, BlockChange { period: BlockPeriod { since_ms: 100, until_ms: Some(200) }, changed: false });

    // A new period in the same millisecond as the last one's end starts after it.
    let next = store.block(&alice(), &peer, 200).await.unwrap();
    assert_eq!(next.period, BlockPeriod { since_ms: 200, until_ms: None });
    assert!(next.changed);
    let closed_at_once = store.unblock(&alice(), &peer, 200).await.unwrap().unwrap();
    assert_eq!(closed_at_once.period, BlockPeriod { since_ms: 200, until_ms: Some(200) });
    let third = store.block(&alice(), &peer, 200).await.unwrap();
    assert_eq!(third.period.since_ms, 201, "never the start of an earlier period");
    // A clock that went back does not open a period before the last one ended.
    store.unblock(&alice(), &peer, 300).await.unwrap();
    assert_eq!(store.block(&alice(), &peer, 250).await.unwrap().period.since_ms, 300);
    assert_eq!(store.last_block(&alice(), &peer).await.unwrap(), Some(BlockPeriod { since_ms: 300, until_ms: None }));
    assert_eq!(store.last_block(&bob(), &peer).await.unwrap(), None);
    db.drop().await;
}

#[tokio::test]
async fn lists_page_by_id_filter_by_kind_and_search_names_case_insensitively() {
    let db = TestDb::new().await;
    let store = &db.store;
    save_carol(store).await;
    for (n, name) in ["Taro", "taro_2", "Hanako", "100% Jiro"].iter().enumerate() {
        let friend = UserId::new(format!("line:U{n}"));
        store.line_follow(&alice(), &acme(), &friend, name, None, 1, 1).await.unwrap();
        store.save_line(&alice(), &acme(), &friend, 2).await.unwrap();
    }
    store.line_follow(&alice(), &acme(), &UserId::new("line:unsaved"), "Taro unsaved", None, 1, 1).await.unwrap();

    let all = ListFilter { saved_only: true, limit: 10, ..ListFilter::default() };
    let everything = store.contacts(&alice(), &acme(), &all).await.unwrap();
    assert_eq!(everything.len(), 5);
    let ids: Vec<&str> = everything.iter().map(|c| c.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "by id");

    let first = ListFilter { limit: 2, ..all.clone() };
    let page1 = store.contacts(&alice(), &acme(), &first).await.unwrap();
    let page2 =
        store.contacts(&alice(), &acme(), &ListFilter { after: Some(&page1[1].id), ..first.clone() }).await.unwrap();
    assert_eq!(page2[0].id, everything[2].id);

    let line = ListFilter { kind: Some(ContactKind::Line), ..all.clone() };
    assert_eq!(store.contacts(&alice(), &acme(), &line).await.unwrap().len(), 4);
    let external = ListFilter { kind: Some(ContactKind::External), ..all.clone() };
    assert_eq!(store.contacts(&alice(), &acme(), &external).await.unwrap().len(), 1);
    let friends = ListFilter { kind: Some(ContactKind::Line), saved_only: false, ..all.clone() };
    assert_eq!(store.contacts(&alice(), &acme(), &friends).await.unwrap().len(), 5);

    let names = |filter: ListFilter<'static>| async move {
        let mut names: Vec<String> =
            store.contacts(&alice(), &acme(), &filter).await.unwrap().into_iter().map(|c| c.display_name).collect();
        names.sort();
        names
    };
    assert_eq!(names(ListFilter { text: Some("TARO"), ..all.clone() }).await, ["Taro", "taro_2"]);
    assert_eq!(names(ListFilter { text: Some("o_"), ..all.clone() }).await, ["taro_2"], "_ is no wildcard");
    assert_eq!(names(ListFilter { text: Some("0%"), ..all.clone() }).await, ["100% Jiro"], "% is no wildcard");
    assert!(names(ListFilter { text: Some("%"), ..all.clone() }).await.len() == 1);

    // The member's own name for a contact is searched too.
    let carol_id = store.contact_by_peer(&alice(), &acme(), &carol()).await.unwrap().unwrap().id;
    let notes = Notes { name: Some("Partner Lead".into()), ..Notes::default() };
    store.set_notes(&alice(), &acme(), &carol_id, &notes, 3).await.unwrap();
    assert_eq!(names(ListFilter { text: Some("lead"), ..all.clone() }).await, ["Carol Chen"]);

    let counts = store.saved_counts().await.unwrap();
    assert_eq!(counts, vec![(ContactKind::External, 1), (ContactKind::Line, 4)]);
    db.drop().await;
}

#[tokio::test]
async fn line_bindings_and_profiles_belong_to_their_member_and_tenant() {
    let db = TestDb::new().await;
    let store = &db.store;
    assert_eq!(store.line_binding(&alice(), &acme()).await.unwrap(), None);
    store.bind_line(&alice(), &acme(), "@abc1234x", 1).await.unwrap();
    assert_eq!(store.line_binding(&alice(), &acme()).await.unwrap().as_deref(), Some("@abc1234x"));
    assert_eq!(store.line_binding(&alice(), &TenantId::new("globex")).await.unwrap(), None);
    store.bind_line(&alice(), &acme(), "@new", 2).await.unwrap();
    assert_eq!(store.line_binding(&alice(), &acme()).await.unwrap().as_deref(), Some("@new"));
    store.unbind_line(&alice(), &acme()).await.unwrap();
    assert_eq!(store.line_binding(&alice(), &acme()).await.unwrap(), None);

    assert_eq!(store.line_profile(&alice(), &acme()).await.unwrap(), LineProfile::default());
    let profile = LineProfile { about: Some("hi".into()), phone: None, website: Some("https://a.example".into()) };
    store.set_line_profile(&alice(), &acme(), &profile, 3).await.unwrap();
    assert_eq!(store.line_profile(&alice(), &acme()).await.unwrap(), profile);
    assert_eq!(store.line_profile(&bob(), &acme()).await.unwrap(), LineProfile::default());
    assert_eq!(store.line_profile(&alice(), &TenantId::new("globex")).await.unwrap(), LineProfile::default());
    db.drop().await;
}

/// The standalone runs on SQLite: the same queries (upserts with conditions, the partial index
/// of open blocks, escaped search) behave the same there.
#[tokio::test]
async fn the_store_behaves_the_same_on_sqlite() {
    let path = std::env::temp_dir().join(format!("contacts-store-{}.db", uuid::Uuid::new_v4().simple()));
    let settings = DatabaseSettings {
        url: format!("sqlite://{}?mode=rwc", path.display()),
        schema: "contacts".into(),
        max_connections: 4,
        idle_in_transaction_timeout_ms: 0,
    };
    let store = Store::connect(&settings).await.unwrap();
    let contact = save_carol(&store).await;
    assert!(store.contact(&bob(), &acme(), &contact.id).await.unwrap().is_none());
    let friend = UserId::new("line:U1");
    assert!(store.line_follow(&alice(), &acme(), &friend, "Taro_1", None, 100, 1).await.unwrap());
    assert!(!store.line_unfollow(&alice(), &acme(), &friend, 50, 2).await.unwrap());
    assert!(store.line_unfollow(&alice(), &acme(), &friend, 150, 3).await.unwrap());
    assert_eq!(store.contact_by_peer(&alice(), &acme(), &friend).await.unwrap().unwrap().following, Some(false));
    store.save_line(&alice(), &acme(), &friend, 4).await.unwrap();
    assert!(store.block(&alice(), &friend, 10).await.unwrap().changed);
    assert!(!store.block(&alice(), &friend, 11).await.unwrap().changed);
    assert!(store.contact_by_peer(&alice(), &acme(), &friend).await.unwrap().unwrap().blocked);
    let search = ListFilter { saved_only: true, text: Some("O_1"), limit: 10, ..ListFilter::default() };
    let found = store.contacts(&alice(), &acme(), &search).await.unwrap();
    assert_eq!(found.iter().map(|c| c.display_name.as_str()).collect::<Vec<_>>(), ["Taro_1"]);
    let wildcard = ListFilter { text: Some("a_o"), ..search };
    assert!(store.contacts(&alice(), &acme(), &wildcard).await.unwrap().is_empty());
    assert_eq!(store.saved_counts().await.unwrap(), vec![(ContactKind::External, 1), (ContactKind::Line, 1)]);
    store.pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_blocks_open_one_period_and_none_fails() {
    let db = TestDb::new().await;
    let peer = UserId::new("line:U1");
    for round in 0..5_i64 {
        let now = 1_000 * (round + 1);
        let tries: Vec<_> = (0..4)
            .map(|_| {
                let store = db.store.clone();
                let peer = peer.clone();
                tokio::spawn(async move { store.block(&alice(), &peer, now).await })
            })
            .collect();
        let mut changed = 0;
        for done in tries {
            let change = done.await.unwrap().expect("a concurrent block is no error");
            assert_eq!(change.period.until_ms, None);
            changed += usize::from(change.changed);
        }
        assert_eq!(changed, 1, "round {round}: one block opened the period, the others found it");
        db.store.unblock(&alice(), &peer, now + 500).await.unwrap();
    }
    db.drop().await;
}
