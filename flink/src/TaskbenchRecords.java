// taskbench's records, operators and sinks on Flink's DataStream API.
//
// Each function mirrors taskbench's own (src/streaming/operator.rs, chain.rs) bit for bit on
// the record's value, an unsigned 64-bit integer that wraps: Java's long arithmetic wraps the
// same way, and divisions and remainders use the unsigned forms.

import java.io.Serializable;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.time.Instant;

import org.apache.flink.api.common.accumulators.Accumulator;
import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

final class TaskbenchRecords {
    private TaskbenchRecords() {}

    /** Whether {@code function} is {@code second}, else {@code first}; refuses any other. */
    static boolean isSecond(String kind, String function, String first, String second) {
        if (!function.equals(first) && !function.equals(second)) {
            throw new IllegalArgumentException("unknown " + kind + " function " + function);
        }
        return function.equals(second);
    }

    /** Nanoseconds on the wall clock's scale, read off the monotonic clock (one offset per JVM). */
    static final class Clock {
        private static final long OFFSET;

        static {
            Instant now = Instant.now();
            OFFSET = now.getEpochSecond() * 1_000_000_000L + now.getNano() - System.nanoTime();
        }

        static long now() {
            return System.nanoTime() + OFFSET;
        }
    }

    /**
     * A record type: 8-byte records are Flink {@code Long}s (the benchmarks' record); longer ones
     * are byte arrays laid out as taskbench lays them out: the value (little-endian) in bytes 0..8,
     * the emit timestamp in bytes 8..16, padding after.
     */
    abstract static class Codec<T> implements Serializable {
        private static final long serialVersionUID = 1L;

        abstract long value(T record);

        /** A new record: {@code record} with its value replaced. */
        abstract T withValue(T record, long value);

        /** The emit timestamp (0 when the record carries none). */
        abstract long stamp(T record);

        abstract T make(long value, long stamp);

        abstract TypeInformation<T> type();

        static Codec<?> forSize(int size) {
            return size == 8 ? new Longs() : new Bytes(size);
        }
    }

    static final class Longs extends Codec<Long> {
        private static final long serialVersionUID = 1L;

        @Override
        long value(Long record) {
            return record;
        }

        @Override
        Long withValue(Long record, long value) {
            return value;
        }

        @Override
        long stamp(Long record) {
            return 0;
        }

        @Override
        Long make(long value, long stamp) {
            return value;
        }

        @Override
        TypeInformation<Long> type() {
            return Types.LONG;
        }
    }

    static final class Bytes extends Codec<byte[]> {
        private static final long serialVersionUID = 1L;
        private static final VarHandle LONG_LE =
                MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
        private final int size;

        Bytes(int size) {
            this.size = size;
        }

        @Override
        long value(byte[] record) {
            return (long) LONG_LE.get(record, 0);
        }

        @Override
        byte[] withValue(byte[] record, long value) {
            byte[] copy = record.clone();
            LONG_LE.set(copy, 0, value);
            return copy;
        }

        @Override
        long stamp(byte[] record) {
            return record.length >= 16 ? (long) LONG_LE.get(record, 8) : 0;
        }

        @Override
        byte[] make(long value, long stamp) {
            byte[] record = new byte[size];
            LONG_LE.set(record, 0, value);
            if (size >= 16) {
                LONG_LE.set(record, 8, stamp);
            }
            return record;
        }

        @Override
        TypeInformation<byte[]> type() {
            return PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO;
        }
    }

    /** taskbench's map functions: multiply-by-two, increment, identity. */
    static final class Map<T> implements MapFunction<T, T> {
        private static final long serialVersionUID = 1L;
        private final Codec<T> codec;
        private final String function;

        Map(Codec<T> codec, String function) {
            this.codec = codec;
            this.function = function;
            apply(0); // refuses an unknown function while the job is built
        }

