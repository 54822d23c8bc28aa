//! Flink's `JobGraph`: vertices with parallelism, edges with partitioners,
//! and the chaining rule that fuses vertices into one task.

use crate::network::Partitioner;
use crate::streaming::{BufferTimeout, FlatMapFunction, OperatorSpec, SinkKind, SourceSpec};

/// The most channels a job may have. Each is a ring, an input channel with
/// its spill buffer and two exclusive segments, laid out at deployment;
/// a million is more than any Flink benchmark uses (10 000) by far.
pub const MAX_CHANNELS: u64 = 1 << 20;

/// One vertex: a source, or operators fed by edges, optionally ending in a
/// sink.
#[derive(Clone, Debug, PartialEq)]
pub struct JobVertex {
    /// Name (task threads are named after it).
    pub name: String,
    /// Subtasks.
    pub parallelism: u32,
    /// Set for a source vertex (no input edges).
    pub source: Option<SourceSpec>,
    /// Operators, head first.
    pub operators: Vec<OperatorSpec>,
    /// Set for a sink vertex (no output edges).
    pub sink: Option<SinkKind>,
}

/// An edge: records of `from` go to `to`, routed by `partitioner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobEdge {
    /// Producing vertex index.
    pub from: usize,
    /// Consuming vertex index.
    pub to: usize,
    /// How records are routed.
    pub partitioner: Partitioner,
    /// Channels between each producer subtask and each consumer subtask it
    /// feeds (1 in a job; more to model Flink's network benchmarks, where
    /// one reader consumes many subpartitions of every writer over a union
    /// gate). Only all-to-all edges may have more than one.
    pub channels: u32,
}

impl JobEdge {
    /// An edge with one channel per producer–consumer pair.
    pub fn new(from: usize, to: usize, partitioner: Partitioner) -> Self {
        Self {
            from,
            to,
            partitioner,
            channels: 1,
        }
    }
}

/// A job: vertices, edges, and how its tasks are chained and flushed.
#[derive(Clone, Debug, PartialEq)]
pub struct JobGraph {
    /// Name.
    pub name: String,
    /// Vertices.
    pub vertices: Vec<JobVertex>,
    /// Edges.
    pub edges: Vec<JobEdge>,
    /// Fuse chainable vertices into one task (Flink's default: on).
    pub chaining: bool,
    /// When partial buffers are flushed.
    pub buffer_timeout: BufferTimeout,
}

/// Why a job graph cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The graph has no vertex.
    #[error("the job has no vertex")]
    Empty,
    /// A vertex's parallelism is 0.
    #[error("vertex '{0}' has parallelism 0; it must be at least 1")]
    ZeroParallelism(String),
    /// An edge names a vertex that does not exist.
    #[error("edge {edge} refers to vertex {vertex}, but the job has {vertices} vertices")]
    MissingVertex {
        /// Edge index.
        edge: usize,
        /// The missing vertex index.
        vertex: usize,
        /// Vertices in the job.
        vertices: usize,
    },
    /// The edges form a cycle.
    #[error("the edges form a cycle through vertex '{0}'")]
    Cycle(String),
    /// A source has input edges.
    #[error("source vertex '{0}' cannot have inputs")]
    SourceWithInputs(String),
    /// A vertex without a source has no input.
    #[error("vertex '{0}' is neither a source nor fed by an edge")]
    NoInput(String),
    /// A sink has output edges.
    #[error("sink vertex '{0}' cannot have outputs")]
    SinkWithOutputs(String),
    /// An edge's channel count is 0, or above 1 on a forward or rescale edge.
    #[error("edge '{from}' -> '{to}' has {channels} channels per subtask pair; it must be at least 1, and exactly 1 for forward and rescale edges")]
    Channels {
        /// Producer.
        from: String,
        /// Consumer.
        to: String,
        /// The channels asked for.
        channels: u32,
    },
    /// A vertex's records go nowhere.
    #[error("vertex '{0}' has no sink and no output edge")]
    NoOutput(String),
    /// The job has more channels than one process should lay out.
    #[error("the job has {channels} channels (edge '{from}' -> '{to}' alone has {edge_channels}); at most {max} are allowed: lower the parallelism or the channels per subtask pair")]
    TooManyChannels {
        /// Producer of the largest edge.
        from: String,
        /// Consumer of the largest edge.
        to: String,
        /// Channels of the largest edge.
        edge_channels: u64,
        /// Channels of the whole job.
        channels: u64,
        /// The limit.
        max: u64,
    },
    /// A forward edge between different parallelisms.
    #[error("forward edge '{from}' -> '{to}' needs equal parallelism ({from_parallelism} vs {to_parallelism})")]
    ForwardParallelism {
        /// Producer.
        from: String,
        /// Consumer.
        to: String,
        /// Producer parallelism.
        from_parallelism: u32,
        /// Consumer parallelism.
        to_parallelism: u32,
    },
}

