//! Flink's `ExecutionGraph`, reduced to what deployment needs: the job's
//! tasks after chaining, their subtasks, and every channel between them.

use super::graph::{GraphError, JobGraph};
use crate::network::{GateKey, PartitionKey, Partitioner};
use crate::streaming::{ChainEnd, StreamTaskConfig, StreamTaskKind};

/// One task after chaining: a run of vertices fused into one thread.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionVertex {
    /// Names of the fused vertices, joined with " -> " (as Flink names chains).
    pub name: String,
    /// Subtasks.
    pub parallelism: u32,
    /// What each subtask runs.
    pub config: StreamTaskConfig,
    /// Per subtask: the gates it reads, one per input edge, in edge order.
    pub gates: Vec<Vec<GateKey>>,
    /// Per subtask: the partitions it writes, one per output edge.
    pub partitions: Vec<Vec<(PartitionKey, Partitioner)>>,
}

/// One channel: subpartition `subpartition` of `partition` feeds channel
/// `channel` of `gate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Producer partition.
    pub partition: PartitionKey,
    /// Its subpartition.
    pub subpartition: u32,
    /// Consumer gate.
    pub gate: GateKey,
    /// Its channel.
    pub channel: u32,
}

/// The deployable form of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionGraph {
    /// Tasks, producers before consumers.
    pub vertices: Vec<ExecutionVertex>,
    /// Subpartition counts of every partition.
    pub partitions: Vec<(PartitionKey, u32)>,
    /// Channel counts of every gate, with the vertex and subtask reading it.
    pub gates: Vec<(GateKey, u32, usize, u32)>,
    /// Every channel.
    pub channels: Vec<Channel>,
}

fn partition_key(edge: usize, subtask: u32) -> PartitionKey {
    PartitionKey(((edge as u64) << 32) | u64::from(subtask))
}

fn gate_key(edge: usize, subtask: u32) -> GateKey {
    GateKey(((edge as u64) << 32) | u64::from(subtask))
}

/// The consumers producer subtask `i` of `from` parallelism feeds over an
/// edge to `to` parallelism: one for forward, a contiguous share for
/// rescale (Flink's POINTWISE pattern), all for the rest (ALL_TO_ALL).
fn targets(partitioner: Partitioner, i: u32, from: u32, to: u32) -> std::ops::Range<u32> {
    match partitioner {
        Partitioner::Forward => i..i + 1,
        Partitioner::Rescale if from >= to => {
            let j = i * to / from;
            j..j + 1
        }
        Partitioner::Rescale => (i * to / from)..((i + 1) * to / from),
        _ => 0..to,
    }
}

impl ExecutionGraph {
    /// Chains `graph`'s vertices and lays out every subtask's partitions,
    /// gates and channels.
    pub fn build(graph: &JobGraph) -> Result<Self, GraphError> {
        graph.validate()?;
        let order = graph.topological_order()?;
        let chained_into = |i: usize| {
            graph
                .inputs_of(i)
                .find(|(_, e)| graph.is_chainable(e))
                .map(|(_, e)| e.from)
        };
        let mut vertices = Vec::new();
        let mut partitions = Vec::new();
        let mut gates = Vec::new();
        let mut channels = Vec::new();
        // Heads in topological order; each chain follows chainable edges.
        for &head in order.iter().filter(|&&i| chained_into(i).is_none()) {
            let mut members = vec![head];
            while let Some((_, e)) = graph
                .outputs_of(*members.last().expect("non-empty"))
                .find(|(_, e)| graph.is_chainable(e))
            {
                members.push(e.to);
            }
            let (head_v, tail) = (&graph.vertices[head], *members.last().expect("non-empty"));
            let input_edges: Vec<_> = graph.inputs_of(head).collect();
            let output_edges: Vec<_> = graph.outputs_of(tail).collect();
            let kind = match (head_v.source, input_edges.len()) {
                (Some(spec), _) => StreamTaskKind::Source(spec),
                (None, 1) => StreamTaskKind::OneInput,
                (None, 2) => StreamTaskKind::TwoInput,
                _ => StreamTaskKind::MultiInput,
            };
            let parallelism = head_v.parallelism;
            let config = StreamTaskConfig {
                kind,
                operators: members
                    .iter()
                    .flat_map(|&m| graph.vertices[m].operators.iter().copied())
                    .collect(),
                end: graph.vertices[tail]
                    .sink
                    .map_or(ChainEnd::Outputs, ChainEnd::Sink),
                buffer_timeout: graph.buffer_timeout,
            };
            let vertex_index = vertices.len();
            let mut vertex_gates = vec![Vec::new(); parallelism as usize];
            for (edge, e) in &input_edges {
                let from = graph.vertices[e.from].parallelism;
                for j in 0..parallelism {
                    // Producers feeding consumer j, in subtask order: channel order.
                    let producers: Vec<u32> = (0..from)
                        .filter(|&i| targets(e.partitioner, i, from, parallelism).contains(&j))
                        .collect();
                    // Each pair has `e.channels` channels, side by side.
                    let k = e.channels;
                    let gate = gate_key(*edge, j);
                    gates.push((gate, producers.len() as u32 * k, vertex_index, j));
                    vertex_gates[j as usize].push(gate);
                    for (p, &i) in producers.iter().enumerate() {
                        let first = (j - targets(e.partitioner, i, from, parallelism).start) * k;
                        for s in 0..k {
                            channels.push(Channel {
                                partition: partition_key(*edge, i),
                                subpartition: first + s,
                                gate,
                                channel: p as u32 * k + s,
                            });
                        }
                    }
                }
            }
            let mut vertex_partitions = vec![Vec::new(); parallelism as usize];
            for (edge, e) in &output_edges {
                let to = graph.vertices[e.to].parallelism;
                for i in 0..parallelism {
                    let key = partition_key(*edge, i);
                    let feeds = targets(e.partitioner, i, parallelism, to).len() as u32;
                    partitions.push((key, feeds * e.channels));
                    vertex_partitions[i as usize].push((key, e.partitioner));
                }
            }
            vertices.push(ExecutionVertex {
                name: members
                    .iter()
                    .map(|&m| graph.vertices[m].name.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> "),
                parallelism,
                config,
                gates: vertex_gates,
                partitions: vertex_partitions,
            });
        }
        Ok(Self {
            vertices,
            partitions,
            gates,
            channels,
        })
    }

    /// Subtasks in the job.
    pub fn subtasks(&self) -> usize {
        self.vertices.iter().map(|v| v.parallelism as usize).sum()
    }
}
