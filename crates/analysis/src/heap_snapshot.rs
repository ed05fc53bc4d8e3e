//! Two V8 heap snapshots of one isolate compared, as MemLab does: the objects of the late
//! snapshot whose ids are newer than every id of the early one were allocated between the
//! snapshots and are still alive. They are counted per constructor (an object's node name;
//! for a closure its function name and where it is defined), beside every instance of the
//! same group in each snapshot, and for the groups that grew most the shortest retainer path
//! from the GC roots to one of their new objects names what holds them
//! (`(closure context).cache → Map.table → …`).
//!
//! `leakscope run` reads the snapshots the Node.js preload wrote (`.heapsnapshot` files,
//! V8's JSON: `snapshot.meta`, `nodes`, `edges`, `locations`, `strings`), stores a
//! [`HeapGrowth`] in the profile as a `heap_growth` record and deletes the files
//! (docs/decisions/0014-node.md). Parsing happens there, not in the program: a snapshot is
//! tens of MB of JSON, and parsing it in the program's own isolate would grow the heap that
//! is measured.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Groups listed: those that grew most, by bytes.
pub const GROUPS_LISTED: usize = 10;

/// Retainer paths searched: for the first this many of the listed groups.
pub const PATHS_SEARCHED: usize = 5;

/// A group is growing when its live bytes rose by at least this much between the snapshots
/// (and its instances by at least [`MIN_GROWTH_INSTANCES`]): node's own start-up leaves a few
/// KiB of compiled code, strings and feedback behind between any two snapshots.
pub const MIN_GROWTH_BYTES: u64 = 64 * 1024;

/// ... and its instances by at least this many.
pub const MIN_GROWTH_INSTANCES: u64 = 100;

/// Steps of a retainer path kept: a path longer than this is cut at the object's end.
const PATH_STEPS_KEPT: usize = 24;

/// A V8 heap snapshot, as its arrays.
pub struct HeapSnapshot {
    nodes: Vec<u64>,
    edges: Vec<u64>,
    strings: Vec<String>,
    node_types: Vec<String>,
    edge_types: Vec<String>,
    /// Fields per node and per edge, and where each one we read is.
    node_width: usize,
    node_type: usize,
    node_name: usize,
    node_id: usize,
    node_self_size: usize,
    node_edge_count: usize,
    edge_width: usize,
    edge_type: usize,
    edge_name: usize,
    edge_to: usize,
    /// Each node's first edge (an index into `edges`, in edge units); one more at the end.
    first_edge: Vec<usize>,
    /// A closure's (script id, line, column), 0-based, by node ordinal.
    locations: BTreeMap<usize, (u64, u64, u64)>,
}

#[derive(Deserialize)]
struct RawSnapshot {
    snapshot: RawHeader,
    nodes: Vec<u64>,
    edges: Vec<u64>,
    #[serde(default)]
    locations: Vec<u64>,
    strings: Vec<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    meta: RawMeta,
}

#[derive(Deserialize)]
struct RawMeta {
    node_fields: Vec<String>,
    /// The first entry lists the node types; the others name the fields' kinds.
    node_types: Vec<serde_json::Value>,
    edge_fields: Vec<String>,
    edge_types: Vec<serde_json::Value>,
    #[serde(default)]
    location_fields: Vec<String>,
}

fn field(fields: &[String], name: &str) -> Result<usize, String> {
    fields
        .iter()
        .position(|f| f == name)
        .ok_or_else(|| format!("the snapshot's meta has no '{name}' field"))
}

fn type_names(types: &[serde_json::Value]) -> Vec<String> {
    types
        .first()
        .and_then(|t| t.as_array())
        .map(|names| {
            names
                .iter()
                .map(|n| n.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// One step of a retainer path: the edge from `holder` that leads to the next object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainerStep {
    /// The holding object's name (its constructor, `(closure context)`, `(GC roots)`).
    pub holder: String,
    /// V8's edge type: `property`, `element`, `context`, `internal`, `hidden`, `shortcut`.
    pub edge_type: String,
    /// The field, variable or index.
    pub edge: String,
}

impl RetainerStep {
    /// Is the edge an index (an element, or an internal slot of a table)?
    pub fn is_index(&self) -> bool {
        matches!(self.edge_type.as_str(), "element" | "hidden")
            || (!self.edge.is_empty() && self.edge.bytes().all(|b| b.is_ascii_digit()))
    }

    /// `Class.field`, `Array[index]`, `(closure context).variable`.
    pub fn label(&self) -> String {
        if self.is_index() {
            format!("{}[{}]", self.holder, self.edge)
        } else {
            format!("{}.{}", self.holder, self.edge)
        }
    }
}

/// Instances and their self sizes (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub instances: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.instances += 1;
        self.bytes += bytes;
    }
}

/// Where a closure's function is defined (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceLocation {
    /// The script's URL or path (empty if the snapshot does not say).
    pub url: String,
    pub line: u32,
    pub column: u32,
}

