//! The STAND-IN controllers (nothing schedules or runs containers here): Pods, claims and
//! status for Deployments, StatefulSets and Jobs, as [`RolloutBehaviour`] says.

use super::*;

impl State {
    pub(super) fn reconcile_all(&mut self) {
        let keys: Vec<Key> = self
            .objects
            .keys()
            .filter(|k| matches!(k.def().kind, "Deployment" | "StatefulSet" | "Job"))
            .cloned()
            .collect();
        for k in keys {
            self.reconcile(&k);
        }
    }

    /// Names of the Ready Nodes, sorted.
    pub(super) fn ready_nodes(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|(k, _)| k.plural == "nodes" && k.group.is_empty())
            .filter(|(_, n)| {
                n.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
            .map(|(k, _)| k.name.clone())
            .collect()
    }

    /// The stand-in controller of a Deployment, StatefulSet or Job: its Pods (and a
    /// StatefulSet's claims) and its status, as [`RolloutBehaviour`] says.
    pub(super) fn reconcile(&mut self, key: &Key) {
        let d = key.def();
        if !matches!(d.kind, "Deployment" | "StatefulSet" | "Job") {
            return;
        }
        let Some(obj) = self.objects.get(key).cloned() else {
            return;
        };
        if at(&obj, "metadata.deletionTimestamp").is_some() {
            return;
        }
        let ns = key.namespace.clone().unwrap_or_default();
        let name = key.name.clone();
        let uid = str_at(&obj, "metadata.uid").unwrap_or_default().to_owned();
        let generation = obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let template = obj.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = short_hash(&template);
        let want = match d.kind {
            "Job" => 1,
            _ => obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1),
        };
        let nodes = self.ready_nodes();
        let reads = self.reads.get(key).copied().unwrap_or(0);
        let progress = match self.behaviour(d.kind, &name) {
            _ if nodes.is_empty() => Progress::Unschedulable("0/0 nodes are available: no Ready node is registered with the mock API server"),
            RolloutBehaviour::Ready | RolloutBehaviour::Forbidden | RolloutBehaviour::NotFound => Progress::Ready,
            RolloutBehaviour::ReadyAfterReads(n) if reads >= n => Progress::Ready,
            RolloutBehaviour::ReadyAfterReads(_) => Progress::Starting,
            RolloutBehaviour::NeverReady => Progress::Unschedulable(
                "0/3 nodes are available: the stand-in scheduler was told never to place this pod (MockKubeApi::set_rollout_behaviour)",
            ),
            RolloutBehaviour::Fail => Progress::Failing,
        };

        // Pods.
        let owner = json!([{
            "apiVersion": d.api_version(), "kind": d.kind, "name": name, "uid": uid,
            "controller": true, "blockOwnerDeletion": true,
        }]);
        let labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        let pod_names: Vec<(String, Value)> = (0..want.max(0))
            .map(|i| {
                let mut l = labels.clone();
                let pod = match d.kind {
                    "Deployment" => {
                        l["pod-template-hash"] = json!(hash);
                        format!(
                            "{name}-{hash}-{:05x}",
                            fnv1a(format!("{name}/{i}").as_bytes()) & 0xf_ffff
                        )
                    }
                    "StatefulSet" => {
                        let pod = format!("{name}-{i}");
                        l["controller-revision-hash"] = json!(format!("{name}-{hash}"));
                        l["statefulset.kubernetes.io/pod-name"] = json!(pod);
                        l["apps.kubernetes.io/pod-index"] = json!(i.to_string());
                        pod
                    }
                    _ => {
                        l["job-name"] = json!(name);
                        l["batch.kubernetes.io/job-name"] = json!(name);
                        l["controller-uid"] = json!(uid);
                        l["batch.kubernetes.io/controller-uid"] = json!(uid);
                        format!("{name}-{}", &hash[..5])
                    }
                };
                (pod, l)
            })
            .collect();
        let pod_def = def_of_kind("Pod").expect("Pod is served");
        let stale: Vec<Key> = self
            .objects
            .iter()
            .filter(|(k, _)| k.plural == "pods" && k.namespace.as_deref() == Some(ns.as_str()))
            .filter(|(k, v)| {
                v.pointer("/metadata/ownerReferences/0/uid")
                    .and_then(Value::as_str)
                    == Some(uid.as_str())
                    && !pod_names.iter().any(|(n, _)| *n == k.name)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.remove(&k, "controller");
        }
        let mut ready = 0;
        for (i, (pod, pod_labels)) in pod_names.iter().enumerate() {
            let pkey = Key::new(pod_def, Some(&ns), pod);
            let node = self
                .objects
                .get(&pkey)
                .and_then(|p| str_at(p, "spec.nodeName").map(str::to_owned))
                .filter(|n| nodes.contains(n))
                .or_else(|| {
                    let spread = fnv1a(name.as_bytes()) as usize;
                    (!nodes.is_empty()).then(|| nodes[(i + spread) % nodes.len()].clone())
                });
            let mut spec = template.pointer("/spec").cloned().unwrap_or(json!({}));
            if let Some(n) = &node {
                spec["nodeName"] = json!(n);
            }
            let (pod_status, event) = pod_status(d.kind, &spec, progress);
            if pod_status["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            }) || (d.kind == "Job" && pod_status["phase"] == "Succeeded")
            {
                ready += 1;
            }
            let pod_obj = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod, "namespace": ns, "labels": pod_labels, "ownerReferences": owner,
                    "annotations": {"twin.provisioner/stand-in": "created by the MOCK Kubernetes API server's stand-in controller"},
                },
                "spec": spec,
                "status": pod_status,
            });
            self.put_owned(&pkey, pod_obj);
            if let Some((reason, message)) = event {
                let ev_def = def_of_kind("Event").expect("Event is served");
                let ev_name = format!("{pod}.{}", &short_hash(&json!(reason))[..8]);
                let ekey = Key::new(ev_def, Some(&ns), &ev_name);
                let pod_uid = self
                    .objects
                    .get(&pkey)
                    .and_then(|p| str_at(p, "metadata.uid").map(str::to_owned))
                    .unwrap_or_default();
                if !self.objects.contains_key(&ekey) {
                    let now = now_rfc3339();
                    self.put_owned(
                        &ekey,
                        json!({
                            "apiVersion": "v1", "kind": "Event",
                            "metadata": {"name": ev_name, "namespace": ns},
                            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": ns, "uid": pod_uid},
                            "reason": reason, "message": message, "type": "Warning", "count": 1,
                            "firstTimestamp": now, "lastTimestamp": now,
                            "source": {"component": "mock-api-stand-in-controller"},
                        }),
                    );
                }
            }
        }

