//! The cluster's admin kubeconfig: as published by the first k3s server (a SecureString at
//! `bootstrap::ParameterNames::kubeconfig`, fetched through `crate::aws::ssm_secrets`), turned
//! into a kube [`Client`], and written for the user — to a file of their own, or merged into
//! an existing kubeconfig as a new context named `provisioner-<env>`.

use std::io::Write;
use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};
use kube::{Client, Config};

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("the published kubeconfig is invalid: {0}")]
    Invalid(String),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("building a client from the kubeconfig: {0}")]
    Client(String),
}

/// How the kubeconfig is handed to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Replace the file with this cluster's kubeconfig only.
    Replace,
    /// Keep the file's other clusters, users and contexts; add (or refresh) this one's.
    Merge,
}

/// The context (and cluster and user) name of an environment.
pub fn context_name(env: &str) -> String {
    format!("provisioner-{env}")
}

/// Parses the published kubeconfig and renames its single cluster/user/context (k3s calls
/// them all `default`) to [`context_name`].
pub fn normalise(published: &str, env: &str) -> Result<Kubeconfig, KubeconfigError> {
    let mut kc =
        Kubeconfig::from_yaml(published).map_err(|e| KubeconfigError::Invalid(e.to_string()))?;
    let (Some(cluster), Some(user)) =
        (kc.clusters.first().cloned(), kc.auth_infos.first().cloned())
    else {
        return Err(KubeconfigError::Invalid(
            "it has no cluster or no user".into(),
        ));
    };
    let name = context_name(env);
    kc.clusters = vec![NamedCluster {
        name: name.clone(),
        cluster: cluster.cluster,
    }];
    kc.auth_infos = vec![NamedAuthInfo {
        name: name.clone(),
        auth_info: user.auth_info,
    }];
    kc.contexts = vec![NamedContext {
        name: name.clone(),
        context: Some(kube::config::Context {
            cluster: name.clone(),
            user: Some(name.clone()),
            namespace: None,
            extensions: None,
        }),
    }];
    kc.current_context = Some(name);
    Ok(kc)
}

/// Writes `kc` to `path` (mode 0600). With [`WriteMode::Merge`] an existing file keeps its
/// other entries; entries of the same name are replaced; its current context is kept when it
/// has one.
pub fn write(kc: &Kubeconfig, path: &Path, mode: WriteMode) -> Result<(), KubeconfigError> {
    let file_err = |reason: String| KubeconfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let merged = match mode {
        WriteMode::Merge if path.exists() => {
            let mut base = Kubeconfig::read_from(path).map_err(|e| file_err(e.to_string()))?;
            for c in &kc.clusters {
                base.clusters.retain(|x| x.name != c.name);
                base.clusters.push(c.clone());
            }
            for u in &kc.auth_infos {
                base.auth_infos.retain(|x| x.name != u.name);
                base.auth_infos.push(u.clone());
            }
            for c in &kc.contexts {
                base.contexts.retain(|x| x.name != c.name);
                base.contexts.push(c.clone());
            }
            if base.current_context.as_deref().is_none_or(str::is_empty) {
                base.current_context = kc.current_context.clone();
            }
            base.api_version.get_or_insert_with(|| "v1".into());
            base.kind.get_or_insert_with(|| "Config".into());
            base
        }
        _ => {
            let mut kc = kc.clone();
            kc.api_version = Some("v1".into());
            kc.kind = Some("Config".into());
            kc
        }
    };
    let yaml = serde_norway::to_string(&merged).map_err(|e| file_err(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
    }
    let tmp = path.with_extension("provisioner-tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| file_err(e.to_string()))?;
        f.write_all(yaml.as_bytes())
            .map_err(|e| file_err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| file_err(e.to_string()))
}

/// A client for `kc`'s current context. `server` overrides the API URL (e.g. the NLB's DNS
/// name while the Route 53 name does not resolve yet; both are in the certificate).
pub async fn client(kc: &Kubeconfig, server: Option<&str>) -> Result<Client, KubeconfigError> {
    let mut config = Config::from_custom_kubeconfig(kc.clone(), &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeconfigError::Client(e.to_string()))?;
    if let Some(server) = server {
        config.cluster_url = server
            .parse()
            .map_err(|e| KubeconfigError::Client(format!("server URL `{server}`: {e}")))?;
    }
    Client::try_from(config).map_err(|e| KubeconfigError::Client(e.to_string()))
}

/// A client for `kc` that connects to `server` while TLS checks the certificate for
/// `tls_server_name` (a `--resolve` override: kubeconfig's `tls-server-name`).
pub async fn client_at(
    kc: &Kubeconfig,
    server: &str,
    tls_server_name: Option<&str>,
) -> Result<Client, KubeconfigError> {
    let mut config = Config::from_custom_kubeconfig(kc.clone(), &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeconfigError::Client(e.to_string()))?;
    config.cluster_url = server
        .parse()
        .map_err(|e| KubeconfigError::Client(format!("server URL `{server}`: {e}")))?;
    if let Some(name) = tls_server_name {
        config.tls_server_name = Some(name.to_string());
    }
    Client::try_from(config).map_err(|e| KubeconfigError::Client(e.to_string()))
}

/// A client from a kubeconfig file the user gave (`--kubeconfig`), its current context.
pub async fn client_from_file(path: &Path) -> Result<Client, KubeconfigError> {
    let kc = Kubeconfig::read_from(path).map_err(|e| KubeconfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    client(&kc, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLISHED: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://api.dev.example.com:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";

    #[test]
    fn merge_adds_a_context_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://other:6443\nusers:\n- name: other\n  user:\n    token: t\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\ncurrent-context: other\n",
        )
        .unwrap();
        let kc = normalise(PUBLISHED, "dev").unwrap();
        write(&kc, &path, WriteMode::Merge).unwrap();
        let back = Kubeconfig::read_from(&path).unwrap();
        let names: Vec<_> = back.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["other", "provisioner-dev"]);
        assert_eq!(back.current_context.as_deref(), Some("other"));
        let cluster = back
            .clusters
            .iter()
            .find(|c| c.name == "provisioner-dev")
            .unwrap();
        assert_eq!(
            cluster.cluster.as_ref().unwrap().server.as_deref(),
            Some("https://api.dev.example.com:6443")
        );
        // Merging twice does not duplicate.
        write(&kc, &path, WriteMode::Merge).unwrap();
        assert_eq!(Kubeconfig::read_from(&path).unwrap().contexts.len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn replace_writes_only_this_cluster_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.yaml");
        write(
            &normalise(PUBLISHED, "dev").unwrap(),
            &path,
            WriteMode::Replace,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("client-key-data: S0VZ"), "{text}");
        assert!(text.contains("current-context: provisioner-dev"));
        assert!(!text.contains("name: default"));
    }
}
