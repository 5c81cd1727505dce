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
use fjord_common::topology::{node_id, Node, Topology};
use fjord_common::{error, slot_of, Reply, SLOT_COUNT};

/// Answers `CLUSTER <sub>` for a client that came through `listener`.
pub async fn cluster(target: &Target, listener: Listener, r: Resolved, args: &[Bytes]) -> Pending {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("cluster")).into();
    };
    let t = &target.routing.topology;
    let myself = match listener {
        Listener::Cluster(i) => Some(i),
        Listener::Standalone => None,
    };
    let reply = match sub.name {
        "slots" => slots(t),
        "shards" => shards(t),
        "nodes" => Reply::Verbatim(Bytes::from(nodes(t, myself))),
        "info" => Reply::Verbatim(Bytes::from(info(target))),
        "myid" => Reply::text(match myself {
            Some(i) => t.nodes[i].id.clone(),
            None => t
                .standalone
                .map_or_else(String::new, |a| node_id(&a.ip().to_string(), a.port())),
        }),
        "keyslot" => Reply::Int(i64::from(slot_of(&args[2]))),
        // The slot's owner answers; a malformed slot goes to any shard for Redis's error text.
        "countkeysinslot" | "getkeysinslot" => {
            let shard = parse_usize(&args[2])
                .filter(|&s| s < usize::from(SLOT_COUNT))
                .map_or(0, |s| t.owner(s as u16));
            return target.send(shard, args.to_vec()).await;
        }
        "links" => Reply::Array(vec![]),
        "replicas" | "slaves" | "count-failure-reports" => {
            match t.nodes.iter().any(|n| n.id.as_bytes() == &args[2][..]) {
                true if sub.name == "count-failure-reports" => Reply::Int(0),
                true => Reply::Array(vec![]),
                false => Reply::error(format!(
                    "ERR Unknown node {}",
                    String::from_utf8_lossy(&args[2])
                )),
            }
        }
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

/// A node as CLUSTER SLOTS lists it: ip, port, id, and an empty metadata map.
fn slots_node(n: &Node) -> Reply {
    Reply::Array(vec![
        Reply::text(n.host.clone()),
        Reply::Int(i64::from(n.port)),
        Reply::text(n.id.clone()),
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
                Reply::Array(vec![
                    Reply::Int(i64::from(start)),
                    Reply::Int(i64::from(end)),
                    slots_node(n),
                ])
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
                let node = Reply::Map(vec![
                    (Reply::text("id"), Reply::text(n.id.clone())),
                    (Reply::text("port"), Reply::Int(i64::from(n.port))),
                    (Reply::text("ip"), Reply::text(n.host.clone())),
                    (Reply::text("endpoint"), Reply::text(n.host.clone())),
                    (Reply::text("role"), Reply::text("master")),
                    (Reply::text("replication-offset"), Reply::Int(0)),
                    (Reply::text("health"), Reply::text("online")),
                ]);
                Reply::Map(vec![
                    (Reply::text("slots"), Reply::Array(slot_bounds)),
                    (Reply::text("nodes"), Reply::Array(vec![node])),
                ])
            })
            .collect(),
    )
}

/// CLUSTER NODES: one line per listener, `\n`-terminated, `myself` on the one reached.
fn nodes(t: &Topology, myself: Option<usize>) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut out = String::new();
    for (i, n) in t.nodes.iter().enumerate() {
        let flags = if myself == Some(i) {
            "myself,master"
        } else {
            "master"
        };
        let bus_port = u32::from(n.port) + 10000;
        let bus_port = if bus_port > 65535 { 0 } else { bus_port };
        let ranges: Vec<String> = n
            .slots
            .ranges()
            .iter()
            .map(|r| match r.start == r.end {
                true => r.start.to_string(),
                false => format!("{}-{}", r.start, r.end),
            })
            .collect();
        out.push_str(&format!(
            "{} {}:{}@{bus_port} {flags} - 0 {now_ms} {} connected {}\n",
            n.id,
            n.host,
            n.port,
            t.version,
            ranges.join(" ")
        ));
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
    format!(
        "cluster_state:ok\r\ncluster_slots_assigned:{SLOT_COUNT}\r\ncluster_slots_ok:{}\r\n\
         cluster_slots_pfail:{down}\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{nodes}\r\n\
         cluster_size:{nodes}\r\ncluster_current_epoch:{v}\r\ncluster_my_epoch:{v}\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n",
        usize::from(SLOT_COUNT) - down,
        v = t.version,
    )
}
