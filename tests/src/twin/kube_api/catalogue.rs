//! The kinds the mock serves: discovery documents, and the strict decoding of a body into
//! the kind's k8s-openapi type.

use super::*;

/// One kind the mock serves.
#[derive(Debug)]
pub struct ResourceDef {
    /// API group (`""` for core).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The resource name in URLs (`deployments`).
    pub plural: &'static str,
    pub namespaced: bool,
    /// Subresources listed in discovery (`status`, `log`, `scale`).
    pub subresources: &'static [&'static str],
    pub short_names: &'static [&'static str],
}

impl ResourceDef {
    pub(super) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group, as Status messages name it.
    pub(super) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Pod`, as validation messages name it.
    pub(super) fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

pub(super) const fn def(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    subresources: &'static [&'static str],
    short_names: &'static [&'static str],
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        kind,
        plural,
        namespaced,
        subresources,
        short_names,
    }
}

/// Every kind the mock serves: all that the rendered manifests use, and those the applier
/// and the stand-in controllers read or write.
#[rustfmt::skip]
pub const RESOURCES: &[ResourceDef] = &[
    def("", "v1", "Namespace", "namespaces", false, &["status"], &["ns"]),
    def("", "v1", "Node", "nodes", false, &["status"], &["no"]),
    def("", "v1", "Secret", "secrets", true, &[], &[]),
    def("", "v1", "ConfigMap", "configmaps", true, &[], &["cm"]),
    def("", "v1", "Service", "services", true, &["status"], &["svc"]),
    def("", "v1", "ServiceAccount", "serviceaccounts", true, &[], &["sa"]),
    def("", "v1", "Pod", "pods", true, &["status", "log"], &["po"]),
    def("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["status"], &["pvc"]),
    def("", "v1", "Endpoints", "endpoints", true, &[], &["ep"]),
    def("", "v1", "Event", "events", true, &[], &["ev"]),
    def("apps", "v1", "Deployment", "deployments", true, &["status", "scale"], &["deploy"]),
    def("apps", "v1", "StatefulSet", "statefulsets", true, &["status", "scale"], &["sts"]),
    def("apps", "v1", "DaemonSet", "daemonsets", true, &["status"], &["ds"]),
    def("apps", "v1", "ReplicaSet", "replicasets", true, &["status", "scale"], &["rs"]),
    def("batch", "v1", "Job", "jobs", true, &["status"], &[]),
    def("batch", "v1", "CronJob", "cronjobs", true, &["status"], &["cj"]),
    def("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["status"], &["pdb"]),
    def("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &[], &["netpol"]),
    def("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["status"], &["ing"]),
    def("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, &[], &[]),
    def("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["status"], &["hpa"]),
    def("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[], &[]),
    def("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[], &[]),
    def("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[], &[]),
    def("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[], &[]),
    def("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &[], &["sc"]),
    def("storage.k8s.io", "v1", "CSIDriver", "csidrivers", false, &[], &[]),
];

pub(super) const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub(super) fn find_def(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
}

pub(super) fn def_of_kind(kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|d| d.kind == kind)
}

/// Decodes `obj` into the kind's k8s-openapi type, as the real API server decodes a body
/// into its Go type: a field of the wrong type (a string where an integer belongs, as
/// YAML 1.2 reads `0555`) is refused, not stored.
pub(super) fn check_types(d: &ResourceDef, obj: &Value) -> Result<(), Reply> {
    use k8s_openapi::api::{apps, autoscaling, batch, core, networking, policy, rbac, storage};
    fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
        T::deserialize(v).map(drop).map_err(|e| e.to_string())
    }
    let decoded = match d.kind {
        "Namespace" => decode::<core::v1::Namespace>(obj),
        "Node" => decode::<core::v1::Node>(obj),
        "Secret" => decode::<core::v1::Secret>(obj),
        "ConfigMap" => decode::<core::v1::ConfigMap>(obj),
        "Service" => decode::<core::v1::Service>(obj),
        "ServiceAccount" => decode::<core::v1::ServiceAccount>(obj),
        "Pod" => decode::<core::v1::Pod>(obj),
        "PersistentVolumeClaim" => decode::<core::v1::PersistentVolumeClaim>(obj),
        "Endpoints" => decode::<core::v1::Endpoints>(obj),
        "Event" => decode::<core::v1::Event>(obj),
        "Deployment" => decode::<apps::v1::Deployment>(obj),
        "StatefulSet" => decode::<apps::v1::StatefulSet>(obj),
        "DaemonSet" => decode::<apps::v1::DaemonSet>(obj),
        "ReplicaSet" => decode::<apps::v1::ReplicaSet>(obj),
        "Job" => decode::<batch::v1::Job>(obj),
        "CronJob" => decode::<batch::v1::CronJob>(obj),
        "PodDisruptionBudget" => decode::<policy::v1::PodDisruptionBudget>(obj),
        "NetworkPolicy" => decode::<networking::v1::NetworkPolicy>(obj),
        "Ingress" => decode::<networking::v1::Ingress>(obj),
        "IngressClass" => decode::<networking::v1::IngressClass>(obj),
        "HorizontalPodAutoscaler" => decode::<autoscaling::v2::HorizontalPodAutoscaler>(obj),
        "Role" => decode::<rbac::v1::Role>(obj),
        "RoleBinding" => decode::<rbac::v1::RoleBinding>(obj),
        "ClusterRole" => decode::<rbac::v1::ClusterRole>(obj),
        "ClusterRoleBinding" => decode::<rbac::v1::ClusterRoleBinding>(obj),
        "StorageClass" => decode::<storage::v1::StorageClass>(obj),
        "CSIDriver" => decode::<storage::v1::CSIDriver>(obj),
        _ => Ok(()),
    };
    decoded.map_err(|e| {
        bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            d.kind, d.version, d.kind
        ))
    })
}

pub(super) fn api_groups() -> Vec<Value> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for d in RESOURCES.iter().filter(|d| !d.group.is_empty()) {
        if !groups.contains(&(d.group, d.version)) {
            groups.push((d.group, d.version));
        }
    }
    groups
        .into_iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect()
}

pub(super) fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for d in RESOURCES
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        let mut r = json!({
            "name": d.plural, "singularName": d.kind.to_lowercase(), "namespaced": d.namespaced,
            "kind": d.kind, "verbs": VERBS,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        resources.push(r);
        for sub in d.subresources {
            let verbs: &[&str] = if *sub == "log" {
                &["get"]
            } else {
                &["get", "patch", "update"]
            };
            resources.push(json!({
                "name": format!("{}/{sub}", d.plural), "singularName": "", "namespaced": d.namespaced,
                "kind": d.kind, "verbs": verbs,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}
