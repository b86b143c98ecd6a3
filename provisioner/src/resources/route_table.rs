//! Route table (`route-table/<name>`), its routes (`routes/<name>`) and its subnet
//! associations (`rt-assoc/<name>`): three tasks, so that the table is created beside the
//! subnets and NAT gateways, and each later step is one round of calls that waits only for
//! what it names (a route for its target, an association for its subnet). Routes and
//! associations are untagged children of the table: one deleted behind our back shows up as
//! drift on `routes/…` or `rt-assoc/…` in `plan`.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::RouteTables;
use crate::aws::ec2::{RouteInfo, RouteTableInfo};
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

/// Where a route goes: a task whose `id` output is the target (igw attachment, nat, peering).
#[derive(Clone)]
pub struct RouteSpec {
    pub destination: String,
    pub target: TaskKey,
}

pub struct RouteTable {
    pub name: String,
    pub vpc: TaskKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteTableState {
    pub vpc_id: String,
}

impl<C: RouteTables> Resource<C> for RouteTable {
    type State = RouteTableState;
    fn key(&self) -> TaskKey {
        TaskKey::new("route-table", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.vpc.clone()]
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["vpc_id"]
    }
    fn desired(&self, i: &Outputs) -> Result<RouteTableState, TaskError> {
        Ok(RouteTableState {
            vpc_id: i.id(&self.vpc)?,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a RouteTableState,
    ) -> BoxFuture<'a, Result<Option<Found<RouteTableState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.vpc_id) {
                return Ok(None);
            }
            Ok(
                by_name(cx.route_tables().await?, &self.name, |t| &t.tags).map(|t| Found {
                    state: RouteTableState { vpc_id: t.vpc_id },
                    outputs: out_id(&t.id),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a RouteTableState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(out_id(&cx.create_route_table(&self.name, &d.vpc_id).await?)) })
    }
    fn update<'a>(
        &'a self,
        _: &'a C,
        _: &'a Found<RouteTableState>,
        _: &'a RouteTableState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        // Only the (immutable) VPC is managed here: check_changes rejected any diff already.
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}

/// The table `id` as it is in the cached describe (`None` for a table created earlier in this
/// run: it has no routes and no associations yet, and `create` starts from that).
async fn table<C: RouteTables>(cx: &C, id: &str) -> Result<Option<RouteTableInfo>, TaskError> {
    Ok(cx.route_tables().await?.into_iter().find(|t| t.id == id))
}

/// The routes of one table (the `local` route is AWS's own and not listed).
pub struct Routes {
    /// The table's logical name.
    pub name: String,
    pub table: TaskKey,
    pub routes: Vec<RouteSpec>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoutesState {
    #[serde(skip)]
    pub table_id: String,
    pub routes: Vec<RouteInfo>,
}

impl<C: RouteTables> Resource<C> for Routes {
    type State = RoutesState;
    fn absent_reason(&self) -> String {
        format!("added once {} exists", self.table)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("routes", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.table.clone()];
        d.extend(self.routes.iter().map(|r| r.target.clone()));
        d.sort();
        d.dedup();
        d
    }
    fn desired(&self, i: &Outputs) -> Result<RoutesState, TaskError> {
        let mut routes = Vec::new();
        for r in &self.routes {
            routes.push(RouteInfo {
                destination: r.destination.clone(),
                target: i.id(&r.target)?,
            });
        }
        routes.sort();
        Ok(RoutesState {
            table_id: i.id(&self.table)?,
            routes,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a RoutesState,
    ) -> BoxFuture<'a, Result<Option<Found<RoutesState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.table_id) {
                return Ok(None);
            }
            Ok(table(cx, &d.table_id).await?.map(|t| {
                let mut routes = t.routes;
                routes.sort();
                Found {
                    state: RoutesState {
                        table_id: t.id.clone(),
                        routes,
                    },
                    outputs: out_id(&t.id),
                }
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a RoutesState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            // Independent of each other: all at once.
            futures::future::try_join_all(d.routes.iter().map(|r| cx.create_route(&d.table_id, r)))
                .await?;
            Ok(out_id(&d.table_id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<RoutesState>,
        d: &'a RoutesState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = &d.table_id;
            // A route to a wrong target is replaced: delete, then create.
            let stale = a.state.routes.iter().filter(|r| !d.routes.contains(r));
            futures::future::try_join_all(stale.map(|r| cx.delete_route(id, &r.destination)))
                .await?;
            let missing = d.routes.iter().filter(|r| !a.state.routes.contains(r));
            futures::future::try_join_all(missing.map(|r| cx.create_route(id, r))).await?;
            Ok(OutputMap::new())
        })
    }
}

/// The subnets a table is associated with.
pub struct RouteTableAssociations {
    /// The table's logical name.
    pub name: String,
    pub table: TaskKey,
    pub subnets: Vec<TaskKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssociationsState {
    #[serde(skip)]
    pub table_id: String,
    pub subnets: Vec<String>,
}

impl<C: RouteTables> Resource<C> for RouteTableAssociations {
    type State = AssociationsState;
    fn absent_reason(&self) -> String {
        format!("associated once {} exists", self.table)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("rt-assoc", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.table.clone()];
        d.extend(self.subnets.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn desired(&self, i: &Outputs) -> Result<AssociationsState, TaskError> {
        let mut subnets = Vec::new();
        for s in &self.subnets {
            subnets.push(i.id(s)?);
        }
        subnets.sort();
        Ok(AssociationsState {
            table_id: i.id(&self.table)?,
            subnets,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a AssociationsState,
    ) -> BoxFuture<'a, Result<Option<Found<AssociationsState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.table_id) {
                return Ok(None);
            }
            Ok(table(cx, &d.table_id).await?.map(|t| {
                let mut subnets: Vec<String> =
                    t.associations.iter().map(|(_, s)| s.clone()).collect();
                subnets.sort();
                let mut outputs = out_id(&t.id);
                for (assoc, subnet) in &t.associations {
                    outputs.insert(format!("assoc:{subnet}"), assoc.clone());
                }
                Found {
                    state: AssociationsState {
                        table_id: t.id.clone(),
                        subnets,
                    },
                    outputs,
                }
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a AssociationsState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            futures::future::try_join_all(
                d.subnets
                    .iter()
                    .map(|s| cx.associate_route_table(&d.table_id, s)),
            )
            .await?;
            Ok(out_id(&d.table_id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<AssociationsState>,
        d: &'a AssociationsState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let gone = a
                .state
                .subnets
                .iter()
                .filter(|s| !d.subnets.contains(s))
                .filter_map(|s| a.outputs.get(&format!("assoc:{s}")));
            futures::future::try_join_all(gone.map(|assoc| cx.disassociate_route_table(assoc)))
                .await?;
            let missing = d.subnets.iter().filter(|s| !a.state.subnets.contains(s));
            futures::future::try_join_all(
                missing.map(|s| cx.associate_route_table(&d.table_id, s)),
            )
            .await?;
            Ok(OutputMap::new())
        })
    }
}
