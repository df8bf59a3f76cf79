//! The contacts store: members' contacts (external users and LINE friends), block periods,
//! the profile members show LINE users and their LINE Official Account bindings, as typed rows.
//!
//! Every query of a member's contacts is filtered by the owner and the owner's tenant: another
//! member's or another tenant's contact is absent. Booleans are `BIGINT` 0/1 and kinds their
//! snake_case text (one schema for PostgreSQL and SQLite through sqlx's `Any` driver); an
//! unknown kind in the database is a decode error, never a default.

use chat_kit::DatabaseSettings;
use chat_protocol::{RoomId, TenantId, UserId};
use sqlx::any::Any;
use sqlx::{AnyPool, Transaction};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Any database failure (connecting, migrating, a query).
    #[error(transparent)]
    Db(#[from] chat_db::DbError),
    /// A row holds a value no type of this crate names (a kind, say).
    #[error("undecodable row: {0}")]
    Decode(#[from] chat_protocol::UnknownValue),
}

/// So that `?` works on sqlx calls: every database error goes through `DbError::Db`.
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Db(chat_db::DbError::Db(err))
    }
}

chat_protocol::text_enum! {
    /// Who a contact is.
    pub enum ContactKind {
        /// A member of another tenant (with an active trust when it was added).
        External,
        /// A LINE user who follows (or followed) the owner's LINE Official Account.
        Line,
    }
}

/// A member's contact, with whether the member blocks it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub owner: UserId,
    pub owner_tenant: TenantId,
    pub kind: ContactKind,
    pub peer: UserId,
    /// `None` for LINE users.
    pub peer_tenant: Option<TenantId>,
    pub display_name: String,
    pub company: Option<String>,
    pub picture_url: Option<String>,
    pub room_id: Option<RoomId>,
    /// In Clients/Partners.
    pub saved: bool,
    /// LINE only: the LINE user follows the owner's LINE Official Account.
    pub following: Option<bool>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// An open block period exists.
    pub blocked: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A contact as read, before its kind is checked.
#[derive(sqlx::FromRow)]
struct ContactRecord {
    id: String,
    owner: String,
    owner_tenant: String,
    kind: String,
    peer: String,
    peer_tenant: Option<String>,
    display_name: String,
    company: Option<String>,
    picture_url: Option<String>,
    room_id: Option<String>,
    saved: i64,
    following: Option<i64>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    blocked: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ContactRecord> for Contact {
    type Error = StoreError;

    fn try_from(r: ContactRecord) -> Result<Self, StoreError> {
        Ok(Contact {
            id: r.id,
            owner: UserId::new(r.owner),
            owner_tenant: TenantId::new(r.owner_tenant),
            kind: ContactKind::try_from(r.kind)?,
            peer: UserId::new(r.peer),
            peer_tenant: r.peer_tenant.map(TenantId::new),
            display_name: r.display_name,
            company: r.company,
            picture_url: r.picture_url,
            room_id: r.room_id.map(RoomId::new),
            saved: r.saved != 0,
            following: r.following.map(|f| f != 0),
            name: r.name,
            phone: r.phone,
            email: r.email,
            blocked: r.blocked != 0,
            created_at_ms: r.created_at,
            updated_at_ms: r.updated_at,
        })
    }
}

/// The columns of a contact, `blocked` included (`c` is the contacts table).
const CONTACT_COLUMNS: &str =
    "c.id, c.owner, c.owner_tenant, c.kind, c.peer, c.peer_tenant, c.display_name, c.company, \
     c.picture_url, c.room_id, c.saved, c.following, c.name, c.phone, c.email, \
     (SELECT COUNT(*) FROM blocks b WHERE b.owner = c.owner AND b.peer = c.peer AND b.until_ms IS NULL) AS blocked, \
     c.created_at, c.updated_at";

/// Which of a member's contacts a list shows.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    pub kind: Option<ContactKind>,
    /// Only saved contacts (Clients/Partners); otherwise every row of the kind.
    pub saved_only: bool,
    /// A case-insensitive substring of the display name or the member's own name for it.
    pub text: Option<&'a str>,
    /// Contacts with an id after this one.
    pub after: Option<&'a str>,
    pub limit: u32,
}

