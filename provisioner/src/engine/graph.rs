//! Dependency graph: topological order, cycle detection, layers (what can run at once),
//! teardown rounds (the reverse), and DOT / Mermaid export for `provisioner graph`.

use std::collections::{BTreeMap, BTreeSet};

use super::task::TaskKey;

/// Errors building or ordering a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("{from} depends on {to}, which is not part of the plan")]
    UnknownDependency { from: TaskKey, to: TaskKey },
    #[error("dependency cycle: {}", .0.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" -> "))]
    Cycle(Vec<TaskKey>),
}

/// Nodes and "depends on" edges (`a -> b`: a needs b; b is created first, deleted last).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    deps: BTreeMap<TaskKey, BTreeSet<TaskKey>>,
}

impl Graph {
    /// Build from `(node, its dependencies)`; every dependency must be a node.
    pub fn new(
        nodes: impl IntoIterator<Item = (TaskKey, Vec<TaskKey>)>,
    ) -> Result<Self, GraphError> {
        let deps: BTreeMap<TaskKey, BTreeSet<TaskKey>> = nodes
            .into_iter()
            .map(|(k, d)| (k, d.into_iter().collect()))
            .collect();
        for (k, ds) in &deps {
            for d in ds {
                if !deps.contains_key(d) {
                    return Err(GraphError::UnknownDependency {
                        from: k.clone(),
                        to: d.clone(),
                    });
                }
            }
        }
        let g = Self { deps };
        g.layers()?; // rejects cycles up front
        Ok(g)
    }

    /// Like [`Graph::new`] but silently drops edges to nodes that are not present (teardown:
    /// a dependency may already be gone).
    pub fn new_lenient(nodes: impl IntoIterator<Item = (TaskKey, Vec<TaskKey>)>) -> Self {
        let raw: Vec<(TaskKey, Vec<TaskKey>)> = nodes.into_iter().collect();
        let present: BTreeSet<TaskKey> = raw.iter().map(|(k, _)| k.clone()).collect();
        let deps = raw
            .into_iter()
            .map(|(k, d)| {
                let d = d
                    .into_iter()
                    .filter(|x| present.contains(x) && *x != k)
                    .collect();
                (k, d)
            })
            .collect();
        Self { deps }
    }

