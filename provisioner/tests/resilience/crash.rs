use std::time::Duration;

use anyhow::Context;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{assert_nothing_left, command, provisioner, Dev, LIMIT};

/// Seed of the kill schedule; override with `CRASH_SEED` to replay a failure.
fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026)
}

/// Where in a run to kill it.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// After this long, before any progress may have been printed.
    Early(Duration),
    /// When the n-th progress line appears (`up`: `[ k/N] …` per finished
    /// task; `down`: `deleted …` per deleted resource).
    AfterTask(usize),
}

/// Starts `args` and SIGKILLs it at `point` unless it finished first.
/// Returns true if it was killed while running.
async fn run_and_kill(endpoint: &str, args: &[&str], point: KillPoint) -> anyhow::Result<bool> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut child = command(endpoint, args)
        .spawn()
        .with_context(|| format!("spawning {} {args:?}", crate::support::bin()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Progress lines are counted as they arrive; `reached` fires at the n-th.
    let (reached_tx, mut reached) = tokio::sync::watch::channel(false);
    let wanted = match point {
        KillPoint::AfterTask(n) => n,
        KillPoint::Early(_) => usize::MAX,
    };
    let out_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut all = Vec::new();
        let mut progress = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            let l = line.trim_start();
            if l.starts_with('[') || l.starts_with("deleted ") {
                progress += 1;
                if progress == wanted {
                    let _ = reached_tx.send(true);
                }
            }
            all.push(line);
        }
        all.join("\n")
    });
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let trigger = async {
        match point {
            KillPoint::Early(d) => tokio::time::sleep(d).await,
            KillPoint::AfterTask(_) => {
                if reached.wait_for(|r| *r).await.is_err() {
                    // Output ended first: let `wait` report the exit.
                    std::future::pending::<()>().await
                }
            }
        }
    };
    let killed = tokio::select! {
        status = child.wait() => {
            let status = status?;
            if !status.success() {
                let out = out_task.await.unwrap_or_default();
                let err = err_task.await.unwrap_or_default();
                anyhow::bail!(
                    "{args:?} failed on its own: {status}\n--- stdout\n{out}\n--- stderr\n{err}"
                );
            }
            false
        }
        _ = trigger => {
            child.start_kill()?;
            child.wait().await?;
            true
        }
    };
    Ok(killed)
}

/// A random kill point: mostly after a random task, sometimes very early.
fn kill_point(rng: &mut StdRng, tasks: usize) -> KillPoint {
    if rng.random_bool(0.15) {
        KillPoint::Early(Duration::from_millis(rng.random_range(0..=400)))
    } else {
        KillPoint::AfterTask(rng.random_range(1..tasks.max(2)))
    }
}

#[tokio::test]
async fn up_killed_at_random_points_converges_without_duplicates() -> anyhow::Result<()> {
    let fixture = Dev::start().await?;
    let (emu, aws, dev) = (&fixture.emu, &fixture.aws, fixture.template());
    let up_args = fixture.up_args();
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);

    // How long a whole `up` takes here: the kills are spread over it.
    let full = provisioner(&emu.endpoint, &up_args, LIMIT).await?;
    full.expect_code(0, "calibration up");
    provisioner(&emu.endpoint, &["down", "-f", dev, "--yes"], LIMIT)
        .await?
        .expect_code(0, "calibration down");
    assert_nothing_left(aws, "dev").await?;
    // One progress line per task.
    let tasks = full
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('['))
        .count();
    assert!(tasks > 20, "progress lines of up:\n{}", full.stdout);

    const ROUNDS: usize = 4;
    const KILLS_PER_ROUND: usize = 6;
    let mut killed = 0;
    let mut log = Vec::new();
    for round in 0..ROUNDS {
        for trial in 0..KILLS_PER_ROUND {
            let point = kill_point(&mut rng, tasks);
            let was_killed = run_and_kill(&emu.endpoint, &up_args, point).await?;
            killed += usize::from(was_killed);
            log.push(format!(
                "round {round} trial {trial}: kill {point:?} -> {}",
                if was_killed { "killed" } else { "had finished" }
            ));
            let inv = aws.inventory("dev").await?;
            assert!(
                inv.duplicates().is_empty(),
                "seed {seed:#x}, {}: duplicates {:?}\n{}",
                log.last().unwrap(),
                inv.duplicates(),
                log.join("\n")
            );
        }
        // The next `up` converges; then nothing is left to do.
        provisioner(&emu.endpoint, &up_args, LIMIT)
            .await?
            .expect_code(0, &format!("seed {seed:#x}: up after round {round}"));
        provisioner(&emu.endpoint, &["plan", "-f", dev], LIMIT)
            .await?
            .expect_code(0, &format!("seed {seed:#x}: plan after round {round}"));
        let inv = aws.inventory("dev").await?;
        assert!(
            inv.duplicates().is_empty(),
            "seed {seed:#x}: {:?}",
            inv.duplicates()
        );
        assert_eq!(inv.count("vpc"), 1, "{}", inv.describe());
        assert_eq!(inv.count("asg"), 3, "{}", inv.describe());

        // Half the rounds also kill a `down` half-way, then finish it.
        if round % 2 == 1 {
            let point = kill_point(&mut rng, 10);
            run_and_kill(&emu.endpoint, &["down", "-f", dev, "--yes"], point).await?;
        }
        provisioner(&emu.endpoint, &["down", "-f", dev, "--yes"], LIMIT)
            .await?
            .expect_code(0, &format!("seed {seed:#x}: down after round {round}"));
        assert_nothing_left(aws, "dev").await?;
    }
    println!("seed {seed:#x}, {killed} runs killed:\n{}", log.join("\n"));
    assert!(
        killed >= ROUNDS * KILLS_PER_ROUND / 2,
        "seed {seed:#x}: only {killed} of {} runs were killed mid-way:\n{}",
        ROUNDS * KILLS_PER_ROUND,
        log.join("\n")
    );
    Ok(())
}