        // A StatefulSet's claims, kept when it goes (the default retention policy).
        if d.kind == "StatefulSet" {
            let pvc_def = def_of_kind("PersistentVolumeClaim").expect("PVC is served");
            let templates = obj
                .pointer("/spec/volumeClaimTemplates")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let selector = obj
                .pointer("/spec/selector/matchLabels")
                .cloned()
                .unwrap_or(json!({}));
            for t in &templates {
                let claim = str_at(t, "metadata.name").unwrap_or("data");
                for i in 0..want.max(0) {
                    let pvc = format!("{claim}-{name}-{i}");
                    let pkey = Key::new(pvc_def, Some(&ns), &pvc);
                    if self.objects.contains_key(&pkey) {
                        continue;
                    }
                    let spec = t.get("spec").cloned().unwrap_or(json!({}));
                    let capacity = spec
                        .pointer("/resources/requests")
                        .cloned()
                        .unwrap_or(json!({}));
                    let modes = spec.get("accessModes").cloned().unwrap_or(json!([]));
                    self.put_owned(
                        &pkey,
                        json!({
                            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": pvc, "namespace": ns, "labels": selector},
                            "spec": spec,
                            "status": {"phase": "Bound", "accessModes": modes, "capacity": capacity},
                        }),
                    );
                }
            }
        }

