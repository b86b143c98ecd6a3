//! `provisioner graph -f TEMPLATE [--format dot|mermaid]`: the dependency
//! graph of what `up` converges — the engine's own task graph, built by
//! [`crate::model::build`] exactly as `plan`/`up` build it — as Graphviz
//! DOT or a Mermaid flowchart. Edges point from a resource to what it depends
//! on. No AWS call is made (AMIs show as "resolved at up").

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;

use crate::config::{Config, GraphFormat};
use crate::engine::executor::graph_of;
use crate::engine::Graph;
use crate::template::Environment;

pub async fn run(cfg: &Config, env: &Environment) -> Result<ExitCode> {
    let graph = plan_graph(env)?;
    let depth = graph.depth()?;
    match cfg.graph_format {
        GraphFormat::Dot => {
            println!(
                "// {}: {} resources, critical path {depth} deep",
                env.name,
                graph.len()
            );
            print!("{}", graph.to_dot());
        }
        GraphFormat::Mermaid => {
            println!(
                "%% {}: {} resources, critical path {depth} deep",
                env.name,
                graph.len()
            );
            print!("{}", graph.to_mermaid());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine's task graph for `env`.
pub fn plan_graph(env: &Environment) -> Result<Graph> {
    let amis: HashMap<String, String> = env
        .node_pools
        .iter()
        .map(|p| (p.name.to_string(), "(resolved at up)".to_owned()))
        .collect();
    let tasks = crate::model::build(env, &amis);
    Ok(graph_of(&tasks)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(file: &str) -> Graph {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vpc-templates")
            .join(file);
        let t = crate::template::load(&path).unwrap();
        plan_graph(&t.env).unwrap()
    }

    #[test]
    fn shipped_templates_have_acyclic_graphs_in_both_formats() {
        for file in ["dev.yaml", "multi-vpc.yaml"] {
            let g = graph(file);
            assert!(g.len() > 20, "{file}: {} nodes", g.len());
            let order = g.topo_order().unwrap();
            let pos = |s: &str| order.iter().position(|k| k.as_str() == s);
            let vpc = order.iter().position(|k| k.kind() == "vpc").unwrap();
            let subnet = order.iter().position(|k| k.kind() == "subnet").unwrap();
            assert!(vpc < subnet, "{file}");
            let _ = pos;
            let dot = g.to_dot();
            assert!(dot.starts_with("digraph"), "{file}");
            assert!(dot.contains(" -> "), "{file}");
            let mermaid = g.to_mermaid();
            assert!(mermaid.starts_with("flowchart LR"), "{file}");
            assert!(mermaid.contains(" --> "), "{file}");
        }
    }
}
