//! Importing: comments brought in from another comment system, in large transactions, each
//! remembered by its source and its id there.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder, Row, Type,
    types::Json,
};
use uuid::Uuid;

use super::{Backend, SqlStore, is_unique_violation, record_first_replies};
use crate::{
    ids::{CommentId, SiteId},
    spam::{Label, Reason},
    store::{
        ImportedComment, ImportedPlace, Importing, StoreError, StoreResult, StoredComment,
        cache::Listings,
        rows::{BulkRow, CommentRow, bulk_statements, comment_columns, comments_from_rows},
    },
};

/// Source-id rows per `INSERT` (4 values each), well below either backend's limit.
const SOURCE_ROWS_PER_STATEMENT: usize = 1000;

#[async_trait]
impl<DB> Importing for SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> Option<Uuid>: Decode<'r, DB> + Type<DB>,
    for<'r> Option<i32>: Decode<'r, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f32>: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> Json<&'r Vec<Reason>>: Encode<'q, DB> + Type<DB>,
    for<'r> CommentRow: FromRow<'r, DB::Row>,
    &'static str: ColumnIndex<DB::Row>,
{
    async fn site_comments(
        &self,
        site: SiteId,
        after: Option<CommentId>,
        limit: u32,
    ) -> StoreResult<Vec<StoredComment>> {
        let mut query = QueryBuilder::<DB>::new(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE site_id = "
        ));
        query.push_bind(site.0);
        if let Some(after) = after {
            query.push(" AND id > ").push_bind(after.0);
        }
        query
            .push(" ORDER BY id LIMIT CAST(")
            .push_bind(i64::from(limit))
            .push(" AS BIGINT)");
        let rows = query
            .build_query_as::<CommentRow>()
            .fetch_all(&self.reader)
            .await?;
        comments_from_rows(rows)
    }

    async fn imported(
        &self,
        site: SiteId,
        source: &str,
        ids: &[String],
    ) -> StoreResult<HashMap<String, Option<ImportedPlace>>> {
        let mut found = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(found);
        }
        let query = sqlx::query(DB::IMPORTED).bind(site.0).bind(source);
        let rows = DB::bind_texts(query, ids).fetch_all(&self.reader).await?;
        for row in rows {
            let source_id: String = row.try_get("source_id")?;
            let id: Option<Uuid> = row.try_get("id")?;
            let place = match id {
                None => None,
                Some(id) => {
                    let root: Option<Uuid> = row.try_get("root_id")?;
                    let path: Option<String> = row.try_get("path")?;
                    // `integer` on PostgreSQL; SQLite's INTEGER decodes into it as well.
                    let depth: Option<i32> = row.try_get("depth")?;
                    let article: Option<String> = row.try_get("article")?;
                    let (Some(root), Some(path), Some(depth), Some(article)) =
                        (root, path, depth, article)
                    else {
                        return Err(StoreError::Corrupt(format!("comment {id} has no place")));
                    };
                    Some(ImportedPlace {
                        id: CommentId(id),
                        root: CommentId(root),
                        path,
                        depth: u32::try_from(depth).map_err(|_| {
                            StoreError::Corrupt(format!("comment {id} has depth {depth}"))
                        })?,
                        article,
                    })
                }
            };
            found.insert(source_id, place);
        }
        Ok(found)
    }

    async fn import_comments(
        &self,
        site: SiteId,
        source: &str,
        comments: &[ImportedComment],
        actor: &str,
        note: &str,
    ) -> StoreResult<()> {
        if comments.is_empty() {
            return Ok(());
        }
        let sites = [site];
        let _dropping = self.caches.dropping(Listings::Sites(&sites));
        let mut tx = self.writer.begin().await?;
        for chunk in comments.chunks(DB::SEED_ROWS_PER_STATEMENT) {
            let (mut insert, mut audit) = bulk_statements::<DB, _>(chunk, actor, note);
            insert.build().execute(&mut *tx).await?;
            audit.build().execute(&mut *tx).await?;
        }
        for chunk in comments.chunks(SOURCE_ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO imported_comments (site_id, source, source_id, comment_id) ",
            );
            insert.push_values(chunk, |mut row, c| {
                row.push_bind(site.0)
                    .push_bind(source)
                    .push_bind(c.source_id.as_str())
                    .push_bind(c.comment.id.0);
            });
            insert.build().execute(&mut *tx).await.map_err(|err| {
                if is_unique_violation(&err) {
                    StoreError::AlreadyExists("imported comment")
                } else {
                    err.into()
                }
            })?;
        }
        for c in comments {
            if let Some((label, weight)) = c.lesson {
                let (spam, ham) = match label {
                    Label::Spam => (weight, 0.0),
                    Label::Ham => (0.0, weight),
                };
                DB::teach(&mut *tx, site, &c.comment.features, spam, ham, false).await?;
            }
        }
        record_first_replies::<DB>(&mut tx, comments.iter().map(|c| &c.comment)).await?;
        // Running replicas drop what they cached of the site's listings.
        DB::listing_changed(&self.state, &mut tx, site, None).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl BulkRow for ImportedComment {
    fn comment(&self) -> &StoredComment {
        &self.comment
    }

    fn lesson(&self) -> Option<crate::store::Lesson> {
        self.lesson
    }
}