/// What a new or updated external contact shows.
#[derive(Debug, Clone)]
pub struct ExternalPeer<'a> {
    pub peer: &'a UserId,
    pub peer_tenant: &'a TenantId,
    pub display_name: &'a str,
    pub company: Option<&'a str>,
    pub room_id: &'a RoomId,
}

/// The member's own notes on a contact (`None` clears one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// One block period: `until_ms` is `None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPeriod {
    pub since_ms: i64,
    pub until_ms: Option<i64>,
}

/// The result of blocking or unblocking: the period concerned and whether this call changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockChange {
    pub period: BlockPeriod,
    pub changed: bool,
}

/// What LINE users see of a member beyond the workspace profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct LineProfile {
    pub about: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
}

/// Escape `%`, `_` and the escape character itself for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// The contacts database (its own PostgreSQL schema, or a SQLite file), migrated at connect.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite takes the write lock when a transaction begins (`BEGIN IMMEDIATE`), so that
    /// transactions that read then write do not fail on a concurrent writer.
    sqlite: bool,
}

impl Store {
    /// Open the database and apply the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let sqlite = settings.url.starts_with("sqlite");
        Ok(Self { pool: chat_db::connect(settings, &MIGRATOR).await?, sqlite })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(if self.sqlite { self.pool.begin_with("BEGIN IMMEDIATE").await? } else { self.pool.begin().await? })
    }

    /// The member's contact with this id (saved or not).
    pub async fn contact(&self, owner: &UserId, tenant: &TenantId, id: &str) -> Result<Option<Contact>, StoreError> {
        let record = sqlx::query_as::<_, ContactRecord>(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = $1 AND c.owner = $2 AND c.owner_tenant = $3"
        ))
        .bind(id)
        .bind(owner.as_str())
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        record.map(Contact::try_from).transpose()
    }

    /// The member's contact for this peer (saved or not).
    pub async fn contact_by_peer(
        &self,
        owner: &UserId,
        tenant: &TenantId,
        peer: &UserId,
    ) -> Result<Option<Contact>, StoreError> {
        let record = sqlx::query_as::<_, ContactRecord>(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.owner = $1 AND c.owner_tenant = $2 AND c.peer = $3"
        ))
        .bind(owner.as_str())
        .bind(tenant.as_str())
        .bind(peer.as_str())
        .fetch_optional(&self.pool)
        .await?;
        record.map(Contact::try_from).transpose()
    }

    /// A page of the member's contacts, by id.
    pub async fn contacts(
        &self,
        owner: &UserId,
        tenant: &TenantId,
        filter: &ListFilter<'_>,
    ) -> Result<Vec<Contact>, StoreError> {
        let mut sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.owner = $1 AND c.owner_tenant = $2");
        let mut next = 3;
        if filter.kind.is_some() {
            sql.push_str(&format!(" AND c.kind = ${next}"));
            next += 1;
        }
        if filter.saved_only {
            sql.push_str(" AND c.saved = 1");
        }
        if filter.text.is_some() {
            sql.push_str(&format!(
                " AND (LOWER(c.display_name) LIKE ${next} ESCAPE '\\' OR LOWER(COALESCE(c.name, '')) LIKE ${next} ESCAPE '\\')"
            ));
            next += 1;
        }
        if filter.after.is_some() {
            sql.push_str(&format!(" AND c.id > ${next}"));
            next += 1;
        }
        sql.push_str(&format!(" ORDER BY c.id LIMIT ${next}"));
        let mut query = sqlx::query_as::<_, ContactRecord>(&sql).bind(owner.as_str()).bind(tenant.as_str());
        if let Some(kind) = filter.kind {
            query = query.bind(kind.as_str());
        }
        if let Some(text) = filter.text {
            query = query.bind(like_pattern(text));
        }
        if let Some(after) = filter.after {
            query = query.bind(after.to_owned());
        }
        let records = query.bind(i64::from(filter.limit)).fetch_all(&self.pool).await?;
        records.into_iter().map(Contact::try_from).collect()
    }

    /// Save an external contact (create it, or save it again with what it shows now); the
    /// contact, and whether it was saved before.
    pub async fn save_external(
        &self,
        owner: &UserId,
        tenant: &TenantId,
        peer: &ExternalPeer<'_>,
        now: i64,
    ) -> Result<(Contact, bool), StoreError> {
        let before = self.contact_by_peer(owner, tenant, peer.peer).await?;
        sqlx::query(
            "INSERT INTO contacts (id, owner, owner_tenant, kind, peer, peer_tenant, display_name, company, room_id, saved, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) \
             ON CONFLICT (owner, peer) DO UPDATE SET peer_tenant = excluded.peer_tenant, display_name = excluded.display_name, \
             company = excluded.company, room_id = excluded.room_id, saved = 1, updated_at = excluded.updated_at",
        )
        .bind(chat_protocol::new_id())
        .bind(owner.as_str())
        .bind(tenant.as_str())
        .bind(ContactKind::External.as_str())
        .bind(peer.peer.as_str())
        .bind(peer.peer_tenant.as_str())
        .bind(peer.display_name)
        .bind(peer.company.map(str::to_owned))
        .bind(peer.room_id.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let contact = self
            .contact_by_peer(owner, tenant, peer.peer)
            .await?
            .ok_or_else(|| StoreError::Db(chat_db::DbError::Db(sqlx::Error::RowNotFound)))?;
        Ok((contact, before.is_some_and(|c| c.saved)))
    }

    /// Put the member's LINE friend `peer` in Clients/Partners; `None` if there is no such
    /// friend, else the contact and whether it was saved before.
    pub async fn save_line(
        &self,
        owner: &UserId,
        tenant: &TenantId,
        peer: &UserId,
        now: i64,
    ) -> Result<Option<(Contact, bool)>, StoreError> {
        let Some(before) = self.contact_by_peer(owner, tenant, peer).await? else { return Ok(None) };
        if before.kind != ContactKind::Line {
            return Ok(None);
        }
        if !before.saved {
            sqlx::query(
                "UPDATE contacts SET saved = 1, updated_at = $1 WHERE id = $2 AND owner = $3 AND owner_tenant = $4",
            )
            .bind(now)
            .bind(&before.id)
            .bind(owner.as_str())
            .bind(tenant.as_str())
            .execute(&self.pool)
            .await?;
        }
        let contact = self.contact(owner, tenant, &before.id).await?;
        Ok(contact.map(|c| (c, before.saved)))
    }

    /// Replace the member's notes on a saved contact; `None` if there is no such saved contact.
    pub async fn set_notes(
        &self,
        owner: &UserId,
        tenant: &TenantId,
        id: &str,
        notes: &Notes,
        now: i64,
    ) -> Result<Option<Contact>, StoreError> {
        let done = sqlx::query(
            "UPDATE contacts SET name = $1, phone = $2, email = $3, updated_at = $4 \
             WHERE id = $5 AND owner = $6 AND owner_tenant = $7 AND saved = 1",
        )
        .bind(notes.name.clone())
        .bind(notes.phone.clone())
        .bind(notes.email.clone())
        .bind(now)
        .bind(id)
        .bind(owner.as_str())
        .bind(tenant.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.contact(owner, tenant, id).await
    }

    /// Take a saved contact out of Clients/Partners and forget the member's notes (the room,
    /// the LINE friendship and the block state stay); false if there is no such saved contact.
    pub async fn unsave(&self, owner: &UserId, tenant: &TenantId, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE contacts SET saved = 0, name = NULL, phone = NULL, email = NULL, updated_at = $1 \
             WHERE id = $2 AND owner = $3 AND owner_tenant = $4 AND saved = 1",
        )
        .bind(now)
        .bind(id)
        .bind(owner.as_str())
        .bind(tenant.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The newest block period of `owner` on `peer`.
    pub async fn last_block(&self, owner: &UserId, peer: &UserId) -> Result<Option<BlockPeriod>, StoreError> {
        let row = sqlx::query_as::<_, (i64, Option<i64>)>(
            "SELECT since_ms, until_ms FROM blocks WHERE owner = $1 AND peer = $2 ORDER BY since_ms DESC LIMIT 1",
        )
        .bind(owner.as_str())
        .bind(peer.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(since_ms, until_ms)| BlockPeriod { since_ms, until_ms }))
    }

    /// Open a block period at `now` unless one is open (then that one, unchanged). A new
    /// period starts after the previous one (never at the same millisecond).
    pub async fn block(&self, owner: &UserId, peer: &UserId, now: i64) -> Result<BlockChange, StoreError> {
        let mut tx = self.begin().await?;
        let last = sqlx::query_as::<_, (i64, Option<i64>)>(
            "SELECT since_ms, until_ms FROM blocks WHERE owner = $1 AND peer = $2 ORDER BY since_ms DESC LIMIT 1",
        )
        .bind(owner.as_str())
        .bind(peer.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((since_ms, None)) = last {
            return Ok(BlockChange { period: BlockPeriod { since_ms, until_ms: None }, changed: false });
        }
        let since_ms = match last {
            Some((since, until)) => now.max(since + 1).max(until.unwrap_or(since)),
            None => now,
        };
        // A concurrent block of the same pair may have opened the period meanwhile (PostgreSQL
        // reads committed data: both saw none): then this one changes nothing and answers it.
        let inserted =
            sqlx::query("INSERT INTO blocks (owner, peer, since_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(owner.as_str())
                .bind(peer.as_str())
                .bind(since_ms)
                .execute(&mut *tx)
                .await?;
        if inserted.rows_affected() == 0 {
            // The pair's last period as it is now (open, or already closed again meanwhile).
            let (since_ms, until_ms) = sqlx::query_as::<_, (i64, Option<i64>)>(
                "SELECT since_ms, until_ms FROM blocks WHERE owner = $1 AND peer = $2 ORDER BY since_ms DESC LIMIT 1",
            )
            .bind(owner.as_str())
            .bind(peer.as_str())
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(BlockChange { period: BlockPeriod { since_ms, until_ms }, changed: false });
        }
        tx.commit().await?;
        Ok(BlockChange { period: BlockPeriod { since_ms, until_ms: None }, changed: true })
    }

    /// Close the open block period at `now` (never before it began); without an open period,
    /// the last closed one, unchanged; `None` if `owner` never blocked `peer`.
    pub async fn unblock(&self, owner: &UserId, peer: &UserId, now: i64) -> Result<Option<BlockChange>, StoreError> {
        let mut tx = self.begin().await?;
        let last = sqlx::query_as::<_, (i64, Option<i64>)>(
            "SELECT since_ms, until_ms FROM blocks WHERE owner = $1 AND peer = $2 ORDER BY since_ms DESC LIMIT 1",
        )
        .bind(owner.as_str())
        .bind(peer.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((since_ms, until_ms)) = last else { return Ok(None) };
        if let Some(until_ms) = until_ms {
            return Ok(Some(BlockChange {
                period: BlockPeriod { since_ms, until_ms: Some(until_ms) },
                changed: false,
            }));
        }
        let until_ms = now.max(since_ms);
        sqlx::query("UPDATE blocks SET until_ms = $1 WHERE owner = $2 AND peer = $3 AND since_ms = $4")
            .bind(until_ms)
            .bind(owner.as_str())
            .bind(peer.as_str())
            .bind(since_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(BlockChange { period: BlockPeriod { since_ms, until_ms: Some(until_ms) }, changed: true }))
    }

    /// A LINE user followed the member at `at_ms`: create or refresh the friend row, unless a
    /// newer follow or unfollow was applied already (false then).
    #[allow(clippy::too_many_arguments)]
    pub async fn line_follow(
        &self,
        owner: &UserId,
        tenant: &TenantId,
        line_user: &UserId,
        display_name: &str,
        picture_url: Option<&str>,
        at_ms: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO contacts (id, owner, owner_tenant, kind, peer, display_name, picture_url, saved, following, follow_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 1, $8, $9, $9) \
             ON CONFLICT (owner, peer) DO UPDATE SET display_name = excluded.display_name, picture_url = excluded.picture_url, \
             following = 1, follow_changed_at = excluded.follow_changed_at, updated_at = excluded.updated_at \
             WHERE contacts.follow_changed_at IS NULL OR contacts.follow_changed_at <= excluded.follow_changed_at",
        )
        .bind(chat_protocol::new_id())
        .bind(owner.as_str())
        .bind(tenant.as_str())
        .bind(ContactKind::Line.as_str())
        .bind(line_user.as_str())
        .bind(display_name)
        .bind(picture_url.map(str::to_owned))
        .bind(at_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A LINE user stopped following the member at `at_ms`: the friend row stays, not
    /// following, unless a newer follow or unfollow was applied already (false then). A row
    /// is made if none exists, so that an older follow arriving later is not applied.
    pub async fn line_unfollow(
        &self,
        owner: &UserId,
        tenant: &TenantId,
        line_user: &UserId,
        at_ms: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO contacts (id, owner, owner_tenant, kind, peer, display_name, saved, following, follow_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5, 0, 0, $6, $7, $7) \
             ON CONFLICT (owner, peer) DO UPDATE SET following = 0, follow_changed_at = excluded.follow_changed_at, \
             updated_at = excluded.updated_at \
             WHERE contacts.follow_changed_at IS NULL OR contacts.follow_changed_at <= excluded.follow_changed_at",
        )
        .bind(chat_protocol::new_id())
        .bind(owner.as_str())
        .bind(tenant.as_str())
        .bind(ContactKind::Line.as_str())
        .bind(line_user.as_str())
        .bind(at_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The member's 1:1 room with a LINE user: set it on the friend row (made, named by the
    /// LINE user's id and not following, if missing; `saved` is left alone).
    pub async fn set_line_room(
        &self,
        owner: &UserId,
        tenant: &TenantId,
        line_user: &UserId,
        room_id: &RoomId,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contacts (id, owner, owner_tenant, kind, peer, display_name, room_id, saved, following, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, 0, 0, $7, $7) \
             ON CONFLICT (owner, peer) DO UPDATE SET room_id = excluded.room_id, updated_at = excluded.updated_at",
        )
        .bind(chat_protocol::new_id())
        .bind(owner.as_str())
        .bind(tenant.as_str())
        .bind(ContactKind::Line.as_str())
        .bind(line_user.as_str())
        .bind(room_id.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The basic id of the member's LINE Official Account, if bound.
    pub async fn line_binding(&self, user: &UserId, tenant: &TenantId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>("SELECT basic_id FROM line_bindings WHERE user_id = $1 AND tenant = $2")
            .bind(user.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn bind_line(
        &self,
        user: &UserId,
        tenant: &TenantId,
        basic_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO line_bindings (user_id, tenant, basic_id, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET tenant = excluded.tenant, basic_id = excluded.basic_id, updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(tenant.as_str())
        .bind(basic_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn unbind_line(&self, user: &UserId, tenant: &TenantId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM line_bindings WHERE user_id = $1 AND tenant = $2")
            .bind(user.as_str())
            .bind(tenant.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The member's LINE profile (empty if never set).
    pub async fn line_profile(&self, user: &UserId, tenant: &TenantId) -> Result<LineProfile, StoreError> {
        let profile = sqlx::query_as::<_, LineProfile>(
            "SELECT about, phone, website FROM line_profiles WHERE user_id = $1 AND tenant = $2",
        )
        .bind(user.as_str())
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(profile.unwrap_or_default())
    }

    pub async fn set_line_profile(
        &self,
        user: &UserId,
        tenant: &TenantId,
        profile: &LineProfile,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO line_profiles (user_id, tenant, about, phone, website, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (user_id) DO UPDATE SET tenant = excluded.tenant, about = excluded.about, phone = excluded.phone, \
             website = excluded.website, updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(tenant.as_str())
        .bind(profile.about.clone())
        .bind(profile.phone.clone())
        .bind(profile.website.clone())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Saved contacts per kind, over every member (the `contacts_stored` gauge).
    pub async fn saved_counts(&self) -> Result<Vec<(ContactKind, i64)>, StoreError> {
        let rows = sqlx::query_as::<_, (String, i64)>(
            "SELECT kind, COUNT(*) AS n FROM contacts WHERE saved = 1 GROUP BY kind ORDER BY kind",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(kind, n)| Ok((ContactKind::try_from(kind)?, n))).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