        private long apply(long v) {
            switch (function) {
                case "multiply-by-two":
                    return v * 2;
                case "increment":
                    return v + 1;
                case "identity":
                    return v;
                default:
                    throw new IllegalArgumentException("unknown map function " + function);
            }
        }

        @Override
        public T map(T record) {
            return codec.withValue(record, apply(codec.value(record)));
        }
    }

    /** taskbench's filters: even values, or one in N (value divisible by N). */
    static final class Filter<T> implements FilterFunction<T> {
        private static final long serialVersionUID = 1L;
        private final Codec<T> codec;
        private final long oneIn;

        Filter(Codec<T> codec, String function) {
            this.codec = codec;
            if (function.equals("even")) {
                oneIn = 2;
            } else if (function.startsWith("one-in-")) {
                oneIn = Long.parseUnsignedLong(function.substring("one-in-".length()));
            } else {
                throw new IllegalArgumentException("unknown filter function " + function);
            }
        }

        @Override
        public boolean filter(T record) {
            return Long.remainderUnsigned(codec.value(record), oneIn) == 0;
        }
    }

    /** explode-N: N records with values {@code value * N + i}. */
    static final class Explode<T> implements FlatMapFunction<T, T> {
        private static final long serialVersionUID = 1L;
        private final Codec<T> codec;
        private final long n;

        Explode(Codec<T> codec, String function) {
            this.codec = codec;
            if (!function.startsWith("explode-")) {
                throw new IllegalArgumentException("unknown flat-map function " + function);
            }
            n = Long.parseLong(function.substring("explode-".length()));
        }

        @Override
        public void flatMap(T record, Collector<T> out) {
            long base = codec.value(record) * n;
            for (long i = 0; i < n; i++) {
                out.collect(codec.withValue(record, base + i));
            }
        }
    }

    /** A record's key, {@code value % keySpace} (unsigned), as taskbench's hash edges take it. */
    static final class KeyOf<T> implements KeySelector<T, Long> {
        private static final long serialVersionUID = 1L;
        private final Codec<T> codec;
        private final long keySpace;

        KeyOf(Codec<T> codec, long keySpace) {
            this.codec = codec;
            this.keySpace = keySpace;
        }

        @Override
        public Long getKey(T record) {
            return Long.remainderUnsigned(codec.value(record), keySpace);
        }
    }

    /** Keyed count or sum in Flink keyed state; emits the key's updated aggregate as the value. */
    static final class Aggregate<T> extends RichMapFunction<T, T> {
        private static final long serialVersionUID = 1L;
        private final Codec<T> codec;
        private final boolean sum;
        private transient ValueState<Long> state;

        Aggregate(Codec<T> codec, String function) {
            this.codec = codec;
            this.sum = isSecond("keyed-aggregate", function, "count", "sum");
        }

        @Override
        public void open(OpenContext context) {
            state = getRuntimeContext().getState(new ValueStateDescriptor<>("aggregate", Types.LONG));
        }

        @Override
        public T map(T record) throws Exception {
            long value = codec.value(record);
            Long current = state.value();
            long next = (current == null ? 0 : current) + (sum ? value : 1);
            state.update(next);
            return codec.withValue(record, next);
        }
    }

    /** Passes {@code limit} records on, then fails (taskbench's fail-after). */
    static final class FailAfter<T> implements MapFunction<T, T> {
        private static final long serialVersionUID = 1L;
        private final long limit;
        private long seen;

        FailAfter(long limit) {
            this.limit = limit;
        }

        @Override
        public T map(T record) {
            if (seen == limit) {
                throw new IllegalStateException("operator fail-after failed after " + seen + " records");
            }
            seen++;
            return record;
        }
    }