/// The instances of one constructor (or closure) in both snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupGrowth {
    /// The constructor's name (`Request`, `Object`, `Array`), a closure's function name, or
    /// V8's name for a kind of value (`(string)`, `(number)`).
    pub name: String,
    /// `object`, `closure`, `string`, `number`, `regexp`, `symbol`, `bigint`.
    pub kind: String,
    /// A closure's: where its function is defined.
    pub location: Option<SourceLocation>,
    /// In the early snapshot.
    pub before: Count,
    /// In the late snapshot.
    pub after: Count,
    /// Of `after`, those allocated after the early snapshot (ids newer than all of its).
    pub new: Count,
    /// Bytes rose by [`MIN_GROWTH_BYTES`] and instances by [`MIN_GROWTH_INSTANCES`].
    pub growing: bool,
    /// The shortest path from the GC roots to one of the new instances (to one of the
    /// instances if none is new), outermost first; empty if none was searched or found. Of
    /// the instances' last steps (the holder's name and the edge's type: `Map.table[…]`,
    /// `Request.…`), the one most of them share is chosen, then the nearest instance held that way: a few instances that the
    /// stack happens to hold do not stand for the group.
    pub retainer_path: Vec<RetainerStep>,
    /// How many of those instances are held by that last step.
    pub held_alike: u64,
}

/// The comparison of an isolate's two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeapGrowth {
    /// Nodes of each snapshot.
    pub nodes_before: u64,
    pub nodes_after: u64,
    /// The groups whose bytes rose most, at most [`GROUPS_LISTED`], largest rise first.
    pub groups: Vec<GroupGrowth>,
}

/// The name of a node that holds others, as a retainer path shows it.
fn holder_name(kind: &str, name: &str) -> String {
    match (kind, name) {
        (_, "system / Context") => "(closure context)".to_owned(),
        ("closure", "") => "(anonymous)()".to_owned(),
        ("closure", _) => format!("{name}()"),
        ("array", "") => "(array)".to_owned(),
        // The global object: `global / <its URL>`, empty in node.
        (_, name) if name.starts_with("global / ") => "global".to_owned(),
        (_, "") => format!("({kind})"),
        _ => name.to_owned(),
    }
}

impl HeapSnapshot {
    /// Parse a snapshot's JSON.
    pub fn parse(json: &[u8]) -> Result<HeapSnapshot, String> {
        let raw: RawSnapshot = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let meta = &raw.snapshot.meta;
        let node_width = meta.node_fields.len();
        let edge_width = meta.edge_fields.len();
        if node_width == 0 || edge_width == 0 || !raw.nodes.len().is_multiple_of(node_width) {
            return Err("the snapshot's nodes do not match its meta".to_owned());
        }
        let mut snapshot = HeapSnapshot {
            node_type: field(&meta.node_fields, "type")?,
            node_name: field(&meta.node_fields, "name")?,
            node_id: field(&meta.node_fields, "id")?,
            node_self_size: field(&meta.node_fields, "self_size")?,
            node_edge_count: field(&meta.node_fields, "edge_count")?,
            edge_type: field(&meta.edge_fields, "type")?,
            edge_name: field(&meta.edge_fields, "name_or_index")?,
            edge_to: field(&meta.edge_fields, "to_node")?,
            node_width,
            edge_width,
            node_types: type_names(&meta.node_types),
            edge_types: type_names(&meta.edge_types),
            first_edge: Vec::new(),
            locations: BTreeMap::new(),
            nodes: raw.nodes,
            edges: raw.edges,
            strings: raw.strings,
        };
        let count = snapshot.node_count();
        let mut first = Vec::with_capacity(count + 1);
        let mut next = 0usize;
        for node in 0..count {
            first.push(next);
            next += snapshot.node_field(node, snapshot.node_edge_count) as usize;
        }
        first.push(next);
        if next * edge_width != snapshot.edges.len() {
            return Err("the snapshot's edges do not match its nodes' edge counts".to_owned());
        }
        snapshot.first_edge = first;
        if let (Ok(object), Ok(script), Ok(line), Ok(column)) = (
            field(&meta.location_fields, "object_index"),
            field(&meta.location_fields, "script_id"),
            field(&meta.location_fields, "line"),
            field(&meta.location_fields, "column"),
        ) {
            for location in raw.locations.chunks_exact(meta.location_fields.len()) {
                snapshot.locations.insert(
                    location[object] as usize / node_width,
                    (location[script], location[line], location[column]),
                );
            }
        }
        Ok(snapshot)
    }

