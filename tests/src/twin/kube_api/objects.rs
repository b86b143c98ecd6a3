//! The object store: create, server-side apply, merge patch, update, delete, and what the
//! real API server checks and fills in on each write.

use super::*;

/// RFC 7386 JSON merge patch.
pub(super) fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().expect("just made an object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

impl State {
    pub(super) fn list(
        &mut self,
        d: &'static ResourceDef,
        ns: Option<&str>,
        q: &[(String, String)],
    ) -> Reply {
        let labels = match query(q, "labelSelector")
            .map(parse_label_selector)
            .transpose()
        {
            Ok(l) => l.unwrap_or_default(),
            Err(e) => return bad_request(format!("labelSelector: {e}")),
        };
        let fields = query(q, "fieldSelector").unwrap_or("");
        let mut items = Vec::new();
        for (k, v) in &self.objects {
            if k.group != d.group || k.plural != d.plural {
                continue;
            }
            if ns.is_some() && k.namespace.as_deref() != ns {
                continue;
            }
            if !labels_match(v, &labels) {
                continue;
            }
            match fields_match(v, fields) {
                Ok(true) => items.push(v.clone()),
                Ok(false) => {}
                Err(e) => return bad_request(format!("fieldSelector: {e}")),
            }
        }
        Reply::Json(
            StatusCode::OK,
            json!({
                "kind": format!("{}List", d.kind), "apiVersion": d.api_version(),
                "metadata": {"resourceVersion": self.revision.to_string()},
                "items": items,
            }),
        )
    }

    pub(super) fn read(&mut self, d: &'static ResourceDef, ns: Option<&str>, name: &str) -> Reply {
        let key = Key::new(d, ns, name);
        if matches!(d.kind, "Deployment" | "StatefulSet" | "Job") {
            match self.behaviour(d.kind, name) {
                RolloutBehaviour::Forbidden => {
                    return status(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        format!(
                            "{} \"{name}\" is forbidden: User \"system:admin\" cannot get resource \"{}\" in API group \"{}\" in the namespace \"{}\"",
                            d.qualified(), d.plural, d.group, ns.unwrap_or_default()
                        ),
                        Some(json!({"name": name, "group": d.group, "kind": d.plural})),
                    )
                }
                RolloutBehaviour::NotFound => return not_found(d, name),
                _ => {}
            }
            if self.objects.contains_key(&key) {
                *self.reads.entry(key.clone()).or_default() += 1;
                self.reconcile(&key);
            }
        }
        match self.objects.get(&key) {
            Some(v) => Reply::Json(StatusCode::OK, v.clone()),
            None => not_found(d, name),
        }
    }

    pub(super) fn logs(
        &mut self,
        d: &'static ResourceDef,
        ns: Option<&str>,
        name: &str,
        q: &[(String, String)],
    ) -> Reply {
        let Some(pod) = self.objects.get(&Key::new(d, ns, name)) else {
            return not_found(d, name);
        };
        let container = query(q, "container")
            .map(str::to_owned)
            .or_else(|| {
                pod.pointer("/spec/containers/0/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        Reply::Text(
            StatusCode::OK,
            format!(
                "stand-in pod {name}, container {container}: no container runs under the MOCK Kubernetes API server\n"
            ),
        )
    }

    /// Checks that a namespaced object's namespace exists and is not terminating.
    pub(super) fn check_namespace(&self, d: &ResourceDef, ns: Option<&str>) -> Option<Reply> {
        if !d.namespaced {
            return None;
        }
        let ns = ns?;
        let ns_def = def_of_kind("Namespace").expect("Namespace is served");
        match self.objects.get(&Key::new(ns_def, None, ns)) {
            None => Some(not_found(ns_def, ns)),
            Some(n) if at(n, "metadata.deletionTimestamp").is_some() => Some(status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
                None,
            )),
            Some(_) => None,
        }
    }

    /// Checks the body's `apiVersion`, `kind`, name and namespace against the URL, and fills
    /// in what it leaves out.
    pub(super) fn check_identity(
        d: &ResourceDef,
        ns: Option<&str>,
        name: Option<&str>,
        obj: &mut Value,
    ) -> Result<(), Reply> {
        if !obj.is_object() {
            return Err(bad_request("the body is not an object"));
        }
        let want_av = d.api_version();
        match (str_at(obj, "apiVersion"), str_at(obj, "kind")) {
            (Some(av), Some(k)) if av == want_av && k == d.kind => {}
            (None, None) => {
                obj["apiVersion"] = json!(want_av);
                obj["kind"] = json!(d.kind);
            }
            (av, k) => {
                return Err(bad_request(format!(
                    "the API version in the data ({}) and kind ({}) do not match the resource {} of {want_av}",
                    av.unwrap_or(""),
                    k.unwrap_or(""),
                    d.plural
                )))
            }
        }
        let meta = meta_mut(obj);
        if let Some(name) = name {
            match meta.get("name").and_then(Value::as_str) {
                Some(n) if n != name => {
                    return Err(bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )))
                }
                Some(_) => {}
                None => {
                    meta.insert("name".into(), json!(name));
                }
            }
        }
        if d.namespaced {
            let ns = ns.unwrap_or("default");
            match meta.get("namespace").and_then(Value::as_str) {
                Some(n) if n != ns => {
                    return Err(bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        Ok(())
    }

    pub(super) fn create(
        &mut self,
        d: &'static ResourceDef,
        ns: Option<&str>,
        mut obj: Value,
        manager: &str,
    ) -> Reply {
        if d.namespaced && ns.is_none() {
            return unimplemented("creating a namespaced object without a namespace in the URL");
        }
        if let Err(r) =
            Self::check_identity(d, ns, None, &mut obj).and_then(|()| check_types(d, &obj))
        {
            return r;
        }
        let meta = meta_mut(&mut obj);
        if meta.get("name").and_then(Value::as_str).is_none() {
            match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) => {
                    let name = format!("{prefix}{}", &random_hex(3)[..5]);
                    meta.insert("name".into(), json!(name));
                }
                None => {
                    return invalid(
                        d,
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required".into(),
                    )
                }
            }
        }
        let name = str_at(&obj, "metadata.name").unwrap_or_default().to_owned();
        if let Some(r) = self.check_namespace(d, ns) {
            return r;
        }
        let key = Key::new(d, ns, &name);
        if self.objects.contains_key(&key) {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", d.qualified()),
                Some(json!({"name": name, "group": d.group, "kind": d.plural})),
            );
        }
        if d.kind == "Node" {
            mark_node_ready(&mut obj);
        }
        let stored = self.write(&key, obj, None, manager, "Update");
        if d.kind == "Node" {
            self.reconcile_all();
        } else {
            self.reconcile(&key);
        }
        Reply::Json(
            StatusCode::CREATED,
            self.objects.get(&key).cloned().unwrap_or(stored),
        )
    }

    pub(super) fn apply(
        &mut self,
        d: &'static ResourceDef,
        ns: Option<&str>,
        name: &str,
        q: &[(String, String)],
        mut obj: Value,
    ) -> Reply {
        *self.applies.entry(d.kind.to_owned()).or_default() += 1;
        let Some(manager) = query(q, "fieldManager").filter(|m| !m.is_empty()) else {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                None,
            );
        };
        let force = query(q, "force").is_some_and(|f| f == "true");
        if d.namespaced && ns.is_none() {
            return unimplemented("applying a namespaced object without a namespace in the URL");
        }
        if let Err(r) =
            Self::check_identity(d, ns, Some(name), &mut obj).and_then(|()| check_types(d, &obj))
        {
            return r;
        }
        let key = Key::new(d, ns, name);
        let existing = self.objects.get(&key).cloned();
        match &existing {
            None => {
                if let Some(r) = self.check_namespace(d, ns) {
                    return r;
                }
            }
            Some(old) => {
                if !force {
                    let others: Vec<&str> = old
                        .pointer("/metadata/managedFields")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter(|m| m["operation"] == "Apply" && m["manager"] != manager)
                        .filter_map(|m| m["manager"].as_str())
                        .collect();
                    if !others.is_empty() {
                        return status(
                            StatusCode::CONFLICT,
                            "Conflict",
                            format!(
                                "Apply failed with conflicts: fields of {} \"{name}\" are managed by {} (the MOCK API server counts any other apply manager as a conflict)",
                                d.qualified(),
                                others.join(", ")
                            ),
                            Some(json!({"name": name, "group": d.group, "kind": d.plural})),
                        );
                    }
                }
                if let Err(r) = check_immutable(d, name, old, &obj) {
                    return r;
                }
            }
        }
        if d.kind == "Node" {
            mark_node_ready(&mut obj);
        }
        let stored = self.write(&key, obj, existing.as_ref(), manager, "Apply");
        self.reconcile(&key);
        Reply::Json(
            StatusCode::OK,
            self.objects.get(&key).cloned().unwrap_or(stored),
        )
    }

    pub(super) fn merge(
        &mut self,
        d: &'static ResourceDef,
        ns: Option<&str>,
        name: &str,
        q: &[(String, String)],
        patch: &Value,
        status_only: bool,
    ) -> Reply {
        let key = Key::new(d, ns, name);
        let Some(old) = self.objects.get(&key).cloned() else {
            return not_found(d, name);
        };
        let mut new = old.clone();
        merge_patch(&mut new, patch);
        if let Err(r) = check_types(d, &new) {
            return r;
        }
        if status_only {
            let st = new.get("status").cloned().unwrap_or(json!({}));
            self.write_status(&key, st);
        } else {
            if let Err(r) = check_immutable(d, name, &old, &new) {
                return r;
            }
            if let Some(s) = old.get("status") {
                new["status"] = s.clone();
            }
            let manager = query(q, "fieldManager").unwrap_or("unknown").to_owned();
            self.write(&key, new, Some(&old), &manager, "Update");
            self.reconcile(&key);
        }
        Reply::Json(
            StatusCode::OK,
            self.objects.get(&key).cloned().unwrap_or(Value::Null),
        )
    }

    pub(super) fn update(
        &mut self,
        d: &'static ResourceDef,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        manager: &str,
    ) -> Reply {
        if let Err(r) =
            Self::check_identity(d, ns, Some(name), &mut obj).and_then(|()| check_types(d, &obj))
        {
            return r;
        }
        let key = Key::new(d, ns, name);
        let Some(old) = self.objects.get(&key).cloned() else {
            return not_found(d, name);
        };
        if let Some(rv) = str_at(&obj, "metadata.resourceVersion") {
            if Some(rv) != str_at(&old, "metadata.resourceVersion") {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                        d.qualified()
                    ),
                    Some(json!({"name": name, "group": d.group, "kind": d.plural})),
                );
            }
        }
        if let Err(r) = check_immutable(d, name, &old, &obj) {
            return r;
        }
        self.write(&key, obj, Some(&old), manager, "Update");
        self.reconcile(&key);
        Reply::Json(
            StatusCode::OK,
            self.objects.get(&key).cloned().unwrap_or(Value::Null),
        )
    }

    pub(super) fn delete(
        &mut self,
        d: &'static ResourceDef,
        ns: Option<&str>,
        name: &str,
        opts: &Value,
    ) -> Reply {
        let key = Key::new(d, ns, name);
        let Some(old) = self.objects.get(&key).cloned() else {
            return not_found(d, name);
        };
        let uid = str_at(&old, "metadata.uid").unwrap_or_default().to_owned();
        let conflict = |what: &str, want: &str, have: &str| {
            status(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}",
                    d.qualified()
                ),
                Some(json!({"name": name, "group": d.group, "kind": d.plural})),
            )
        };
        if let Some(want) = str_at(opts, "preconditions.uid") {
            if want != uid {
                return conflict("UID", want, &uid);
            }
        }
        if let Some(want) = str_at(opts, "preconditions.resourceVersion") {
            let have = str_at(&old, "metadata.resourceVersion").unwrap_or_default();
            if want != have {
                return conflict("ResourceVersion", want, have);
            }
        }
        let linger_until = match self.deletion {
            DeletionMode::Immediate => {
                self.remove(&key, "unknown");
                return Reply::Json(
                    StatusCode::OK,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "details": {"name": name, "group": d.group, "kind": d.plural, "uid": uid}}),
                );
            }
            DeletionMode::Linger => None,
            DeletionMode::LingerFor(t) => Some(Instant::now() + t),
        };
        if at(&old, "metadata.deletionTimestamp").is_none() {
            let mut new = old.clone();
            let meta = meta_mut(&mut new);
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if d.kind == "Namespace" {
                new["status"] = json!({"phase": "Terminating"});
            }
            let rv = self.next_revision();
            meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
            self.objects.insert(key.clone(), new);
            self.lingering.insert(key.clone(), linger_until);
            self.record(ChangeOp::Updated, &key, "unknown");
        }
        Reply::Json(
            StatusCode::OK,
            self.objects.get(&key).cloned().unwrap_or(Value::Null),
        )
    }

    /// Removes an object, what it owns (background garbage collection) and, for a
    /// Namespace, everything in it.
    pub(super) fn remove(&mut self, key: &Key, by: &str) {
        let Some(old) = self.objects.remove(key) else {
            return;
        };
        self.lingering.remove(key);
        self.reads.remove(key);
        self.next_revision();
        self.record(ChangeOp::Deleted, key, by);
        let uid = str_at(&old, "metadata.uid").unwrap_or_default().to_owned();
        let dependants: Vec<Key> = self
            .objects
            .iter()
            .filter(|(k, v)| {
                (key.plural == "namespaces"
                    && key.group.is_empty()
                    && k.namespace.as_deref() == Some(key.name.as_str()))
                    || v.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in dependants {
            self.remove(&k, "controller");
        }
    }

    pub(super) fn expire_lingering(&mut self) {
        let now = Instant::now();
        let due: Vec<Key> = self
            .lingering
            .iter()
            .filter(|(_, until)| until.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.remove(&k, "controller");
        }
    }

    pub(super) fn record(&mut self, op: ChangeOp, key: &Key, by: &str) {
        self.changes.push(Change {
            op,
            kind: key.def().kind.to_owned(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            by: by.to_owned(),
        });
    }

    /// Stores `obj` (a client's write) over `existing`: keeps the server-owned metadata and
    /// the status, bumps `generation` on a change outside metadata and status, and
    /// `resourceVersion` on any change. Returns the stored object.
    pub(super) fn write(
        &mut self,
        key: &Key,
        mut obj: Value,
        existing: Option<&Value>,
        manager: &str,
        operation: &str,
    ) -> Value {
        let d = key.def();
        normalise(d, &mut obj);
        let now = now_rfc3339();
        let mut managed: Vec<Value> = existing
            .and_then(|o| o.pointer("/metadata/managedFields"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        managed.retain(|m| !(m["manager"] == manager && m["operation"] == operation));
        managed.push(json!({
            "manager": manager, "operation": operation, "apiVersion": d.api_version(),
            "time": now, "fieldsType": "FieldsV1", "fieldsV1": {},
        }));
        match existing {
            None => {
                let meta = meta_mut(&mut obj);
                meta.insert("uid".into(), json!(new_uid()));
                meta.insert("creationTimestamp".into(), json!(now));
                meta.insert("generation".into(), json!(1));
                meta.insert("managedFields".into(), json!(managed));
                if d.kind != "Node" {
                    // Status is the controllers' (a kubelet registers its Node with one).
                    obj.as_object_mut().expect("an object").remove("status");
                }
                if let Some(s) = initial_status(d) {
                    obj["status"] = s;
                }
                let rv = self.next_revision();
                meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
                self.objects.insert(key.clone(), obj.clone());
                self.record(ChangeOp::Created, key, manager);
                obj
            }
            Some(old) => {
                let spec_changed = without_meta_and_status(old) != without_meta_and_status(&obj);
                let generation = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
                    + i64::from(spec_changed);
                {
                    let meta = meta_mut(&mut obj);
                    for k in [
                        "uid",
                        "creationTimestamp",
                        "deletionTimestamp",
                        "deletionGracePeriodSeconds",
                    ] {
                        match old.pointer(&format!("/metadata/{k}")) {
                            Some(v) => meta.insert(k.into(), v.clone()),
                            None => meta.remove(k),
                        };
                    }
                    for k in ["ownerReferences", "finalizers"] {
                        if !meta.contains_key(k) {
                            if let Some(v) = old.pointer(&format!("/metadata/{k}")) {
                                meta.insert(k.into(), v.clone());
                            }
                        }
                    }
                    meta.insert("generation".into(), json!(generation));
                    meta.insert(
                        "resourceVersion".into(),
                        old["metadata"]["resourceVersion"].clone(),
                    );
                    meta.insert("managedFields".into(), json!(managed));
                }
                match old.get("status") {
                    Some(s) => obj["status"] = s.clone(),
                    None => {
                        obj.as_object_mut().expect("an object").remove("status");
                    }
                }
                if without_times(&obj) == without_times(old) {
                    return old.clone();
                }
                let rv = self.next_revision();
                meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
                self.objects.insert(key.clone(), obj.clone());
                self.record(ChangeOp::Updated, key, manager);
                obj
            }
        }
    }

    /// A stand-in controller's write of `status` (only when it changes).
    pub(super) fn write_status(&mut self, key: &Key, status: Value) {
        let Some(old) = self.objects.get(key) else {
            return;
        };
        if old.get("status").map(without_clock) == Some(without_clock(&status)) {
            return;
        }
        let mut new = old.clone();
        new["status"] = status;
        let rv = self.next_revision();
        meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
        self.objects.insert(key.clone(), new);
        self.record(ChangeOp::Updated, key, "controller");
    }

    /// A stand-in controller's create-or-replace of a whole object it owns (only when it
    /// changes).
    pub(super) fn put_owned(&mut self, key: &Key, mut obj: Value) {
        if let Some(old) = self.objects.get(key) {
            let meta = meta_mut(&mut obj);
            for k in ["uid", "creationTimestamp", "resourceVersion"] {
                if let Some(v) = old.pointer(&format!("/metadata/{k}")) {
                    meta.insert(k.into(), v.clone());
                }
            }
            if without_clock(&obj) == without_clock(old) {
                return;
            }
            let rv = self.next_revision();
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
            self.objects.insert(key.clone(), obj);
            self.record(ChangeOp::Updated, key, "controller");
        } else {
            let now = now_rfc3339();
            let rv = self.next_revision();
            let meta = meta_mut(&mut obj);
            meta.insert("uid".into(), json!(new_uid()));
            meta.insert("creationTimestamp".into(), json!(now));
            meta.insert("resourceVersion".into(), json!(rv));
            self.objects.insert(key.clone(), obj);
            self.record(ChangeOp::Created, key, "controller");
        }
    }
}

/// Status a new object starts with.
pub(super) fn initial_status(d: &ResourceDef) -> Option<Value> {
    match d.kind {
        "Namespace" => Some(json!({"phase": "Active"})),
        _ => None,
    }
}

/// What the real API does to a written object before storing it.
pub(super) fn normalise(d: &ResourceDef, obj: &mut Value) {
    if d.kind == "Secret" {
        let o = obj.as_object_mut().expect("an object");
        if let Some(Value::Object(sd)) = o.remove("stringData") {
            let data = o.entry("data").or_insert(json!({}));
            if !data.is_object() {
                *data = json!({});
            }
            for (k, v) in sd {
                let s = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                data[k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
            }
        }
        o.entry("type").or_insert(json!("Opaque"));
    }
}

/// `v` without the clock readings a controller writes (transition, start and heartbeat
/// times): a controller that finds nothing else changed writes nothing.
pub(super) fn without_clock(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !(k.ends_with("Time") || k.ends_with("Timestamp") || *k == "startedAt")
                })
                .map(|(k, v)| (k.clone(), without_clock(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_clock).collect()),
        other => other.clone(),
    }
}

pub(super) fn without_meta_and_status(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

/// The object without what changes on every write (managed-field times, resourceVersion).
pub(super) fn without_times(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        if let Some(Value::Array(mf)) = meta.get_mut("managedFields") {
            for m in mf {
                if let Some(m) = m.as_object_mut() {
                    m.remove("time");
                }
            }
        }
    }
    v
}

/// The 422 the real API answers to a change of an immutable field.
pub(super) fn check_immutable(
    d: &ResourceDef,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), Reply> {
    let changed = |path: &str| at(old, path) != at(new, path);
    let immutable = |field: &str| {
        invalid(
            d,
            name,
            field,
            format!(
                "Invalid value: {}: field is immutable",
                at(new, field)
                    .map(Value::to_string)
                    .unwrap_or_else(|| "null".into())
            ),
        )
    };
    match (d.group, d.kind) {
        ("apps", "StatefulSet") => {
            const MUTABLE: &[&str] = &[
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "revisionHistoryLimit",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
            ];
            let strip = |v: &Value| {
                let mut s = v.get("spec").cloned().unwrap_or(json!({}));
                if let Some(o) = s.as_object_mut() {
                    o.retain(|k, _| !MUTABLE.contains(&k.as_str()));
                }
                s
            };
            if strip(old) != strip(new) {
                return Err(status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    format!(
                        "StatefulSet.apps \"{name}\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
                    ),
                    Some(json!({
                        "name": name, "group": "apps", "kind": "StatefulSet",
                        "causes": [{"reason": "FieldValueForbidden",
                                    "message": "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                                    "field": "spec"}],
                    })),
                ));
            }
        }
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") if changed("spec.selector") => {
            return Err(immutable("spec.selector"));
        }
        ("batch", "Job") => {
            for f in ["spec.selector", "spec.template", "spec.completionMode"] {
                if changed(f) {
                    return Err(immutable(f));
                }
            }
        }
        ("", "Service")
            if at(old, "spec.clusterIP").is_some()
                && at(new, "spec.clusterIP").is_some()
                && changed("spec.clusterIP") =>
        {
            return Err(immutable("spec.clusterIP"));
        }
        ("", "Secret" | "ConfigMap") if old["immutable"] == true => {
            for f in ["data", "binaryData"] {
                if changed(f) {
                    return Err(invalid(
                        d,
                        name,
                        f,
                        "Forbidden: field is immutable when `immutable` is set".into(),
                    ));
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            let strip = |v: &Value| {
                let mut s = v.get("spec").cloned().unwrap_or(json!({}));
                if let Some(o) = s.as_object_mut() {
                    o.remove("volumeAttributesClassName");
                    if let Some(r) = o.get_mut("resources").and_then(Value::as_object_mut) {
                        r.remove("requests");
                    }
                }
                s
            };
            if strip(old) != strip(new) {
                return Err(invalid(
                    d,
                    name,
                    "spec",
                    "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims".into(),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The body as JSON (an apply body may be YAML).
pub(super) fn parse_body(body: &[u8], content_type: &str) -> Result<Value, String> {
    if body.is_empty() {
        return Err("the request has no body".into());
    }
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) if content_type.ends_with("yaml") => serde_norway::from_slice(body)
            .map_err(|y| format!("the body is neither JSON ({e}) nor YAML ({y})")),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}