    /**
     * What one sink subtask saw, as an accumulator named {@code taskbench/sink/VERTEX/SUBTASK}:
     * records, the wrapping sum of their values, the data window (first record's emit time, or its
     * arrival for records without a timestamp, to the end of input) and, for a latency sink, a
     * log-linear histogram of latencies (1024 buckets per power of two: under 0.1 % error).
     * Its value, as the REST API shows it, is one JSON object.
     */
    static final class SinkResult implements Accumulator<Long, String> {
        private static final long serialVersionUID = 1L;
        static final int SUB_BUCKETS = 1024;
        long records;
        long checksum;
        long firstNs;
        long endNs;
        long[] latency;

        SinkResult(boolean latency) {
            this.latency = latency ? new long[2 * SUB_BUCKETS + 54 * SUB_BUCKETS] : null;
        }

        static int bucket(long ns) {
            if (ns < 2 * SUB_BUCKETS) {
                return (int) ns;
            }
            int exponent = 63 - Long.numberOfLeadingZeros(ns); // >= 11
            int shift = exponent - 10;
            return 2 * SUB_BUCKETS + (exponent - 11) * SUB_BUCKETS + (int) ((ns >>> shift) - SUB_BUCKETS);
        }

        @Override
        public void add(Long latencyNs) {
            latency[bucket(Math.max(1, latencyNs))]++;
        }

        @Override
        public String getLocalValue() {
            StringBuilder s = new StringBuilder(64);
            s.append("{\"records\":").append(records)
                    .append(",\"checksum\":").append(Long.toUnsignedString(checksum))
                    .append(",\"first_ns\":").append(firstNs)
                    .append(",\"end_ns\":").append(endNs)
                    .append(",\"latency\":");
            if (latency == null) {
                s.append("null");
            } else {
                s.append('"');
                boolean first = true;
                for (int i = 0; i < latency.length; i++) {
                    if (latency[i] != 0) {
                        s.append(first ? "" : ",").append(i).append(':').append(latency[i]);
                        first = false;
                    }
                }
                s.append('"');
            }
            return s.append('}').toString();
        }

        @Override
        public void resetLocal() {
            records = 0;
            checksum = 0;
            firstNs = 0;
            endNs = 0;
            if (latency != null) {
                latency = new long[latency.length];
            }
        }

        @Override
        public void merge(Accumulator<Long, String> other) {
            SinkResult o = (SinkResult) other;
            records += o.records;
            checksum += o.checksum;
            firstNs = firstNs == 0 ? o.firstNs : (o.firstNs == 0 ? firstNs : Math.min(firstNs, o.firstNs));
            endNs = Math.max(endNs, o.endNs);
            if (latency != null && o.latency != null) {
                for (int i = 0; i < latency.length; i++) {
                    latency[i] += o.latency[i];
                }
            }
        }

        @Override
        public SinkResult clone() {
            SinkResult c = new SinkResult(latency != null);
            c.merge(this);
            return c;
        }
    }

    /** taskbench's sinks: count and checksum every record; a latency sink also records latency. */
    static final class Sink<T> extends ProcessFunction<T, Void> {
        private static final long serialVersionUID = 1L;
        private final Codec<T> codec;
        private final String vertex;
        private final boolean measureLatency;
        private transient SinkResult result;

        Sink(Codec<T> codec, String vertex, String function) {
            this.codec = codec;
            this.vertex = vertex;
            this.measureLatency = isSecond("sink", function, "checksum", "latency");
        }

        @Override
        public void open(OpenContext context) {
            result = new SinkResult(measureLatency);
            int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
            getRuntimeContext().addAccumulator("taskbench/sink/" + vertex + "/" + subtask, result);
        }

        @Override
        public void processElement(T record, Context context, Collector<Void> out) {
            SinkResult r = result;
            r.records++;
            r.checksum += codec.value(record);
            long stamp = codec.stamp(record);
            if (r.firstNs == 0) {
                r.firstNs = stamp != 0 ? stamp : Clock.now();
            }
            if (measureLatency && stamp != 0) {
                r.add(Clock.now() - stamp);
            }
        }

        @Override
        public void close() {
            if (result != null) {
                result.endNs = Clock.now();
            }
        }
    }
}
