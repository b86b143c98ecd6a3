//! The CI examples users copy (examples/ci/) run as written: the GitHub Actions job's "Dry
//! run" step and the GitLab job's `script` (then `after_script`) are read from the YAML and
//! run with the runners' shell semantics (`bash -eo pipefail`: the first failing line fails
//! the job), against the emulator `localstack/start` starts, with this build's `provisioner`
//! first on PATH. The repository's own workflow runs exactly `.ci/run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `script` as a CI runner would, with `vars` set, in the repository root.
fn run_job(script: &str, vars: &[(String, String)], emulator_dir: &Path) -> Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_provisioner"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(root())
        .env("PATH", path)
        .env("PROVISIONER_EMULATOR_DIR", emulator_dir)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn vars_of(map: &Value) -> Vec<(String, String)> {
    map.as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap().to_string(),
                        v.as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a dry run must have printed: resources created, a plan with nothing to change, a
/// teardown that left nothing.
fn assert_dry_run(o: &Output) {
    let all = text(o);
    assert!(o.status.success(), "{all}");
    assert!(all.contains("created"), "{all}");
    assert!(
        all.contains("No changes") || all.contains("no changes"),
        "{all}"
    );
    assert!(all.contains("deleted"), "{all}");
}

#[test]
fn this_repositorys_workflow_runs_exactly_ci_run() {
    let w = yaml(".github/workflows/ci.yml");
    let steps = w["jobs"]["ci"]["steps"].as_sequence().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert_eq!(runs, [".ci/run"]);
}

#[test]
fn the_github_actions_dry_run_runs_as_written_and_fails_on_a_failing_line() {
    let w = yaml("examples/ci/github-actions.yml");
    let job = &w["jobs"]["dry-run"];
    let step = job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some("Dry run"))
        .expect("a Dry run step");
    let script = step["run"].as_str().unwrap();
    let vars = vars_of(&job["env"]);
    let dir = tempfile::tempdir().unwrap();
    let o = run_job(script, &vars, dir.path());
    assert_dry_run(&o);
    // The trap stopped the emulator it started.
    assert!(!dir.path().join("moto.pid").exists(), "{}", text(&o));

    // A failing line fails the job (here: a template that does not exist).
    let broken = vec![(
        "TEMPLATE".to_string(),
        "vpc-templates/missing.yaml".to_string(),
    )];
    let o = run_job(script, &broken, dir.path());
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("missing.yaml"), "{}", text(&o));
}

#[test]
fn the_gitlab_dry_run_runs_as_written() {
    let w = yaml("examples/ci/gitlab-ci.yml");
    let job = &w["provisioner-dry-run"];
    let lines = |key: &str| -> String {
        job[key]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let vars = vars_of(&job["variables"]);
    let dir = tempfile::tempdir().unwrap();
    let o = run_job(&lines("script"), &vars, dir.path());
    let after = run_job(&lines("after_script"), &vars, dir.path());
    assert_dry_run(&o);
    assert!(after.status.success(), "{}", text(&after));
    assert!(!dir.path().join("moto.pid").exists());
}
