//! A Postgres primary with a streaming replica (initdb + `pg_basebackup -R`), or the servers
//! named by `TEST_DATABASE_URL` / `TEST_DATABASE_REPLICA_URL`.

use crate::process::{free_port, run, running_as_root, signal, wait_for_port, Scratch};
use anyhow::{anyhow, bail, Context, Result};
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// One test's database: created on the primary, visible on the replica when this is returned.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub name: String,
    /// Read-write URL of this database on the primary.
    pub primary_url: String,
    /// Read-only URL of this database on the streaming replica.
    pub replica_url: String,
}

enum Shared {
    Local(PgCluster),
    External { server: String, replica: String },
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

/// A fresh database on the shared (per test binary) primary + replica.
pub async fn postgres() -> Result<TestDb> {
    let shared = SHARED
        .get_or_try_init(|| async {
            match std::env::var("TEST_DATABASE_URL") {
                Ok(server) => {
                    let replica =
                        std::env::var("TEST_DATABASE_REPLICA_URL").unwrap_or(server.clone());
                    Ok::<_, anyhow::Error>(Shared::External { server, replica })
                }
                Err(_) => Ok(Shared::Local(PgCluster::start().await?)),
            }
        })
        .await?;
    let name = crate::unique_name("t");
    match shared {
        Shared::Local(cluster) => cluster.create_database(&name).await,
        Shared::External { server, replica } => {
            create_database(
                &with_db(server, "postgres"),
                &with_db(replica, "postgres"),
                &name,
            )
            .await?;
            Ok(TestDb {
                primary_url: with_db(server, &name),
                replica_url: with_db(replica, &name),
                name,
            })
        }
    }
}

/// A dedicated primary + streaming replica that a test may stop and start.
#[derive(Debug)]
pub struct PgCluster {
    scratch: Scratch,
    bin: PathBuf,
    primary_port: u16,
    replica_port: u16,
    primary: Mutex<Option<Child>>,
    replica: Mutex<Option<Child>>,
}

impl PgCluster {
    /// Starts a primary, takes a base backup of it and starts that as a streaming replica.
    pub async fn start() -> Result<Self> {
        let bin = pg_bin_dir()?;
        let scratch = Scratch::new("pg-")?;
        let pg_root = scratch.path().join("pg");
        std::fs::create_dir(&pg_root)?;
        if running_as_root() {
            // Postgres will not run as root: hand its directory to the postgres user.
            run(cmd(&["chmod", "755"]).arg(scratch.path()))?;
            run(cmd(&["chown", "postgres:postgres"]).arg(&pg_root))?;
        }
        let cluster = Self {
            primary_port: free_port(),
            replica_port: free_port(),
            primary: Mutex::new(None),
            replica: Mutex::new(None),
            bin,
            scratch,
        };
        let primary_dir = cluster.primary_dir();
        let mut initdb = cluster.pg_command("initdb");
        initdb.arg("-D").arg(&primary_dir).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ]);
        run(&mut initdb).context("initdb")?;
        cluster.start_primary().await?;

