//! A journal changed in the database directly is detected by `verify`: altered, removed,
//! reordered and truncated entries, on SQLite and on PostgreSQL.

mod common;

use common::{Harness, world};
use seing_engine::journal::{self, ChainReport};
use seing_engine::metadata::Metadata;
use seing_engine::model::ActionInput;

async fn verify(h: &Harness) -> ChainReport {
    journal::verify(h.engine.database(), None)
        .await
        .unwrap()
        .remove(0)
}

async fn exec(h: &Harness, sql: &'static str, a: i64) {
    sqlx::query(sql)
        .bind(a)
        .execute(h.engine.database().pool())
        .await
        .unwrap();
}

async fn tampering_is_detected(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let id = w
        .submitted(e, "visa-signature", "finances", "fin", Metadata::new())
        .await;
    e.visa(w.users["fin"], id, ActionInput::default())
        .await
        .unwrap();
    let intact = verify(h).await;
    assert!(intact.is_intact(), "{intact:?}");
    assert!(intact.entries > 20);

    // Altered content.
    let original: String = sqlx::query_scalar("SELECT detail FROM journal WHERE seq = 5")
        .fetch_one(e.database().pool())
        .await
        .unwrap();
    exec(
        h,
        "UPDATE journal SET detail = '{\"forged\":true}' WHERE seq = $1",
        5,
    )
    .await;
    let report = verify(h).await;
    let bad = report.broken.expect("altered entry detected");
    assert_eq!(bad.seq, 5);
    assert!(bad.reason.contains("altered"), "{bad:?}");
    sqlx::query("UPDATE journal SET detail = $1 WHERE seq = 5")
        .bind(original)
        .execute(e.database().pool())
        .await
        .unwrap();
    assert!(verify(h).await.is_intact());

    // Altered actor, even with a recomputed hash of its own: the next entry's link breaks.
    let row: (String, String) = sqlx::query_as("SELECT user_id, hash FROM journal WHERE seq = 7")
        .fetch_one(e.database().pool())
        .await
        .unwrap();
    sqlx::query("UPDATE journal SET user_id = $1 WHERE seq = 7")
        .bind(w.users["maire"].user.to_string())
        .execute(e.database().pool())
        .await
        .unwrap();
    let mut forged = journal::verify(e.database(), None).await.unwrap().remove(0);
    assert_eq!(forged.broken.take().unwrap().seq, 7);
    sqlx::query("UPDATE journal SET user_id = $1, hash = $2 WHERE seq = 7")
        .bind(row.0)
        .bind(row.1)
        .execute(e.database().pool())
        .await
        .unwrap();
    assert!(verify(h).await.is_intact());

    // Reordered: swap the positions of entries 3 and 4.
    exec(h, "UPDATE journal SET seq = -1 WHERE seq = $1", 3).await;
    exec(h, "UPDATE journal SET seq = 3 WHERE seq = $1", 4).await;
    exec(h, "UPDATE journal SET seq = 4 WHERE seq = $1", -1).await;
    let bad = verify(h).await.broken.expect("reordering detected");
    assert_eq!(bad.seq, 3);
    exec(h, "UPDATE journal SET seq = -1 WHERE seq = $1", 3).await;
    exec(h, "UPDATE journal SET seq = 3 WHERE seq = $1", 4).await;
    exec(h, "UPDATE journal SET seq = 4 WHERE seq = $1", -1).await;
    assert!(verify(h).await.is_intact());

    // Removed from the middle, then the last entry removed.
    let last = intact.entries;
    exec(h, "DELETE FROM journal WHERE seq = $1", last).await;
    let bad = verify(h).await.broken.expect("truncation detected");
    assert_eq!(bad.seq, last);
    exec(h, "DELETE FROM journal WHERE seq = $1", 10).await;
    let bad = verify(h).await.broken.expect("removal detected");
    assert_eq!(bad.seq, 10);
    assert!(bad.reason.contains("missing"), "{bad:?}");
}

both_backends! {
    tampering_is_detected => super::tampering_is_detected;
}
