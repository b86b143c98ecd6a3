//! Route table with its routes and subnet associations (untagged children, managed as part
//! of the table: a route deleted behind our back shows up as drift in `plan`).

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::ec2::RouteInfo;
use crate::aws::Cloud;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

/// Where a route goes: a task whose `id` output is the target (igw, nat, peering).
pub struct RouteSpec {
    pub destination: String,
    pub target: TaskKey,
}

pub struct RouteTable {
    pub name: String,
    pub vpc: TaskKey,
    pub subnets: Vec<TaskKey>,
    pub routes: Vec<RouteSpec>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteTableState {
    pub vpc_id: String,
    pub routes: Vec<RouteInfo>,
    pub subnets: Vec<String>,
}

impl Resource<Cloud> for RouteTable {
    type State = RouteTableState;
    fn key(&self) -> TaskKey {
        TaskKey::new("route-table", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.vpc.clone()];
        d.extend(self.subnets.iter().cloned());
        d.extend(self.routes.iter().map(|r| r.target.clone()));
        d.sort();
        d.dedup();
        d
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["vpc_id"]
    }
    fn desired(&self, i: &Outputs) -> Result<RouteTableState, TaskError> {
        let mut routes = Vec::new();
        for r in &self.routes {
            routes.push(RouteInfo {
                destination: r.destination.clone(),
                target: i.id(&r.target)?,
            });
        }
        routes.sort();
        let mut subnets = Vec::new();
        for s in &self.subnets {
            subnets.push(i.id(s)?);
        }
        subnets.sort();
        Ok(RouteTableState {
            vpc_id: i.id(&self.vpc)?,
            routes,
            subnets,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a Cloud,
        d: &'a RouteTableState,
    ) -> BoxFuture<'a, Result<Option<Found<RouteTableState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.vpc_id) {
                return Ok(None);
            }
            Ok(
                by_name(cx.route_tables().await?, &self.name, |t| &t.tags).map(|t| {
                    let mut routes = t.routes.clone();
                    routes.sort();
                    let mut subnets: Vec<String> =
                        t.associations.iter().map(|(_, s)| s.clone()).collect();
                    subnets.sort();
                    let mut outputs = out_id(&t.id);
                    for (assoc, subnet) in &t.associations {
                        outputs.insert(format!("assoc:{subnet}"), assoc.clone());
                    }
                    Found {
                        state: RouteTableState {
                            vpc_id: t.vpc_id,
                            routes,
                            subnets,
                        },
                        outputs,
                    }
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a Cloud,
        d: &'a RouteTableState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = cx.create_route_table(&self.name, &d.vpc_id).await?;
            // Routes and associations are independent: all at once.
            let routes =
                futures::future::try_join_all(d.routes.iter().map(|r| cx.create_route(&id, r)));
            let assocs = futures::future::try_join_all(
                d.subnets.iter().map(|s| cx.associate_route_table(&id, s)),
            );
            futures::try_join!(routes, assocs)?;
            Ok(out_id(&id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cloud,
        a: &'a Found<RouteTableState>,
        d: &'a RouteTableState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = &a.outputs["id"];
            // Routes to a wrong target are replaced: delete, then create.
            for r in &a.state.routes {
                if !d.routes.contains(r) {
                    cx.delete_route(id, &r.destination).await?;
                }
            }
            for r in &d.routes {
                if !a.state.routes.contains(r) {
                    cx.create_route(id, r).await?;
                }
            }
            for s in &a.state.subnets {
                if !d.subnets.contains(s) {
                    if let Some(assoc) = a.outputs.get(&format!("assoc:{s}")) {
                        cx.disassociate_route_table(assoc).await?;
                    }
                }
            }
            for s in &d.subnets {
                if !a.state.subnets.contains(s) {
                    cx.associate_route_table(id, s).await?;
                }
            }
            Ok(OutputMap::new())
        })
    }
}