impl JobGraph {
    /// The most records any sink subtask can count: every source subtask's
    /// records, times each flat-map's fan-out, each broadcast edge's
    /// consumers and each vertex's number of outputs (loose, and exact for
    /// a pipeline of one-in-one-out operators); `None` when a source emits
    /// for a duration rather than a number of records. A restored sink
    /// count past it is state that is not this job's.
    pub fn max_sink_records(&self) -> Option<u64> {
        let mut records = 0u64;
        let mut fan_out = 1u64;
        for (i, v) in self.vertices.iter().enumerate() {
            if let Some(source) = &v.source {
                let all = source.records?.saturating_mul(u64::from(v.parallelism));
                records = records.saturating_add(all);
            }
            for op in &v.operators {
                if let OperatorSpec::FlatMap(FlatMapFunction::Explode(n)) = op {
                    fan_out = fan_out.saturating_mul(u64::from(*n));
                }
            }
            let outputs = self.outputs_of(i).count().max(1) as u64;
            fan_out = fan_out.saturating_mul(outputs);
        }
        for e in &self.edges {
            if e.partitioner == Partitioner::Broadcast {
                let consumers = self.vertices.get(e.to).map_or(1, |v| v.parallelism);
                fan_out = fan_out.saturating_mul(u64::from(consumers));
            }
        }
        Some(records.saturating_mul(fan_out))
    }

    /// Checks the graph; the error names the offending vertex or edge.
    pub fn validate(&self) -> Result<(), GraphError> {
        let n = self.vertices.len();
        if n == 0 {
            return Err(GraphError::Empty);
        }
        for v in &self.vertices {
            if v.parallelism == 0 {
                return Err(GraphError::ZeroParallelism(v.name.clone()));
            }
        }
        for (edge, e) in self.edges.iter().enumerate() {
            for vertex in [e.from, e.to] {
                if vertex >= n {
                    return Err(GraphError::MissingVertex {
                        edge,
                        vertex,
                        vertices: n,
                    });
                }
            }
        }
        for (i, v) in self.vertices.iter().enumerate() {
            let inputs = self.inputs_of(i).count();
            let outputs = self.outputs_of(i).count();
            match (v.source.is_some(), inputs) {
                (true, 1..) => return Err(GraphError::SourceWithInputs(v.name.clone())),
                (false, 0) => return Err(GraphError::NoInput(v.name.clone())),
                _ => {}
            }
            match (v.sink.is_some(), outputs) {
                (true, 1..) => return Err(GraphError::SinkWithOutputs(v.name.clone())),
                (false, 0) => return Err(GraphError::NoOutput(v.name.clone())),
                _ => {}
            }
        }
        for e in &self.edges {
            let (a, b) = (&self.vertices[e.from], &self.vertices[e.to]);
            let pointwise = matches!(e.partitioner, Partitioner::Forward | Partitioner::Rescale);
            if e.channels == 0 || (pointwise && e.channels != 1) {
                return Err(GraphError::Channels {
                    from: a.name.clone(),
                    to: b.name.clone(),
                    channels: e.channels,
                });
            }
            if e.partitioner == Partitioner::Forward && a.parallelism != b.parallelism {
                return Err(GraphError::ForwardParallelism {
                    from: a.name.clone(),
                    to: b.name.clone(),
                    from_parallelism: a.parallelism,
                    to_parallelism: b.parallelism,
                });
            }
        }
        self.check_channel_count()?;
        self.topological_order().map(|_| ())
    }

    /// Counts the job's channels without laying them out (a chained edge
    /// has none), and refuses a job with more than [`MAX_CHANNELS`].
    fn check_channel_count(&self) -> Result<(), GraphError> {
        let edge_channels = |e: &JobEdge| {
            if self.is_chainable(e) {
                return 0;
            }
            let (from, to) = (
                u64::from(self.vertices[e.from].parallelism),
                u64::from(self.vertices[e.to].parallelism),
            );
            let pairs = match e.partitioner {
                Partitioner::Forward => from,
                Partitioner::Rescale => from.max(to),
                _ => from * to,
            };
            pairs * u64::from(e.channels)
        };
        let channels: u64 = self.edges.iter().map(edge_channels).sum();
        if channels <= MAX_CHANNELS {
            return Ok(());
        }
        let largest = self
            .edges
            .iter()
            .max_by_key(|e| edge_channels(e))
            .expect("channels come from edges");
        Err(GraphError::TooManyChannels {
            from: self.vertices[largest.from].name.clone(),
            to: self.vertices[largest.to].name.clone(),
            edge_channels: edge_channels(largest),
            channels,
            max: MAX_CHANNELS,
        })
    }

