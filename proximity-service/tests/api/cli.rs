//! The import paths of the CLI, on the embedded store and on Postgres.

use std::time::Duration;

use proximity_service::cli::{import_file, seed_if_empty, Format};
use proximity_service::store;

use super::helpers::{base_settings, pg_settings, spawn_with};

const CITIES: &str = r#"{
 "658225": {"geonameid": 658225, "name": "Helsinki", "latitude": 60.16952, "longitude": 24.93545,
            "countrycode": "FI", "population": 558457},
 "2950159": {"geonameid": 2950159, "name": "Berlin", "latitude": 52.52437, "longitude": 13.41053,
             "countrycode": "DE", "population": 3426354}
}"#;

const CSV: &str = "name,lng,lat,category,id\n\
Kiosk,24.94,60.17,Shop,\n\
Bad,24.94,95,shop,\n\
Replaced below,13.4,52.5,cafe,777\n\
Kept id,13.4,52.5,cafe,777\n";

#[tokio::test]
async fn seeding_is_idempotent_and_csv_import_reports_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cities = dir.path().join("cities500.json");
    std::fs::write(&cities, CITIES).unwrap();
    let csv = dir.path().join("places.csv");
    std::fs::write(&csv, CSV).unwrap();

    let mut settings = base_settings();
    settings.database.data_dir = Some(dir.path().join("data"));
    let store = store::open(&settings.database).await.unwrap();
    seed_if_empty(store.as_ref(), &cities).await.unwrap();
    seed_if_empty(store.as_ref(), &cities).await.unwrap();
    assert_eq!(
        store.count().await.unwrap(),
        2,
        "seeding twice must not duplicate"
    );
    let helsinki = store
        .get(658225, None)
        .await
        .unwrap()
        .expect("geonameid is the id");
    assert_eq!(helsinki.category, "city");

    // A bad row fails the whole file, naming file, line and field; nothing is stored.
    let err = import_file(store.as_ref(), &csv, Format::Csv, false)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("places.csv") && msg.contains("line 3") && msg.contains("lat"),
        "{msg}"
    );
    assert_eq!(store.count().await.unwrap(), 2);
    // With --skip-invalid the good rows go in; explicit ids are kept.
    let n = import_file(store.as_ref(), &csv, Format::Csv, true)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(store.count().await.unwrap(), 4);
    assert_eq!(store.get(777, None).await.unwrap().unwrap().name, "Kept id");
    drop(store);

    // A server started on that store serves what was imported.
    let app = spawn_with(settings).await;
    let page = app.search("lat=60.17&lng=24.94&radius=2000").await;
    assert_eq!(page["total"], 2, "{page}");
    app.stop().await;
}

#[tokio::test]
async fn an_import_into_postgres_reaches_running_instances() {
    let db = harness::postgres().await.expect("postgres");
    let settings = pg_settings(&db.primary_url, std::slice::from_ref(&db.replica_url), None);
    let app = spawn_with(settings.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cities = dir.path().join("cities500.json");
    std::fs::write(&cities, CITIES).unwrap();

    // The importer talks to the primary only, so it reads back its own writes.
    let primary_only = pg_settings(&db.primary_url, &[], None);
    let store = store::open(&primary_only.database).await.unwrap();
    import_file(store.as_ref(), &cities, Format::Geonames, false)
        .await
        .unwrap();
    let seen = super::helpers::eventually(Duration::from_secs(2), || async {
        app.search("lat=52.52&lng=13.41&radius=1000").await["total"] == 1
    })
    .await;
    assert!(seen.is_some(), "the running instance never saw the import");
    // An id given twice in one file: the last row wins, as in the embedded store.
    let csv = dir.path().join("places.csv");
    std::fs::write(&csv, CSV).unwrap();
    let n = import_file(store.as_ref(), &csv, Format::Csv, true)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(store.get(777, None).await.unwrap().unwrap().name, "Kept id");
    // New rows created after an import with explicit ids get fresh ids.
    let created: serde_json::Value = app
        .create(&super::helpers::business("New", 1.0, 1.0))
        .await
        .json()
        .await
        .unwrap();
    assert!(created["id"].as_i64().unwrap() > 2950159);
    app.stop().await;
}
