//! `up` on the emulator: it says plainly that k3s cannot come up, and without
//! `--kubeconfig` writes the rendered bundle instead.

use provisioner::k8s::deploy::{
    deploy, DeployOptions, DeployOutcome, DeployTarget, PublishedKubeconfig, EMULATOR_NOTICE,
};

use crate::common::{dev_env, repo_root};

type Target<'a> = DeployTarget<'a, Unreachable>;

/// Never asked on the emulator path.
struct Unreachable;

impl PublishedKubeconfig for Unreachable {
    async fn fetch(&self, _: &str) -> anyhow::Result<Option<String>> {
        panic!("the emulator path must not look for a published kubeconfig")
    }
}

#[tokio::test]
async fn on_the_emulator_without_a_cluster_the_rendered_bundle_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rendered/dev");
    let opts = DeployOptions {
        manifests_out: Some(out.clone()),
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    let outcome = deploy(
        &dev_env(),
        Target::Emulator { kubeconfig: None },
        &opts,
        &mut progress,
    )
    .await
    .unwrap();
    assert_eq!(lines[0], EMULATOR_NOTICE);
    assert!(lines.last().unwrap().contains("REDACTED"), "{lines:?}");
    let DeployOutcome::Rendered {
        dir: written,
        files,
    } = outcome
    else {
        panic!("expected the rendered bundle");
    };
    assert_eq!(written, out);
    for f in [
        "manifests/30-proximity-service.yaml",
        "userdata/servers.sh",
        "iam/k3s-agent-policy.json",
    ] {
        assert!(files.contains(&out.join(f)), "{f} missing from {files:?}");
    }
}

#[tokio::test]
async fn a_template_off_the_pinned_k3s_line_still_renders_manifests_and_says_why_not_user_data() {
    // The template as committed, whatever its k3s version.
    let path = repo_root().join("vpc-templates/dev.yaml");
    let mut env = provisioner::template::load(&path).unwrap().env;
    env.cluster.k3s_version = "v1.31.4+k3s1".into();
    let dir = tempfile::tempdir().unwrap();
    let opts = DeployOptions {
        manifests_out: Some(dir.path().to_owned()),
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    deploy(
        &env,
        Target::Emulator { kubeconfig: None },
        &opts,
        &mut progress,
    )
    .await
    .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("warning: user-data of pool servers: cluster.k3s_version:")),
        "{lines:?}"
    );
    assert!(dir.path().join("manifests/00-namespace.yaml").is_file());
    assert!(!dir.path().join("userdata/servers.sh").exists());
}
