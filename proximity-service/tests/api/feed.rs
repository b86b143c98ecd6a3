//! Change-feed retention: an instance whose position was pruned away
//! reloads its index instead of silently missing writes.

use std::sync::Arc;
use std::time::Duration;

use proximity_service::domain::{NewBusiness, RawBusiness};
use proximity_service::store::{self, NewRecord, Repository};
use proximity_service::sync::{self, Polled};

use super::helpers::{base_settings, pg_settings};

fn record(name: &str) -> NewRecord {
    let raw = RawBusiness {
        name: name.into(),
        category: "cafe".into(),
        lat: 30.0,
        lng: 30.0,
        ..RawBusiness::default()
    };
    NewRecord::from_domain(&NewBusiness::parse(&raw).unwrap(), None)
}

async fn pruned_feed_forces_a_reload(store: Arc<dyn Repository>) {
    let index = sync::load(store.as_ref()).await.unwrap();
    // Followed normally.
    store.create(record("seen")).await.unwrap();
    assert_eq!(
        sync::poll_once(store.as_ref(), &index).await.unwrap(),
        Polled::Applied(1)
    );
    // Written while this instance "sleeps", then pruned away.
    store.create(record("missed")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(store.prune_changes(Duration::ZERO).await.unwrap() >= 2);
    assert!(store.pruned_through().await.unwrap() > index.last_seq());
    assert_eq!(
        sync::poll_once(store.as_ref(), &index).await.unwrap(),
        Polled::Reloaded
    );
    assert_eq!(index.len(), 2, "the reload brought in the missed write");
    // And it follows on from there.
    store.create(record("after")).await.unwrap();
    assert_eq!(
        sync::poll_once(store.as_ref(), &index).await.unwrap(),
        Polled::Applied(1)
    );
    assert_eq!(index.len(), 3);
    // Recent changes survive a prune with the default retention.
    assert_eq!(
        store
            .prune_changes(Duration::from_secs(86_400))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn pruned_feed_forces_a_reload_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = base_settings();
    settings.database.data_dir = Some(dir.path().to_path_buf());
    pruned_feed_forces_a_reload(store::open(&settings.database).await.unwrap()).await;
}

#[tokio::test]
async fn pruned_feed_forces_a_reload_on_postgres() {
    let db = harness::postgres().await.expect("postgres");
    let settings = pg_settings(&db.primary_url, &[], None);
    pruned_feed_forces_a_reload(store::open(&settings.database).await.unwrap()).await;
}

/// An import batch that names one id twice keeps the last row, on both
/// stores (Postgres refuses to upsert one row twice in a statement).
async fn a_repeated_id_in_one_batch_keeps_the_last_row(store: Arc<dyn Repository>) {
    use proximity_service::domain::BusinessId;
    let with_id = |name: &str| {
        NewRecord::from_domain(
            &NewBusiness::parse(&RawBusiness {
                name: name.into(),
                category: "cafe".into(),
                lat: 30.0,
                lng: 30.0,
                ..RawBusiness::default()
            })
            .unwrap(),
            Some(BusinessId::parse(7).unwrap()),
        )
    };
    store
        .bulk_upsert(vec![with_id("first"), record("other"), with_id("last")])
        .await
        .expect("a batch with a repeated id is imported");
    let got = store.get(7, None).await.unwrap().expect("id 7 stored");
    assert_eq!(got.name, "last");
    assert_eq!(store.count().await.unwrap(), 2);
}

#[tokio::test]
async fn a_repeated_id_in_one_batch_keeps_the_last_row_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = base_settings();
    settings.database.data_dir = Some(dir.path().to_path_buf());
    a_repeated_id_in_one_batch_keeps_the_last_row(store::open(&settings.database).await.unwrap())
        .await;
}

#[tokio::test]
async fn a_repeated_id_in_one_batch_keeps_the_last_row_on_postgres() {
    let db = harness::postgres().await.expect("postgres");
    let settings = pg_settings(&db.primary_url, &[], None);
    a_repeated_id_in_one_batch_keeps_the_last_row(store::open(&settings.database).await.unwrap())
        .await;
}