    fn node_count(&self) -> usize {
        self.nodes.len() / self.node_width
    }

    fn node_field(&self, node: usize, field: usize) -> u64 {
        self.nodes[node * self.node_width + field]
    }

    fn kind(&self, node: usize) -> &str {
        let index = self.node_field(node, self.node_type) as usize;
        self.node_types.get(index).map_or("", String::as_str)
    }

    fn name(&self, node: usize) -> &str {
        let index = self.node_field(node, self.node_name) as usize;
        self.strings.get(index).map_or("", String::as_str)
    }

    fn id(&self, node: usize) -> u64 {
        self.node_field(node, self.node_id)
    }

    fn self_size(&self, node: usize) -> u64 {
        self.node_field(node, self.node_self_size)
    }

    /// Each edge of `node`: (type, the name or index as text, target node).
    fn edges_of(&self, node: usize) -> impl Iterator<Item = (&str, u64, usize)> + '_ {
        (self.first_edge[node]..self.first_edge[node + 1]).map(move |edge| {
            let at = edge * self.edge_width;
            let kind = self.edges[at + self.edge_type] as usize;
            let to = self.edges[at + self.edge_to] as usize / self.node_width;
            (
                self.edge_types.get(kind).map_or("", String::as_str),
                self.edges[at + self.edge_name],
                to,
            )
        })
    }

    /// An edge's name: its index for elements and hidden edges, its string otherwise.
    fn edge_label(&self, kind: &str, name_or_index: u64) -> String {
        match kind {
            "element" | "hidden" => name_or_index.to_string(),
            _ => self
                .strings
                .get(name_or_index as usize)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// The node a named edge of `node` leads to.
    fn follow(&self, node: usize, name: &str) -> Option<usize> {
        self.edges_of(node).find_map(|(kind, name_or_index, to)| {
            (kind != "element"
                && kind != "hidden"
                && self.strings.get(name_or_index as usize).map(String::as_str) == Some(name))
            .then_some(to)
        })
    }

    /// A closure's script URL: closure → `shared` → `script_or_debug_info` (`script` in
    /// older V8s) → the script, named by its URL (or by its `name` edge's string).
    fn script_url(&self, closure: usize) -> String {
        let Some(shared) = self.follow(closure, "shared") else {
            return String::new();
        };
        let Some(script) = self
            .follow(shared, "script_or_debug_info")
            .or_else(|| self.follow(shared, "script"))
        else {
            return String::new();
        };
        self.follow(script, "name")
            .filter(|&name| self.kind(name).contains("string"))
            .map_or_else(|| self.name(script), |name| self.name(name))
            .to_owned()
    }

    /// The group a node counts in: (kind, name, location), or none for V8's internals
    /// (hidden, array, code, synthetic, object shape and native nodes are not the
    /// program's objects).
    fn group_of(&self, node: usize) -> Option<(&'static str, String, Option<SourceLocation>)> {
        let kind = self.kind(node);
        Some(match kind {
            // V8's own structures (contexts, maps) are objects named `system / …`.
            "object" if self.name(node).starts_with("system / ") => return None,
            "object" => ("object", self.name(node).to_owned(), None),
            "closure" => {
                let location = self
                    .locations
                    .get(&node)
                    .map(|&(_, line, column)| SourceLocation {
                        url: self.script_url(node),
                        line: line as u32 + 1,
                        column: column as u32 + 1,
                    });
                let name = match self.name(node) {
                    "" => "(anonymous)".to_owned(),
                    name => name.to_owned(),
                };
                ("closure", name, location)
            }
            "string" | "concatenated string" | "sliced string" => {
                ("string", "(string)".to_owned(), None)
            }
            "number" => ("number", "(number)".to_owned(), None),
            "regexp" => ("regexp", "RegExp".to_owned(), None),
            "symbol" => ("symbol", "(symbol)".to_owned(), None),
            "bigint" => ("bigint", "(bigint)".to_owned(), None),
            _ => return None,
        })
    }

    /// Breadth first from the synthetic root (node 0): each node's parent edge
    /// (parent node, edge index), or none if it is not reached, and its distance from the
    /// root in edges. Weak edges do not retain; shortcut edges (V8's `global` links past the
    /// global proxy) only count from the root, as Chrome DevTools has it.
    fn retainers(&self) -> (Vec<Option<(usize, usize)>>, Vec<u32>) {
        let mut parent: Vec<Option<(usize, usize)>> = vec![None; self.node_count()];
        let mut distance = vec![u32::MAX; self.node_count()];
        if self.node_count() == 0 {
            return (parent, distance);
        }
        let mut seen = vec![false; self.node_count()];
        seen[0] = true;
        distance[0] = 0;
        let mut queue = VecDeque::from([0usize]);
        while let Some(node) = queue.pop_front() {
            for edge in self.first_edge[node]..self.first_edge[node + 1] {
                let at = edge * self.edge_width;
                let kind = self
                    .edge_types
                    .get(self.edges[at + self.edge_type] as usize)
                    .map_or("", String::as_str);
                if kind == "weak" || (kind == "shortcut" && node != 0) {
                    continue;
                }
                let to = self.edges[at + self.edge_to] as usize / self.node_width;
                if to < seen.len() && !seen[to] {
                    seen[to] = true;
                    parent[to] = Some((node, edge));
                    distance[to] = distance[node] + 1;
                    queue.push_back(to);
                }
            }
        }
        (parent, distance)
    }

    /// The step of `edge` from `from`.
    fn step(&self, from: usize, edge: usize) -> RetainerStep {
        let base = edge * self.edge_width;
        let kind = self
            .edge_types
            .get(self.edges[base + self.edge_type] as usize)
            .map_or("", String::as_str);
        RetainerStep {
            holder: holder_name(self.kind(from), self.name(from)),
            edge_type: kind.to_owned(),
            edge: self.edge_label(kind, self.edges[base + self.edge_name]),
        }
    }

    /// The path from the root to `node` through `parent`, outermost first.
    fn path_to(&self, node: usize, parent: &[Option<(usize, usize)>]) -> Vec<RetainerStep> {
        let mut steps = Vec::new();
        let mut at = node;
        while let Some((from, edge)) = parent[at] {
            if from != 0 {
                steps.push(self.step(from, edge));
            }
            at = from;
        }
        steps.reverse();
        if steps.len() > PATH_STEPS_KEPT {
            steps.drain(..steps.len() - PATH_STEPS_KEPT);
        }
        steps
    }
}

/// A group's key: (kind, name, a closure's location).
type GroupKey = (&'static str, String, Option<SourceLocation>);

/// What a comparison needs of the early snapshot: its groups' counts, its node count and its
/// newest id. Taken before the late snapshot is read, so that only one parsed snapshot is
/// in memory at a time (a snapshot of a 50 MiB heap is about 100 MB of JSON and as much
/// parsed).
pub struct Baseline {
    nodes: u64,
    newest_id: u64,
    groups: BTreeMap<GroupKey, Count>,
}

impl Baseline {
    /// The baseline of `early`.
    pub fn of(early: &HeapSnapshot) -> Baseline {
        let mut groups: BTreeMap<GroupKey, Count> = BTreeMap::new();
        for node in 0..early.node_count() {
            if let Some(key) = early.group_of(node) {
                groups.entry(key).or_default().add(early.self_size(node));
            }
        }
        Baseline {
            nodes: early.node_count() as u64,
            // Only V8's heap objects have ids that V8 keeps across snapshots: the embedder's
            // (native) and synthetic nodes have ids of their own, as large as addresses.
            newest_id: (0..early.node_count())
                .filter(|&n| !matches!(early.kind(n), "native" | "synthetic"))
                .map(|n| early.id(n))
                .max()
                .unwrap_or(0),
            groups,
        }
    }
}

/// Compare an isolate's `late` snapshot with the [`Baseline`] of an earlier one.
pub fn compare(early: &Baseline, late: &HeapSnapshot) -> HeapGrowth {
    let before = &early.groups;
    let newest_early = early.newest_id;
    // (after, new, a new instance or else any instance: ordinals in `late`).
    let mut after: BTreeMap<GroupKey, (Count, Count, Vec<usize>, Option<usize>)> = BTreeMap::new();
    for node in 0..late.node_count() {
        let Some(key) = late.group_of(node) else {
            continue;
        };
        let entry = after.entry(key).or_default();
        let size = late.self_size(node);
        entry.0.add(size);
        if late.id(node) > newest_early {
            entry.1.add(size);
            entry.2.push(node);
        } else if entry.3.is_none() {
            entry.3 = Some(node);
        }
    }
    let mut groups: Vec<(GroupGrowth, Vec<usize>)> = after
        .into_iter()
        .map(|(key, (after_count, new, new_nodes, any))| {
            let before_count = before.get(&key).copied().unwrap_or_default();
            let (kind, name, location) = key;
            let growing = after_count.bytes >= before_count.bytes + MIN_GROWTH_BYTES
                && after_count.instances >= before_count.instances + MIN_GROWTH_INSTANCES;
            let candidates = if new_nodes.is_empty() {
                any.into_iter().collect()
            } else {
                new_nodes
            };
            (
                GroupGrowth {
                    name,
                    kind: kind.to_owned(),
                    location,
                    before: before_count,
                    after: after_count,
                    new,
                    growing,
                    retainer_path: Vec::new(),
                    held_alike: 0,
                },
                candidates,
            )
        })
        .filter(|(group, _)| group.after.bytes > group.before.bytes)
        .collect();
    groups.sort_by(|(a, _), (b, _)| {
        let rise = |g: &GroupGrowth| g.after.bytes - g.before.bytes;
        rise(b)
            .cmp(&rise(a))
            .then_with(|| (&a.name, &a.location).cmp(&(&b.name, &b.location)))
    });
    groups.truncate(GROUPS_LISTED);
    if !groups.is_empty() {
        let (parent, distance) = late.retainers();
        for (group, candidates) in groups.iter_mut().take(PATHS_SEARCHED) {
            // Instances by their last step: the holder's name and the edge's type (not its
            // name: a dictionary's keys are property names, one per entry).
            let mut by_step: BTreeMap<(String, String), (u64, usize)> = BTreeMap::new();
            for &node in candidates.iter() {
                let Some((from, edge)) = parent[node] else {
                    continue;
                };
                let step = late.step(from, edge);
                let key = (step.holder, step.edge_type);
                let entry = by_step.entry(key).or_insert((0, node));
                entry.0 += 1;
                if (distance[node], node) < (distance[entry.1], entry.1) {
                    entry.1 = node;
                }
            }
            let shared = by_step
                .into_values()
                .max_by_key(|&(count, node)| (count, std::cmp::Reverse(distance[node])));
            if let Some((count, node)) = shared {
                group.retainer_path = late.path_to(node, &parent);
                group.held_alike = count;
            }
        }
    }
    HeapGrowth {
        nodes_before: early.nodes,
        nodes_after: late.node_count() as u64,
        groups: groups.into_iter().map(|(group, _)| group).collect(),
    }
}

/// The retainer path as one line: `(GC roots).… → Map.table → Request`.
pub fn path_text(group: &GroupGrowth) -> String {
    let mut parts: Vec<String> = group
        .retainer_path
        .iter()
        .map(RetainerStep::label)
        .collect();
    parts.push(group.name.clone());
    parts.join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (type, name, id, self size, edges: (type, name or index, target node ordinal)).
    type Node<'a> = (&'a str, &'a str, u64, u64, Vec<(&'a str, &'a str, usize)>);

    const NODE_TYPES: [&str; 10] = [
        "hidden",
        "array",
        "string",
        "object",
        "code",
        "closure",
        "regexp",
        "number",
        "native",
        "synthetic",
    ];
    const EDGE_TYPES: [&str; 7] = [
        "context", "element", "property", "internal", "hidden", "shortcut", "weak",
    ];

    /// A snapshot in V8's JSON layout (7 node fields, 3 edge fields, as node 20 writes it).
    fn snapshot(nodes: &[Node], locations: &[[u64; 4]]) -> HeapSnapshot {
        let mut strings: Vec<String> = Vec::new();
        let mut string = |text: &str| {
            let at = strings.iter().position(|s| s == text).unwrap_or_else(|| {
                strings.push(text.to_owned());
                strings.len() - 1
            });
            at as u64
        };
        let (mut flat_nodes, mut flat_edges) = (Vec::new(), Vec::new());
        for (kind, name, id, size, edges) in nodes {
            let kind = NODE_TYPES.iter().position(|t| t == kind).unwrap() as u64;
            flat_nodes.extend([kind, string(name), *id, *size, edges.len() as u64, 0, 0]);
            for (edge_kind, name, to) in edges {
                let name_or_index = match *edge_kind {
                    "element" | "hidden" => name.parse().unwrap(),
                    _ => string(name),
                };
                let edge_kind = EDGE_TYPES.iter().position(|t| t == edge_kind).unwrap() as u64;
                flat_edges.extend([edge_kind, name_or_index, *to as u64 * 7]);
            }
        }
        let json = serde_json::json!({
            "snapshot": {"meta": {
                "node_fields": ["type", "name", "id", "self_size", "edge_count", "trace_node_id", "detachedness"],
                "node_types": [NODE_TYPES, "string", "number", "number", "number", "number", "number"],
                "edge_fields": ["type", "name_or_index", "to_node"],
                "edge_types": [EDGE_TYPES, "string_or_number", "node"],
                "location_fields": ["object_index", "script_id", "line", "column"],
            }, "node_count": nodes.len(), "edge_count": flat_edges.len() / 3},
            "nodes": flat_nodes,
            "edges": flat_edges,
            "locations": locations.iter().flatten().collect::<Vec<_>>(),
            "strings": strings,
        });
        HeapSnapshot::parse(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn new_instances_are_counted_per_constructor_with_their_shortest_retainer_path() {
        let early = snapshot(
            &[
                (
                    "synthetic",
                    "",
                    1,
                    0,
                    vec![("shortcut", "global", 1), ("element", "1", 2)],
                ),
                (
                    "object",
                    "global / ",
                    11,
                    24,
                    vec![("property", "cache", 3)],
                ),
                ("synthetic", "(GC roots)", 3, 0, vec![]),
                ("object", "Map", 21, 32, vec![("internal", "table", 4)]),
                ("array", "", 23, 16, vec![("internal", "0", 5)]),
                ("object", "Request", 31, 40, vec![]),
                ("object", "Dropped", 29, 400, vec![]),
                // The embedder's ids are not V8's: this one says nothing of what is new.
                ("native", "Node / Buffer", 999_999, 8, vec![]),
            ],
            &[],
        );
        let late = snapshot(
            &[
                (
                    "synthetic",
                    "",
                    1,
                    0,
                    vec![("shortcut", "global", 1), ("element", "1", 2)],
                ),
                (
                    "object",
                    "global / ",
                    11,
                    24,
                    // A weak edge retains nothing: were it followed, it would be the
                    // shortest path to the second Request.
                    vec![
                        ("property", "cache", 3),
                        ("property", "handle", 8),
                        ("weak", "w", 6),
                    ],
                ),
                ("synthetic", "(GC roots)", 3, 0, vec![]),
                ("object", "Map", 21, 32, vec![("internal", "table", 4)]),
                (
                    "array",
                    "",
                    23,
                    32,
                    vec![
                        ("internal", "0", 5),
                        ("internal", "1", 6),
                        ("internal", "2", 7),
                    ],
                ),
                ("object", "Request", 31, 40, vec![]),
                ("object", "Request", 41, 40, vec![]),
                ("object", "Request", 43, 40, vec![]),
                (
                    "closure",
                    "handle",
                    51,
                    32,
                    vec![("internal", "context", 9), ("internal", "shared", 11)],
                ),
                (
                    "object",
                    "system / Context",
                    53,
                    48,
                    vec![("context", "cache", 3)],
                ),
                // Garbage the snapshot kept (V8 lists what it did not collect): counted,
                // but on no retainer path.
                ("object", "Request", 45, 40, vec![]),
                (
                    "code",
                    "handle",
                    55,
                    56,
                    vec![("internal", "script_or_debug_info", 12)],
                ),
                ("code", "/app/server.js", 57, 80, vec![]),
            ],
            &[[8 * 7, 3, 9, 16]],
        );
        let growth = compare(&Baseline::of(&early), &late);
        assert_eq!((growth.nodes_before, growth.nodes_after), (8, 13));
        let request = GroupGrowth {
            name: "Request".to_owned(),
            kind: "object".to_owned(),
            location: None,
            before: Count {
                instances: 1,
                bytes: 40,
            },
            after: Count {
                instances: 4,
                bytes: 160,
            },
            new: Count {
                instances: 3,
                bytes: 120,
            },
            // Far below MIN_GROWTH_BYTES and MIN_GROWTH_INSTANCES.
            growing: false,
            retainer_path: vec![
                RetainerStep {
                    holder: "global".to_owned(),
                    edge_type: "property".to_owned(),
                    edge: "cache".to_owned(),
                },
                RetainerStep {
                    holder: "Map".to_owned(),
                    edge_type: "internal".to_owned(),
                    edge: "table".to_owned(),
                },
                RetainerStep {
                    holder: "(array)".to_owned(),
                    edge_type: "internal".to_owned(),
                    edge: "1".to_owned(),
                },
            ],
            // Of the three new ones, two are in the table and one is held by nothing.
            held_alike: 2,
        };
        let handle = GroupGrowth {
            name: "handle".to_owned(),
            kind: "closure".to_owned(),
            location: Some(SourceLocation {
                url: "/app/server.js".to_owned(),
                line: 10,
                column: 17,
            }),
            before: Count::default(),
            after: Count {
                instances: 1,
                bytes: 32,
            },
            new: Count {
                instances: 1,
                bytes: 32,
            },
            growing: false,
            retainer_path: vec![RetainerStep {
                holder: "global".to_owned(),
                edge_type: "property".to_owned(),
                edge: "handle".to_owned(),
            }],
            held_alike: 1,
        };
        // `Dropped` shrank, V8's context is no constructor, the code and the native node
        // are not the program's objects.
        assert_eq!(growth.groups, vec![request, handle]);
        assert_eq!(
            path_text(&growth.groups[0]),
            "global.cache → Map.table → (array)[1] → Request"
        );
        assert_eq!(path_text(&growth.groups[1]), "global.handle → handle");
    }

    #[test]
    fn the_shared_last_step_beats_an_instance_the_stack_holds() {
        // One new `Item` is on the stack (one step from the roots), two are values of a
        // dictionary (an object whose property names are its keys, one per entry).
        let node = |kind, name, id, edges| (kind, name, id, 16, edges);
        let early = snapshot(&[node("synthetic", "", 1, vec![])], &[]);
        let late = snapshot(
            &[
                node(
                    "synthetic",
                    "",
                    1,
                    vec![("element", "1", 1), ("element", "2", 2)],
                ),
                node("synthetic", "(Stack roots)", 3, vec![("element", "0", 5)]),
                node("object", "global / ", 11, vec![("property", "items", 3)]),
                node("object", "Object", 13, vec![("internal", "properties", 4)]),
                node(
                    "array",
                    "",
                    15,
                    vec![("property", "request-1", 6), ("property", "request-2", 7)],
                ),
                node("object", "Item", 17, vec![]),
                node("object", "Item", 19, vec![]),
                node("object", "Item", 21, vec![]),
            ],
            &[],
        );
        let growth = compare(&Baseline::of(&early), &late);
        let item = growth.groups.iter().find(|g| g.name == "Item").unwrap();
        assert_eq!(item.held_alike, 2);
        assert_eq!(
            path_text(item),
            "global.items → Object.properties → (array).request-1 → Item"
        );
    }

    #[test]
    fn a_snapshot_whose_edges_do_not_match_its_nodes_is_refused() {
        let json = br#"{"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count"],"node_types":[["object"]],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["property"]]}},"nodes":[0,0,1,8,2],"edges":[0,0,0],"strings":["a"]}"#;
        let error = HeapSnapshot::parse(json).err().unwrap();
        assert!(error.contains("edge counts"), "{error}");
    }
}