        let mut backup = cluster.pg_command("pg_basebackup");
        backup
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-X",
                "stream",
                "-c",
                "fast",
                "-R",
            ])
            .arg("-p")
            .arg(cluster.primary_port.to_string())
            .arg("-D")
            .arg(cluster.replica_dir());
        run(&mut backup).context("pg_basebackup")?;
        cluster.start_replica().await?;
        Ok(cluster)
    }

    fn primary_dir(&self) -> PathBuf {
        self.scratch.path().join("pg/primary")
    }

    fn replica_dir(&self) -> PathBuf {
        self.scratch.path().join("pg/replica")
    }

    fn pg_command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if running_as_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn server_command(&self, dir: &Path, port: u16) -> Command {
        let mut c = self.pg_command("postgres");
        c.arg("-D").arg(dir).arg("-p").arg(port.to_string()).args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "wal_level=replica",
            "-c",
            "max_wal_senders=10",
            "-c",
            "max_connections=300",
            "-c",
            "hot_standby=on",
        ]);
        c
    }

    /// URL of `db` on the primary.
    pub fn primary_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.primary_port)
    }

    /// URL of `db` on the replica.
    pub fn replica_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.replica_port)
    }

    /// Creates a database on the primary and waits until the replica has it.
    pub async fn create_database(&self, name: &str) -> Result<TestDb> {
        create_database(
            &self.primary_url("postgres"),
            &self.replica_url("postgres"),
            name,
        )
        .await?;
        Ok(TestDb {
            name: name.to_owned(),
            primary_url: self.primary_url(name),
            replica_url: self.replica_url(name),
        })
    }

    /// Starts (or restarts) the primary on its port and waits until it takes queries.
    pub async fn start_primary(&self) -> Result<()> {
        let child = self.scratch.spawn(
            self.server_command(&self.primary_dir(), self.primary_port),
            "primary.log",
        )?;
        *self.primary.lock().unwrap() = Some(child);
        wait_sql(&self.primary_url("postgres"))
            .await
            .with_context(|| format!("primary log:\n{}", self.scratch.log_tail("primary.log")))
    }

    /// Starts (or restarts) the replica and waits until it takes queries.
    pub async fn start_replica(&self) -> Result<()> {
        let child = self.scratch.spawn(
            self.server_command(&self.replica_dir(), self.replica_port),
            "replica.log",
        )?;
        *self.replica.lock().unwrap() = Some(child);
        wait_sql(&self.replica_url("postgres"))
            .await
            .with_context(|| format!("replica log:\n{}", self.scratch.log_tail("replica.log")))
    }

    /// Stops the primary (fast shutdown) and waits for it to exit.
    pub async fn stop_primary(&self) -> Result<()> {
        let child = self.primary.lock().unwrap().take();
        stop(child).await
    }

    /// Stops the replica (fast shutdown) and waits for it to exit.
    pub async fn stop_replica(&self) -> Result<()> {
        let child = self.replica.lock().unwrap().take();
        stop(child).await
    }
}

async fn stop(child: Option<Child>) -> Result<()> {
    let Some(mut child) = child else {
        bail!("not running")
    };
    signal(child.id(), "INT");
    tokio::task::spawn_blocking(move || child.wait())
        .await?
        .context("waiting for postgres to exit")?;
    Ok(())
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    c
}

/// The newest installed Postgres server binaries (`/usr/lib/postgresql/<major>/bin`).
fn pg_bin_dir() -> Result<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("Postgres is not installed (/usr/lib/postgresql): run scripts/setup")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|(_, d)| d)
        .ok_or_else(|| anyhow!("no Postgres server binaries under /usr/lib/postgresql"))
}

fn with_db(url: &str, db: &str) -> String {
    // postgres://user@host:port[/db][?params]
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

async fn create_database(primary_admin: &str, replica_admin: &str, name: &str) -> Result<()> {
    let mut conn = PgConnection::connect(primary_admin)
        .await
        .context("connecting to the primary")?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    conn.close().await.ok();
    // The replica replays the catalog change; wait for it so tests can read there at once.
    let start = Instant::now();
    let mut replica = PgConnection::connect(replica_admin)
        .await
        .context("connecting to the replica")?;
    loop {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut replica)
            .await?;
        if found.is_some() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("database {name} did not reach the replica within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_sql(url: &str) -> Result<()> {
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("no port in {url}"))?;
    wait_for_port(port, Duration::from_secs(30)).await?;
    let start = Instant::now();
    loop {
        match PgConnection::connect(url).await {
            Ok(conn) => {
                conn.close().await.ok();
                return Ok(());
            }
            Err(e) if start.elapsed() > Duration::from_secs(30) => {
                return Err(e).context("postgres did not accept queries within 30 s")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_db;

    #[test]
    fn with_db_replaces_the_database_and_keeps_parameters() {
        assert_eq!(
            with_db("postgres://u:p@h:5432/x?sslmode=disable", "y"),
            "postgres://u:p@h:5432/y?sslmode=disable"
        );
        assert_eq!(with_db("postgres://u@h:1", "y"), "postgres://u@h:1/y");
    }
}
