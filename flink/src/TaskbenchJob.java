// One generic Flink job: builds the DataStream job that a taskbench job spec describes
// (`taskbench flink spec PROFILE` writes one) and runs it.
//
//   TaskbenchJob --spec JSON          builds and executes the job (how `taskbench flink run`
//                                     submits it through the REST API: POST /jars/:id/run)
//   TaskbenchJob minicluster SLOTS [KEY=VALUE ...]
//                                     starts a MiniCluster (one TaskManager, SLOTS slots, REST on
//                                     a free loopback port, the options given), prints
//                                     "taskbench-minicluster REST_URL" and runs until its
//                                     standard input closes
//
// The spec's fields are documented in src/bench/flink/spec.rs; README.md, "Running on real Flink",
// tells how the job mirrors taskbench's.

import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

public final class TaskbenchJob {
    private TaskbenchJob() {}

    public static void main(String[] args) throws Exception {
        if (args.length >= 2 && args[0].equals("minicluster")) {
            miniCluster(args);
        } else if (args.length == 2 && args[0].equals("--spec")) {
            JsonNode spec = new ObjectMapper().readTree(args[1]);
            StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(jobConfiguration());
            build(env, spec);
            env.execute(spec.get("name").asText());
        } else {
            throw new IllegalArgumentException(
                    "usage: TaskbenchJob --spec JSON | TaskbenchJob minicluster SLOTS [KEY=VALUE ...]");
        }
    }

    /** A failed job stays failed: taskbench reports the failure, as it does for its own jobs. */
    static Configuration jobConfiguration() {
        Configuration conf = new Configuration();
        conf.setString("restart-strategy.type", "none");
        return conf;
    }

    static void miniCluster(String[] args) throws Exception {
        Configuration conf = jobConfiguration();
        conf.setString("rest.address", "127.0.0.1");
        conf.setString("rest.bind-address", "127.0.0.1");
        conf.setString("rest.bind-port", "0");
        for (int i = 2; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected KEY=VALUE, got " + args[i]);
            }
            conf.setString(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(Integer.parseInt(args[1]))
                .build());
        cluster.start();
        System.out.println("taskbench-minicluster " + cluster.getRestAddress().get());
        System.out.flush();
        InputStream in = System.in;
        while (in.read() >= 0) {
            // runs until taskbench closes our standard input (or goes away)
        }
        cluster.close();
        System.exit(0);
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    static void build(StreamExecutionEnvironment env, JsonNode spec) {
        JsonNode records = spec.get("records");
        JsonNode network = spec.get("network");
        TaskbenchRecords.Codec codec = TaskbenchRecords.Codec.forSize(records.get("size").asInt());
        env.setBufferTimeout(network.get("buffer_timeout_ms").asLong());
        if (!spec.get("chaining").asBoolean()) {
            env.disableOperatorChaining();
        }
        long keySpace = records.get("key_space").asLong();
        Map<String, DataStream> outputs = new HashMap<>();
        // The spec lists vertices in topological order.
        for (JsonNode v : spec.get("vertices")) {
            String name = v.get("name").asText();
            String kind = v.get("kind").asText();
            int parallelism = v.get("parallelism").asInt();
            if (kind.equals("source")) {
                TaskbenchSource source = new TaskbenchSource(codec,
                        v.get("records").isNull() ? -1 : v.get("records").asLong(),
                        records.get("duration_ms").isNull() ? 0 : records.get("duration_ms").asLong() * 1_000_000L,
                        records.get("batch").asInt(),
                        records.get("rate").isNull() ? 0 : records.get("rate").asDouble(),
                        records.get("skew_after").isNull() ? -1 : records.get("skew_after").asLong(),
                        keySpace,
                        records.get("distribution").asText().equals("zipf")
                                ? records.get("zipf_exponent").asDouble()
                                : Double.NaN);
                outputs.put(name, env.fromSource(source, WatermarkStrategy.noWatermarks(), name, codec.type())
                        .setParallelism(parallelism));
                continue;
            }
            List<JsonNode> inputs = new ArrayList<>();
            for (JsonNode e : spec.get("edges")) {
                if (e.get("to").asText().equals(name)) {
                    inputs.add(e);
                }
            }
            String function = v.get("function").isNull() ? "" : v.get("function").asText();
            SingleOutputStreamOperator out;
            if (kind.equals("keyed-aggregate")) {
                // One hash input (the spec guarantees it): Flink keyed state.
                out = outputs.get(inputs.get(0).get("from").asText())
                        .keyBy(new TaskbenchRecords.KeyOf(codec, keySpace))
                        .map(new TaskbenchRecords.Aggregate(codec, function), codec.type());
            } else {
                DataStream in = null;
                for (JsonNode e : inputs) {
                    DataStream partitioned =
                            partition(outputs.get(e.get("from").asText()), e.get("partitioner").asText(), codec, keySpace);
                    in = in == null ? partitioned : in.union(partitioned);
                }
                switch (kind) {
                    case "map":
                        out = in.map(new TaskbenchRecords.Map(codec, function), codec.type());
                        break;
                    case "filter":
                        out = in.filter(new TaskbenchRecords.Filter(codec, function));
                        break;
                    case "flat-map":
                        out = in.flatMap(new TaskbenchRecords.Explode(codec, function), codec.type());
                        break;
                    case "fail-after":
                        out = in.map(new TaskbenchRecords.FailAfter(v.get("fail_after").asLong()), codec.type());
                        break;
                    case "sink":
                        out = in.process(new TaskbenchRecords.Sink(codec, name, function),
                                org.apache.flink.api.common.typeinfo.Types.VOID);
                        break;
                    default:
                        throw new IllegalArgumentException("unknown vertex kind " + kind);
                }
            }
            out.name(name).setParallelism(parallelism);
            // Flink would chain a forward edge taskbench does not (a producer with several
            // outputs): start a new chain there, so the tasks are taskbench's.
            if (inputs.size() == 1 && inputs.get(0).get("partitioner").asText().equals("forward")
                    && !inputs.get(0).get("chained").asBoolean()) {
                out.startNewChain();
            }
            outputs.put(name, out);
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    static DataStream partition(DataStream stream, String partitioner, TaskbenchRecords.Codec codec, long keySpace) {
        switch (partitioner) {
            case "forward":
                return stream.forward();
            case "rebalance":
                return stream.rebalance();
            case "rescale":
                return stream.rescale();
            case "hash":
                return stream.keyBy(new TaskbenchRecords.KeyOf(codec, keySpace));
            case "broadcast":
                return stream.broadcast();
            default:
                throw new IllegalArgumentException("unknown partitioner " + partitioner);
        }
    }
}
