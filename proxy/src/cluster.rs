//! CLUSTER replies: the proxy's listeners advertised as the masters of a Redis cluster.
//!
//! Shapes follow a real Redis 7.0 cluster (CLUSTER SLOTS with an empty metadata map, SHARDS
//! as maps, NODES and INFO as verbatim text in RESP3). The slots a listener advertises are
//! the ones node-scoped commands on it cover. Nothing about the topology can be changed over
//! RESP: the cluster file owns it.

use crate::proxy::Listener;
use crate::router::{Pending, Target};
use bytes::Bytes;
use fjord_common::client::help;
use fjord_common::command::Resolved;
use fjord_common::number::parse_usize;
use fjord_common::topology::{node_id, Endpoint, Node, Topology};
use fjord_common::{error, slot_of, Reply, SLOT_COUNT};

/// Answers `CLUSTER <sub>` for a client that came through `listener`.
pub async fn cluster(target: &Target, listener: Listener, r: Resolved, args: &[Bytes]) -> Pending {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("cluster")).into();
    };
    let t = &target.routing.topology;
    let reply = match sub.name {
        "slots" => slots(t),
        "shards" => shards(t),
        "nodes" => Reply::Verbatim(Bytes::from(nodes(t, listener))),
        "info" => Reply::Verbatim(Bytes::from(info(target))),
        "myid" => Reply::text(match listener {
            Listener::Cluster(i) => t.nodes[i].endpoint.id.clone(),
            Listener::Replica(i) => t.nodes[i].replica.as_ref().map_or_else(String::new, |r| r.id.clone()),
            Listener::Standalone => t
                .standalone
                .map_or_else(String::new, |a| node_id(&a.ip().to_string(), a.port())),
        }),
        "keyslot" => Reply::Int(i64::from(slot_of(&args[2]))),
        // The slot's owner answers; a malformed slot goes to any shard for Redis's error text.
        "countkeysinslot" | "getkeysinslot" => {
            let shard = parse_usize(&args[2])
                .filter(|&s| s < usize::from(SLOT_COUNT))
                .map_or(0, |s| t.owner(s as u16));
            return target.send(shard, args).await;
        }
        "links" => Reply::Array(vec![]),
        "replicas" | "slaves" => match t.nodes.iter().position(|n| n.endpoint.id.as_bytes() == &args[2][..]) {
            Some(i) => Reply::Array(
                node_lines(t, listener)
                    .into_iter()
                    .filter(|(of, _)| *of == Some(i))
                    .map(|(_, line)| Reply::text(line))
                    .collect(),
            ),
            None if t.nodes.iter().any(|n| n.replica.as_ref().is_some_and(|r| r.id.as_bytes() == &args[2][..])) => {
                Reply::error("ERR The specified node is not a master")
            }
            None => unknown_node(&args[2]),
        },
        "count-failure-reports" => match known_ids(t).any(|id| id.as_bytes() == &args[2][..]) {
            true => Reply::Int(0),
            false => unknown_node(&args[2]),
        },
        "help" => help(&[
            "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "COUNTKEYSINSLOT <slot>",
            "    Return the number of keys in <slot>.",
            "GETKEYSINSLOT <slot> <count>",
            "    Return key names stored by current node in a slot.",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "LINKS",
            "    Return information about all network links between this node and its peers.",
            "MYID",
            "    Return the node id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
            "SHARDS",
            "    Return information about slot range mappings and the nodes associated with them.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, master and replicas IP addresses, ports and ids",
            "(fjord: the topology is owned by the cluster file; MEET, ADDSLOTS, SETSLOT and the",
            "other subcommands that change it are refused)",
            "HELP",
            "    Print this help.",
        ]),
        other => Reply::error(format!(
            "ERR CLUSTER {} is not supported by fjord: the topology is owned by the cluster file; \
             edit it and reload (it is watched; or SIGHUP, or POST /topology/reload on the admin port)",
            other.to_ascii_uppercase()
        )),
    };
    reply.into()
}

fn unknown_node(id: &[u8]) -> Reply {
    Reply::error(format!("ERR Unknown node {}", String::from_utf8_lossy(id)))
}

/// Every advertised node id: masters and replica listeners.
fn known_ids(t: &Topology) -> impl Iterator<Item = &str> {
    t.nodes.iter().flat_map(|n| {
        std::iter::once(n.endpoint.id.as_str()).chain(n.replica.as_ref().map(|r| r.id.as_str()))
    })
}

/// A node as CLUSTER SLOTS lists it: ip, port, id, and an empty metadata map.
fn slots_node(e: &Endpoint) -> Reply {
    Reply::Array(vec![
        Reply::text(e.host.clone()),
        Reply::Int(i64::from(e.port)),
        Reply::text(e.id.clone()),
        Reply::Map(vec![]),
    ])
}