    pub fn len(&self) -> usize {
        self.deps.len()
    }
    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }
    pub fn nodes(&self) -> impl Iterator<Item = &TaskKey> {
        self.deps.keys()
    }
    pub fn deps_of(&self, k: &TaskKey) -> impl Iterator<Item = &TaskKey> {
        self.deps.get(k).into_iter().flatten()
    }
    fn dependents(&self) -> BTreeMap<&TaskKey, BTreeSet<&TaskKey>> {
        let mut m: BTreeMap<&TaskKey, BTreeSet<&TaskKey>> =
            self.deps.keys().map(|k| (k, BTreeSet::new())).collect();
        for (k, ds) in &self.deps {
            for d in ds {
                m.entry(d).or_default().insert(k);
            }
        }
        m
    }

    /// Creation layers (Kahn): layer 0 has no dependencies; everything in a layer can run at
    /// once. Errors with the cycle's path if there is one.
    pub fn layers(&self) -> Result<Vec<Vec<TaskKey>>, GraphError> {
        let mut remaining: BTreeMap<&TaskKey, usize> =
            self.deps.iter().map(|(k, d)| (k, d.len())).collect();
        let dependents = self.dependents();
        let mut layers = Vec::new();
        loop {
            let ready: Vec<&TaskKey> = remaining
                .iter()
                .filter(|(_, n)| **n == 0)
                .map(|(k, _)| *k)
                .collect();
            if ready.is_empty() {
                break;
            }
            for k in &ready {
                remaining.remove(k);
                for d in &dependents[k] {
                    if let Some(n) = remaining.get_mut(d) {
                        *n -= 1;
                    }
                }
            }
            layers.push(ready.into_iter().cloned().collect());
        }
        if remaining.is_empty() {
            Ok(layers)
        } else {
            let stuck: BTreeSet<&TaskKey> = remaining.keys().copied().collect();
            Err(GraphError::Cycle(self.find_cycle(&stuck)))
        }
    }

    /// One cycle among `stuck` nodes (all of which are on or behind a cycle).
    fn find_cycle(&self, stuck: &BTreeSet<&TaskKey>) -> Vec<TaskKey> {
        let Some(start) = stuck.iter().next() else {
            return Vec::new();
        };
        // Walk dependencies inside `stuck` until a node repeats.
        let mut path: Vec<&TaskKey> = vec![start];
        loop {
            let cur = *path.last().expect("non-empty");
            let next = self.deps[cur]
                .iter()
                .find(|d| stuck.contains(d))
                .expect("a stuck node has a stuck dependency");
            if let Some(pos) = path.iter().position(|p| *p == next) {
                let mut cycle: Vec<TaskKey> = path[pos..].iter().map(|k| (*k).clone()).collect();
                cycle.push(next.clone());
                return cycle;
            }
            path.push(next);
        }
    }

    /// A topological order (dependencies first).
    pub fn topo_order(&self) -> Result<Vec<TaskKey>, GraphError> {
        Ok(self.layers()?.into_iter().flatten().collect())
    }

    /// Number of layers: the critical path length in calls-that-must-wait.
    pub fn depth(&self) -> Result<usize, GraphError> {
        Ok(self.layers()?.len())
    }

    /// Delete rounds: a node is deleted only after everything that depends on it is gone.
    /// Round 0 holds the nodes nothing depends on (instances, records, attachments).
    pub fn teardown_rounds(&self) -> Result<Vec<Vec<TaskKey>>, GraphError> {
        let reversed = Graph {
            deps: self
                .dependents()
                .into_iter()
                .map(|(k, ds)| (k.clone(), ds.into_iter().cloned().collect()))
                .collect(),
        };
        reversed.layers()
    }

    /// Graphviz DOT; edges point from a resource to what it depends on.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph provisioner {\n  rankdir=LR;\n  node [shape=box];\n");
        for k in self.deps.keys() {
            s.push_str(&format!("  \"{k}\";\n"));
        }
        for (k, ds) in &self.deps {
            for d in ds {
                s.push_str(&format!("  \"{k}\" -> \"{d}\";\n"));
            }
        }
        s.push_str("}\n");
        s
    }

    /// Mermaid flowchart; node ids are sanitised, labels keep the task key.
    pub fn to_mermaid(&self) -> String {
        let id = |k: &TaskKey| {
            k.as_str()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
        };
        let mut s = String::from("flowchart LR\n");
        for k in self.deps.keys() {
            s.push_str(&format!("  {}[\"{}\"]\n", id(k), k));
        }
        for (k, ds) in &self.deps {
            for d in ds {
                s.push_str(&format!("  {} --> {}\n", id(k), id(d)));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> TaskKey {
        let (a, b) = s.split_once('/').unwrap();
        TaskKey::new(a, b)
    }
    fn g(edges: &[(&str, &[&str])]) -> Result<Graph, GraphError> {
        Graph::new(
            edges
                .iter()
                .map(|(n, ds)| (k(n), ds.iter().map(|d| k(d)).collect())),
        )
    }
    fn pos(order: &[TaskKey], s: &str) -> usize {
        order.iter().position(|x| x == &k(s)).unwrap()
    }
    fn round_of(rounds: &[Vec<TaskKey>], s: &str) -> usize {
        rounds.iter().position(|r| r.contains(&k(s))).unwrap()
    }

    #[test]
    fn topo_order_puts_dependencies_first() {
        let g = g(&[
            ("vpc/main", &[]),
            ("subnet/a", &["vpc/main"]),
            ("igw/main", &["vpc/main"]),
            ("rt/public", &["vpc/main", "igw/main", "subnet/a"]),
        ])
        .unwrap();
        let o = g.topo_order().unwrap();
        assert!(pos(&o, "vpc/main") < pos(&o, "subnet/a"));
        assert!(pos(&o, "igw/main") < pos(&o, "rt/public"));
        assert!(pos(&o, "subnet/a") < pos(&o, "rt/public"));
        assert_eq!(g.depth().unwrap(), 3);
        assert_eq!(
            g.layers().unwrap()[1].len(),
            2,
            "subnet and igw run at once"
        );
    }

    #[test]
    fn cycle_is_detected_and_named() {
        let err = g(&[
            ("sg/a", &["sg/b"]),
            ("sg/b", &["sg/c"]),
            ("sg/c", &["sg/a"]),
            ("vpc/x", &[]),
        ])
        .unwrap_err();
        match err {
            GraphError::Cycle(path) => {
                assert_eq!(path.first(), path.last());
                assert_eq!(path.len(), 4, "{path:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_dependency_is_rejected() {
        let err = g(&[("subnet/a", &["vpc/nope"])]).unwrap_err();
        assert!(matches!(err, GraphError::UnknownDependency { .. }));
    }

    /// The emulator lets an attached IGW, a referenced SG and an occupied subnet be deleted,
    /// so the teardown order is proven here, on the graph.
    #[test]
    fn teardown_rounds_delete_dependents_first() {
        let g = g(&[
            ("vpc/main", &[]),
            ("igw/main", &["vpc/main"]),
            ("subnet/pub-a", &["vpc/main"]),
            ("subnet/priv-a", &["vpc/main"]),
            ("eip/nat-a", &[]),
            ("nat/a", &["subnet/pub-a", "eip/nat-a", "igw/main"]),
            ("rt/private-a", &["vpc/main", "nat/a", "subnet/priv-a"]),
            ("sg/db", &["vpc/main", "sg/app"]),
            ("sg/app", &["vpc/main"]),
            ("asg/app", &["lt/app", "subnet/priv-a"]),
            ("lt/app", &["sg/app"]),
            ("lb/alb", &["subnet/pub-a", "sg/app"]),
        ])
        .unwrap();
        let r = g.teardown_rounds().unwrap();
        // attached IGW goes before its VPC; NAT before its subnet and EIP and IGW
        assert!(round_of(&r, "igw/main") < round_of(&r, "vpc/main"));
        assert!(round_of(&r, "nat/a") < round_of(&r, "subnet/pub-a"));
        assert!(round_of(&r, "nat/a") < round_of(&r, "eip/nat-a"));
        assert!(round_of(&r, "nat/a") < round_of(&r, "igw/main"));
        // referencing SG before the referenced one; SG after its users
        assert!(round_of(&r, "sg/db") < round_of(&r, "sg/app"));
        assert!(round_of(&r, "lt/app") < round_of(&r, "sg/app"));
        assert!(round_of(&r, "lb/alb") < round_of(&r, "sg/app"));
        // occupied subnet: ASG (instances) and LB go first
        assert!(round_of(&r, "asg/app") < round_of(&r, "subnet/priv-a"));
        assert!(round_of(&r, "lb/alb") < round_of(&r, "subnet/pub-a"));
        assert!(round_of(&r, "asg/app") < round_of(&r, "lt/app"));
        // the VPC is last
        assert_eq!(round_of(&r, "vpc/main"), r.len() - 1);
        // every node appears exactly once
        assert_eq!(r.iter().map(Vec::len).sum::<usize>(), g.len());
    }

    #[test]
    fn lenient_graph_drops_edges_to_missing_nodes() {
        let g = Graph::new_lenient(vec![(k("subnet/a"), vec![k("vpc/gone")])]);
        assert_eq!(g.teardown_rounds().unwrap(), vec![vec![k("subnet/a")]]);
    }

    #[test]
    fn dot_and_mermaid_mention_every_edge() {
        let g = g(&[("vpc/main", &[]), ("subnet/a", &["vpc/main"])]).unwrap();
        assert!(g.to_dot().contains("\"subnet/a\" -> \"vpc/main\""));
        assert!(g.to_mermaid().contains("subnet_a --> vpc_main"));
    }
}