        let old_status = obj.get("status").cloned().unwrap_or(json!({}));
        let status = match d.kind {
            "Deployment" => {
                deployment_status(&old_status, &name, &hash, generation, want, ready, progress)
            }
            "StatefulSet" => statefulset_status(&name, &hash, generation, want, ready),
            _ => job_status(&old_status, &obj, ready, progress),
        };
        self.write_status(key, status);
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Progress {
    Ready,
    Starting,
    Unschedulable(&'static str),
    Failing,
}

/// A pod's status, and the warning event (reason, message) it carries, if any.
pub(super) fn pod_status(
    kind: &str,
    spec: &Value,
    progress: Progress,
) -> (Value, Option<(&'static str, String)>) {
    let now = now_rfc3339();
    let containers: Vec<(String, String)> = spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["image"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let cond = |t: &str, s: bool, reason: Option<&str>| {
        let mut c = json!({"type": t, "status": if s { "True" } else { "False" }, "lastTransitionTime": now});
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        c
    };
    let statuses = |state: Value, ready: bool, restarts: i64| -> Value {
        containers
            .iter()
            .map(|(n, i)| {
                json!({"name": n, "image": i, "imageID": "", "ready": ready, "started": ready,
                       "restartCount": restarts, "state": state})
            })
            .collect()
    };
    match progress {
        Progress::Ready if kind == "Job" => (
            json!({
                "phase": "Succeeded",
                "conditions": [cond("PodScheduled", true, None), cond("Initialized", true, None),
                               cond("ContainersReady", false, Some("PodCompleted")), cond("Ready", false, Some("PodCompleted"))],
                "containerStatuses": statuses(json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0),
            }),
            None,
        ),
        Progress::Ready => (
            json!({
                "phase": "Running",
                "conditions": [cond("PodScheduled", true, None), cond("Initialized", true, None),
                               cond("ContainersReady", true, None), cond("Ready", true, None)],
                "containerStatuses": statuses(json!({"running": {"startedAt": now}}), true, 0),
            }),
            None,
        ),
        Progress::Starting => (
            json!({
                "phase": "Pending",
                "conditions": [cond("PodScheduled", true, None), cond("Initialized", true, None),
                               cond("ContainersReady", false, Some("ContainersNotReady")), cond("Ready", false, Some("ContainersNotReady"))],
                "containerStatuses": statuses(json!({"waiting": {"reason": "ContainerCreating"}}), false, 0),
            }),
            None,
        ),
        Progress::Unschedulable(why) => (
            json!({
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                "message": why, "lastTransitionTime": now}],
            }),
            Some(("FailedScheduling", why.to_owned())),
        ),
        Progress::Failing if kind == "Job" => (
            json!({
                "phase": "Failed",
                "conditions": [cond("PodScheduled", true, None), cond("Ready", false, Some("PodFailed"))],
                "containerStatuses": statuses(json!({"terminated": {"exitCode": 1, "reason": "Error"}}), false, 0),
            }),
            Some((
                "BackOff",
                "Back-off restarting failed container (stand-in controller told to fail)"
                    .to_owned(),
            )),
        ),
        Progress::Failing => (
            json!({
                "phase": "Running",
                "conditions": [cond("PodScheduled", true, None), cond("Ready", false, Some("ContainersNotReady"))],
                "containerStatuses": statuses(json!({"waiting": {"reason": "CrashLoopBackOff"}}), false, 5),
            }),
            Some((
                "BackOff",
                "Back-off restarting failed container (stand-in controller told to fail)"
                    .to_owned(),
            )),
        ),
    }
}

/// A condition, keeping its transition time while its status stays the same.
pub(super) fn condition(
    old_status: &Value,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
) -> Value {
    let status = if status { "True" } else { "False" };
    let previous = old_status
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    let (since, updated) = match previous {
        Some(p) if p["status"] == status && p["reason"] == reason => (
            p["lastTransitionTime"].clone(),
            p.get("lastUpdateTime")
                .cloned()
                .unwrap_or(p["lastTransitionTime"].clone()),
        ),
        _ => (json!(now_rfc3339()), json!(now_rfc3339())),
    };
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": since, "lastUpdateTime": updated})
}

pub(super) fn deployment_status(
    old: &Value,
    name: &str,
    hash: &str,
    generation: i64,
    want: i64,
    ready: i64,
    progress: Progress,
) -> Value {
    let rs = format!("{name}-{hash}");
    let progressing = match progress {
        Progress::Failing => condition(
            old,
            "Progressing",
            false,
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{rs}\" has timed out progressing."),
        ),
        _ if ready >= want => condition(
            old,
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs}\" has successfully progressed."),
        ),
        _ => condition(
            old,
            "Progressing",
            true,
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs}\" is progressing."),
        ),
    };
    let available = if ready >= want {
        condition(
            old,
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        condition(
            old,
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let mut s = json!({
        "observedGeneration": generation, "replicas": want, "updatedReplicas": want,
        "readyReplicas": ready, "availableReplicas": ready,
        "conditions": [available, progressing],
    });
    if want > ready {
        s["unavailableReplicas"] = json!(want - ready);
    }
    s
}

pub(super) fn statefulset_status(
    name: &str,
    hash: &str,
    generation: i64,
    want: i64,
    ready: i64,
) -> Value {
    let revision = format!("{name}-{hash}");
    json!({
        "observedGeneration": generation, "replicas": want, "readyReplicas": ready,
        "currentReplicas": want, "updatedReplicas": want, "availableReplicas": ready,
        "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
    })
}

pub(super) fn job_status(old: &Value, job: &Value, succeeded: i64, progress: Progress) -> Value {
    let start = old
        .get("startTime")
        .cloned()
        .unwrap_or(json!(now_rfc3339()));
    match progress {
        Progress::Ready if succeeded > 0 => json!({
            "startTime": start,
            "completionTime": old.get("completionTime").cloned().unwrap_or(json!(now_rfc3339())),
            "succeeded": succeeded, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                condition(old, "SuccessCriteriaMet", true, "CompletionsReached", "Reached expected number of succeeded pods"),
                condition(old, "Complete", true, "CompletionsReached", "Reached expected number of succeeded pods"),
            ],
        }),
        Progress::Failing => {
            let limit = job
                .pointer("/spec/backoffLimit")
                .and_then(Value::as_i64)
                .unwrap_or(6);
            json!({
                "startTime": start, "failed": limit + 1, "ready": 0, "terminating": 0,
                "uncountedTerminatedPods": {},
                "conditions": [
                    condition(old, "FailureTarget", true, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                    condition(old, "Failed", true, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                ],
            })
        }
        _ => {
            json!({"startTime": start, "active": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}})
        }
    }
}

pub(super) fn mark_node_ready(node: &mut Value) {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready"));
    if !ready {
        if !node.get("status").is_some_and(Value::is_object) {
            node["status"] = json!({});
        }
        let conditions = node["status"]
            .as_object_mut()
            .expect("an object")
            .entry("conditions")
            .or_insert(json!([]));
        if let Some(cs) = conditions.as_array_mut() {
            cs.push(json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "stand-in kubelet (mock API server) is posting ready status",
                           "lastTransitionTime": now_rfc3339(), "lastHeartbeatTime": now_rfc3339()}));
        }
    }
}
