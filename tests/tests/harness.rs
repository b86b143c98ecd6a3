//! The harness's own checks: each real component it starts does what the other suites rely on.

mod twin;

use anyhow::Result;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_write_on_the_primary_is_read_back_from_the_replica() -> Result<()> {
    let db = harness::postgres().await?;
    let primary = sqlx::PgPool::connect(&db.primary_url).await?;
    sqlx::query("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        .execute(&primary)
        .await?;
    sqlx::query("INSERT INTO notes VALUES (1, 'written on the primary')")
        .execute(&primary)
        .await?;

    let replica = sqlx::PgPool::connect(&db.replica_url).await?;
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&replica)
        .await?;
    assert!(in_recovery, "the replica URL must point at a standby");
    let start = Instant::now();
    let body: String = loop {
        let row: Option<String> = sqlx::query_scalar("SELECT body FROM notes WHERE id = 1")
            .fetch_optional(&replica)
            .await
            .unwrap_or(None);
        if let Some(body) = row {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never replicated"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body, "written on the primary");

    let refused = sqlx::query("INSERT INTO notes VALUES (2, 'x')")
        .execute(&replica)
        .await;
    assert!(refused.is_err(), "a standby must refuse writes");
    Ok(())
}

#[tokio::test]
async fn each_test_gets_its_own_database() -> Result<()> {
    let a = harness::postgres().await?;
    let b = harness::postgres().await?;
    assert_ne!(a.name, b.name);
    let pa = sqlx::PgPool::connect(&a.primary_url).await?;
    sqlx::query("CREATE TABLE only_in_a (x int)")
        .execute(&pa)
        .await?;
    let pb = sqlx::PgPool::connect(&b.primary_url).await?;
    let seen: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_a')::text")
        .fetch_one(&pb)
        .await?;
    assert_eq!(seen, None);
    Ok(())
}

#[tokio::test]
async fn a_dedicated_cluster_survives_a_replica_restart() -> Result<()> {
    let cluster = harness::PgCluster::start().await?;
    let db = cluster.create_database("app").await?;
    cluster.stop_replica().await?;
    assert!(sqlx::PgPool::connect(&db.replica_url).await.is_err());
    let primary = sqlx::PgPool::connect(&db.primary_url).await?;
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&primary)
        .await?;
    sqlx::query("INSERT INTO t VALUES (7)")
        .execute(&primary)
        .await?;
    cluster.start_replica().await?;
    let replica = sqlx::PgPool::connect(&db.replica_url).await?;
    let start = Instant::now();
    loop {
        let x: Option<i32> = sqlx::query_scalar("SELECT x FROM t")
            .fetch_optional(&replica)
            .await
            .unwrap_or(None);
        if x == Some(7) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "replica did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn redis_round_trip_with_a_private_prefix() -> Result<()> {
    use redis::AsyncCommands;
    let r = harness::redis().await?;
    let other = harness::redis().await?;
    assert_ne!(r.prefix, other.prefix);
    let client = redis::Client::open(r.url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let key = format!("{}greeting", r.prefix);
    let _: () = conn.set_ex(&key, "hello", 60).await?;
    let got: String = conn.get(&key).await?;
    assert_eq!(got, "hello");
    let theirs: Option<String> = conn.get(format!("{}greeting", other.prefix)).await?;
    assert_eq!(theirs, None);
    Ok(())
}

#[tokio::test]
async fn a_dedicated_redis_can_be_stopped_and_restarted() -> Result<()> {
    let server = harness::RedisServer::start().await?;
    let client = redis::Client::open(server.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    assert_eq!(pong, "PONG");
    server.stop().await?;
    assert!(client.get_multiplexed_async_connection().await.is_err());
    server.restart().await?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    assert_eq!(pong, "PONG");
    Ok(())
}

async fn ec2_client(endpoint: &str) -> aws_sdk_ec2::Client {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing", "testing", None, None, "harness",
        ))
        .load()
        .await;
    aws_sdk_ec2::Client::new(&conf)
}

#[tokio::test]
async fn the_emulator_creates_and_deletes_a_vpc_and_resets_between_tests() -> Result<()> {
    let vpc_id;
    {
        let emu = harness::emulator().await?;
        let ec2 = ec2_client(&emu.endpoint).await;
        let created = ec2.create_vpc().cidr_block("10.42.0.0/16").send().await?;
        vpc_id = created.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
        let listed = ec2.describe_vpcs().vpc_ids(&vpc_id).send().await?;
        assert_eq!(listed.vpcs().len(), 1);
        ec2.delete_vpc().vpc_id(&vpc_id).send().await?;
        let gone = ec2.describe_vpcs().vpc_ids(&vpc_id).send().await;
        assert!(gone.is_err(), "the deleted VPC is still described");
        // Left behind on purpose: the next guard must not see it.
        ec2.create_vpc().cidr_block("10.43.0.0/16").send().await?;
    }
    let emu = harness::emulator().await?;
    let ec2 = ec2_client(&emu.endpoint).await;
    let vpcs = ec2.describe_vpcs().send().await?;
    let non_default: Vec<_> = vpcs
        .vpcs()
        .iter()
        .filter(|v| v.is_default() != Some(true))
        .collect();
    assert!(non_default.is_empty(), "reset left {non_default:?}");
    Ok(())
}

#[path = "harness/kube_api.rs"]
mod kube_api;