fn slots(t: &Topology) -> Reply {
    let mut ranges: Vec<(u16, u16, &Node)> = t
        .nodes
        .iter()
        .flat_map(|n| n.slots.ranges().iter().map(move |r| (r.start, r.end, n)))
        .collect();
    ranges.sort_by_key(|r| r.0);
    Reply::Array(
        ranges
            .into_iter()
            .map(|(start, end, n)| {
                let mut range = vec![
                    Reply::Int(i64::from(start)),
                    Reply::Int(i64::from(end)),
                    slots_node(&n.endpoint),
                ];
                range.extend(n.replica.as_ref().map(slots_node));
                Reply::Array(range)
            })
            .collect(),
    )
}

fn shards(t: &Topology) -> Reply {
    Reply::Array(
        t.nodes
            .iter()
            .map(|n| {
                let slot_bounds = n
                    .slots
                    .ranges()
                    .iter()
                    .flat_map(|r| [Reply::Int(i64::from(r.start)), Reply::Int(i64::from(r.end))])
                    .collect();
                let node = |e: &Endpoint, role: &'static str| {
                    Reply::Map(vec![
                        (Reply::text("id"), Reply::text(e.id.clone())),
                        (Reply::text("port"), Reply::Int(i64::from(e.port))),
                        (Reply::text("ip"), Reply::text(e.host.clone())),
                        (Reply::text("endpoint"), Reply::text(e.host.clone())),
                        (Reply::text("role"), Reply::text(role)),
                        (Reply::text("replication-offset"), Reply::Int(0)),
                        (Reply::text("health"), Reply::text("online")),
                    ])
                };
                let mut nodes = vec![node(&n.endpoint, "master")];
                nodes.extend(n.replica.as_ref().map(|r| node(r, "replica")));
                Reply::Map(vec![
                    (Reply::text("slots"), Reply::Array(slot_bounds)),
                    (Reply::text("nodes"), Reply::Array(nodes)),
                ])
            })
            .collect(),
    )
}

/// CLUSTER NODES: one line per listener, `\n`-terminated, `myself` on the one reached.
fn nodes(t: &Topology, reached: Listener) -> String {
    let mut out = String::new();
    for (_, line) in node_lines(t, reached) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The lines of CLUSTER NODES, each with the master index it is a replica of (`None` for a
/// master): masters, each followed by its replica listener.
fn node_lines(t: &Topology, reached: Listener) -> Vec<(Option<usize>, String)> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let bus = |port: u16| match u32::from(port) + 10000 {
        p if p > 65535 => 0,
        p => p,
    };
    let mut out = Vec::new();
    for (i, n) in t.nodes.iter().enumerate() {
        let flags = match reached == Listener::Cluster(i) {
            true => "myself,master",
            false => "master",
        };
        let ranges: Vec<String> = n
            .slots
            .ranges()
            .iter()
            .map(|r| match r.start == r.end {
                true => r.start.to_string(),
                false => format!("{}-{}", r.start, r.end),
            })
            .collect();
        out.push((
            None,
            format!(
                "{} {}:{}@{} {flags} - 0 {now_ms} {} connected {}",
                n.endpoint.id,
                n.endpoint.host,
                n.endpoint.port,
                bus(n.endpoint.port),
                t.version,
                ranges.join(" ")
            ),
        ));
        if let Some(r) = &n.replica {
            let flags = match reached == Listener::Replica(i) {
                true => "myself,slave",
                false => "slave",
            };
            out.push((
                Some(i),
                format!(
                    "{} {}:{}@{} {flags} {} 0 {now_ms} {} connected",
                    r.id,
                    r.host,
                    r.port,
                    bus(r.port),
                    n.endpoint.id,
                    t.version,
                ),
            ));
        }
    }
    out
}

/// CLUSTER INFO. Slots whose shard is unreachable count as `pfail`: they fail until it is back.
fn info(target: &Target) -> String {
    let t = &target.routing.topology;
    let down: usize = t
        .shards
        .iter()
        .zip(&target.routing.backends)
        .filter(|(_, b)| !b.is_up())
        .map(|(s, _)| s.slots.len())
        .sum();
    let nodes = t.nodes.len();
    let known = known_ids(t).count();
    format!(
        "cluster_state:ok\r\ncluster_slots_assigned:{SLOT_COUNT}\r\ncluster_slots_ok:{}\r\n\
         cluster_slots_pfail:{down}\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{known}\r\n\
         cluster_size:{nodes}\r\ncluster_current_epoch:{v}\r\ncluster_my_epoch:{v}\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n",
        usize::from(SLOT_COUNT) - down,
        v = t.version,
    )
}