    /// Vertex indices, producers before consumers.
    pub fn topological_order(&self) -> Result<Vec<usize>, GraphError> {
        let n = self.vertices.len();
        let mut indegree = vec![0usize; n];
        for e in &self.edges {
            indegree[e.to] += 1;
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            for e in self.edges.iter().filter(|e| e.from == i) {
                indegree[e.to] -= 1;
                if indegree[e.to] == 0 {
                    ready.push(e.to);
                }
            }
        }
        match (0..n).find(|&i| indegree[i] > 0) {
            Some(i) => Err(GraphError::Cycle(self.vertices[i].name.clone())),
            None => Ok(order),
        }
    }

    /// Edges into vertex `i`, in declaration order (input gate order).
    pub fn inputs_of(&self, i: usize) -> impl Iterator<Item = (usize, &JobEdge)> {
        self.edges
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.to == i)
    }

    /// Edges out of vertex `i`.
    pub fn outputs_of(&self, i: usize) -> impl Iterator<Item = (usize, &JobEdge)> {
        self.edges
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.from == i)
    }

    /// Flink's chaining rule for an edge: chaining enabled, forward
    /// partitioning, equal parallelism, the consumer's only input and the
    /// producer's only output.
    pub fn is_chainable(&self, edge: &JobEdge) -> bool {
        self.chaining
            && edge.partitioner == Partitioner::Forward
            && edge.channels == 1
            && self.vertices[edge.from].parallelism == self.vertices[edge.to].parallelism
            && self.inputs_of(edge.to).count() == 1
            && self.outputs_of(edge.from).count() == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streaming::MapFunction;

    fn vertex(parallelism: u32, source: Option<u64>, operators: Vec<OperatorSpec>) -> JobVertex {
        JobVertex {
            name: "v".into(),
            parallelism,
            source: source.map(|records| SourceSpec {
                records: Some(records),
                ..SourceSpec::default()
            }),
            operators,
            sink: None,
        }
    }

    fn graph(vertices: Vec<JobVertex>, edges: Vec<JobEdge>) -> JobGraph {
        JobGraph {
            name: "g".into(),
            vertices,
            edges,
            chaining: true,
            buffer_timeout: BufferTimeout::default(),
        }
    }

    #[test]
    fn the_sink_bound_counts_sources_fan_outs_and_broadcasts() {
        let map = || vec![OperatorSpec::Map(MapFunction::MultiplyByTwo)];
        let explode = |n| vec![OperatorSpec::FlatMap(FlatMapFunction::Explode(n))];
        // 2 sources × 1,000 records, one-in-one-out to the sink: exact.
        let straight = graph(
            vec![vertex(2, Some(1_000), vec![]), vertex(4, None, map())],
            vec![JobEdge::new(0, 1, Partitioner::Rebalance)],
        );
        assert_eq!(straight.max_sink_records(), Some(2_000));
        // A flat-map of 3, then a broadcast to 4 consumers.
        let fanned = graph(
            vec![vertex(1, Some(1_000), explode(3)), vertex(4, None, vec![])],
            vec![JobEdge::new(0, 1, Partitioner::Broadcast)],
        );
        assert_eq!(fanned.max_sink_records(), Some(12_000));
        // Two outputs of one vertex each carry every record; a second
        // source adds its own.
        let diamond = graph(
            vec![
                vertex(1, Some(1_000), vec![]),
                vertex(1, None, map()),
                vertex(1, None, map()),
                vertex(1, None, vec![]),
                vertex(1, Some(10), vec![]),
            ],
            vec![
                JobEdge::new(0, 1, Partitioner::Forward),
                JobEdge::new(0, 2, Partitioner::Forward),
                JobEdge::new(1, 3, Partitioner::Forward),
                JobEdge::new(2, 3, Partitioner::Forward),
            ],
        );
        assert_eq!(diamond.max_sink_records(), Some(2_020));
        // A source bounded by time has no bound; huge ones saturate.
        let mut timed = straight.clone();
        timed.vertices[0].source.as_mut().unwrap().records = None;
        assert_eq!(timed.max_sink_records(), None);
        let huge = graph(vec![vertex(4, Some(u64::MAX / 2), explode(1_000))], vec![]);
        assert_eq!(huge.max_sink_records(), Some(u64::MAX));
    }
}
