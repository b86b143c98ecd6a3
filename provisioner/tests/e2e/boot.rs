//! Boot robustness on the emulator: the launch templates' root volume (gp3, encrypted,
//! `root_volume_gb`, on the AMI's root device), the groups' health checks (ELB for servers,
//! EC2 for agents), both part of the managed state, and the scaling activities `up` reads
//! when it gives up waiting for nodes.

use aws_sdk_ec2::types::Filter;
use provisioner::commands::{plan, up};
use provisioner::engine::Action;

use crate::{cloud, load_source, no_progress, parse, raw_conf};

/// Per launch template of environment `dev` (by its `provisioner:name` tag): the AMI's root
/// device name and the `$Latest` version's block device mappings as (device, size, type,
/// encrypted, delete on termination).
async fn root_volumes(
    guard: &harness::EmulatorGuard,
) -> Vec<(String, String, Vec<(String, i32, String, bool, bool)>)> {
    let ec2 = aws_sdk_ec2::Client::new(&raw_conf(guard).await);
    let lts = ec2
        .describe_launch_templates()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", provisioner::aws::TAG_ENV))
                .values("dev")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for lt in lts.launch_templates() {
        let name = lt
            .tags()
            .iter()
            .find(|t| t.key() == Some(provisioner::aws::TAG_NAME))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_string();
        let v = ec2
            .describe_launch_template_versions()
            .launch_template_id(lt.launch_template_id().unwrap())
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        let data = v.launch_template_versions()[0]
            .launch_template_data()
            .unwrap();
        let image = data.image_id().unwrap();
        let root_device = ec2
            .describe_images()
            .image_ids(image)
            .send()
            .await
            .unwrap()
            .images()[0]
            .root_device_name()
            .unwrap()
            .to_string();
        let mappings = data
            .block_device_mappings()
            .iter()
            .map(|m| {
                let e = m.ebs().unwrap();
                (
                    m.device_name().unwrap_or_default().to_string(),
                    e.volume_size().unwrap_or_default(),
                    e.volume_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    e.encrypted().unwrap_or_default(),
                    e.delete_on_termination().unwrap_or_default(),
                )
            })
            .collect();
        out.push((name, root_device, mappings));
    }
    out.sort();
    out
}

/// (group name, health check type, grace period) of every group.
async fn health_checks(guard: &harness::EmulatorGuard) -> Vec<(String, String, i32)> {
    let asg = aws_sdk_autoscaling::Client::new(&raw_conf(guard).await);
    let mut out: Vec<_> = asg
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()
        .iter()
        .map(|g| {
            (
                g.auto_scaling_group_name().unwrap_or_default().to_string(),
                g.health_check_type().unwrap_or_default().to_string(),
                g.health_check_grace_period().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_volumes_are_gp3_encrypted_and_follow_root_volume_gb() {
    let guard = harness::emulator().await.unwrap();
    let cloud = cloud(&guard, "dev").await;
    let source = load_source("dev.yaml");
    let env = parse(&source);
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    let lts = root_volumes(&guard).await;
    assert_eq!(lts.len(), env.node_pools.len(), "{lts:?}");
    for (pool, device, mappings) in &lts {
        assert_eq!(
            mappings,
            &vec![(device.clone(), 30, "gp3".to_string(), true, true)],
            "{pool}: one mapping, for the AMI's root device {device}"
        );
    }

    let second = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert_eq!(
        (second.created, second.updated),
        (0, 0),
        "{}",
        up::render_summary(&second)
    );

    let bigger = parse(&source.replacen(
        "    role: k3s-server\n",
        "    role: k3s-server\n    root_volume_gb: 64\n",
        1,
    ));
    let p = plan::plan(&cloud, &bigger).await.unwrap();
    let text = plan::render_text(&p);
    let changed: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .collect();
    assert_eq!(changed.len(), 1, "{text}");
    assert_eq!(changed[0].key.as_str(), "launch-template/servers", "{text}");
    assert_eq!(changed[0].action, Action::Update, "{text}");
    assert!(
        changed[0]
            .fields
            .iter()
            .map(|f| f.field.as_str())
            .eq(["root_volume_gb"]),
        "{text}"
    );
    assert!(text.contains("root_volume_gb"), "{text}");

    let r = up::converge(&cloud, &bigger, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let servers = root_volumes(&guard)
        .await
        .into_iter()
        .find(|(pool, _, _)| pool == "servers")
        .unwrap();
    assert_eq!(servers.2[0].1, 64, "{servers:?}");
    let p = plan::plan(&cloud, &bigger).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_are_judged_by_elb_health_checks_agents_by_ec2() {
    let guard = harness::emulator().await.unwrap();
    let cloud = cloud(&guard, "dev").await;
    let env = parse(&load_source("dev.yaml"));
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let checks = health_checks(&guard).await;
    assert_eq!(checks.len(), env.node_pools.len(), "{checks:?}");
    for (name, kind, grace) in &checks {
        if name.ends_with("servers") {
            assert_eq!((kind.as_str(), *grace), ("ELB", 600), "{name}");
        } else {
            assert_eq!((kind.as_str(), *grace), ("EC2", 300), "{name}");
        }
    }

    // Changed behind the provisioner's back: planned as an in-place update, and repaired.
    let servers = checks.iter().find(|c| c.0.ends_with("servers")).unwrap();
    aws_sdk_autoscaling::Client::new(&raw_conf(&guard).await)
        .update_auto_scaling_group()
        .auto_scaling_group_name(&servers.0)
        .health_check_type("EC2")
        .send()
        .await
        .unwrap();
    let p = plan::plan(&cloud, &env).await.unwrap();
    let text = plan::render_text(&p);
    let asg = p
        .changes
        .iter()
        .find(|c| c.key.as_str() == "asg/servers")
        .unwrap();
    assert_eq!(asg.action, Action::Update, "{text}");
    assert!(
        asg.fields.iter().any(|f| f.field == "health_check_type"),
        "{text}"
    );
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.updated, 1, "{}", up::render_summary(&r));
    assert_eq!(health_checks(&guard).await, checks);
}

/// What `up` says when no node shows a sign of life, read from the emulator: every group with
/// its in-service count against desired. (moto's DescribeScalingActivities always answers an
/// empty list, so the activities' wording is tested on a list in `commands::up`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_nodes_are_explained_per_group() {
    let guard = harness::emulator().await.unwrap();
    let cloud = cloud(&guard, "dev").await;
    let env = parse(&load_source("dev.yaml"));
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let groups = up::scaling_state(&cloud).await.unwrap();
    assert_eq!(groups.len(), env.node_pools.len(), "{groups:?}");
    let text = up::explain_missing_nodes(&groups);
    for p in &env.node_pools {
        let line = format!(
            "Auto Scaling group dev-{}: {n} of {n} desired instances in service\n  no failed or ongoing scaling activity: the instances run",
            p.name,
            n = p.desired
        );
        assert!(text.contains(&line), "no `{line}` in:\n{text}");
    }
}
