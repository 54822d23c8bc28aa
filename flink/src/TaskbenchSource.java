// taskbench's source (src/streaming/source.rs) as a FLIP-27 source: subtask i of p emits the
// values i, i + p, i + 2p, ... in batches of `batch` records per pollNext, keys as taskbench
// draws them (uniform or Zipf, skewed to one key after `skew_after` records), optionally at a
// fixed rate, each record stamped with its intended emit time.

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.LockSupport;

import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.core.io.InputStatus;
import org.apache.flink.core.io.SimpleVersionedSerializer;

final class TaskbenchSource<T> implements Source<T, TaskbenchSource.Split, Integer> {
    private static final long serialVersionUID = 1L;
    /** Zipf keys are laid out once in a table of this many entries, read cyclically. */
    static final int ZIPF_TABLE = 1 << 14;

    final TaskbenchRecords.Codec<T> codec;
    final long records; // per subtask; -1 = until `durationNs`
    final long durationNs; // 0 = until `records`
    final int batch;
    final double rate; // records/s per subtask; 0 = as fast as possible
    final long skewAfter; // -1 = never
    final long keySpace;
    final double zipfExponent; // NaN = uniform keys

    TaskbenchSource(TaskbenchRecords.Codec<T> codec, long records, long durationNs, int batch,
            double rate, long skewAfter, long keySpace, double zipfExponent) {
        this.codec = codec;
        this.records = records;
        this.durationNs = durationNs;
        this.batch = batch;
        this.rate = rate;
        this.skewAfter = skewAfter;
        this.keySpace = keySpace;
        this.zipfExponent = zipfExponent;
    }

    /** One split per subtask: which subtask's sequence it is. */
    static final class Split implements SourceSplit {
        final int subtask;

        Split(int subtask) {
            this.subtask = subtask;
        }

        @Override
        public String splitId() {
            return Integer.toString(subtask);
        }
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.BOUNDED;
    }

    @Override
    public SplitEnumerator<Split, Integer> createEnumerator(SplitEnumeratorContext<Split> context) {
        return new Enumerator(context);
    }

    @Override
    public SplitEnumerator<Split, Integer> restoreEnumerator(
            SplitEnumeratorContext<Split> context, Integer checkpoint) {
        return new Enumerator(context);
    }

    @Override
    public SimpleVersionedSerializer<Split> getSplitSerializer() {
        return new IntSerializer<>(s -> s.subtask, Split::new);
    }

    @Override
    public SimpleVersionedSerializer<Integer> getEnumeratorCheckpointSerializer() {
        return new IntSerializer<>(i -> i, i -> i);
    }

    @Override
    public SourceReader<T, Split> createReader(SourceReaderContext context) {
        return new Reader<>(this, context);
    }

    /** Gives every reader the split of its own subtask, then no more. */
    static final class Enumerator implements SplitEnumerator<Split, Integer> {
        private final SplitEnumeratorContext<Split> context;

        Enumerator(SplitEnumeratorContext<Split> context) {
            this.context = context;
        }

        @Override
        public void start() {}

        @Override
        public void handleSplitRequest(int subtask, String host) {
            context.assignSplit(new Split(subtask), subtask);
            context.signalNoMoreSplits(subtask);
        }

        @Override
        public void addSplitsBack(List<Split> splits, int subtask) {}

        @Override
        public void addReader(int subtask) {}

        @Override
        public Integer snapshotState(long checkpointId) {
            return 0;
        }

        @Override
        public void close() {}
    }

    interface ToInt<X> extends java.io.Serializable {
        int apply(X x);
    }

    interface FromInt<X> extends java.io.Serializable {
        X apply(int i);
    }

    static final class IntSerializer<X> implements SimpleVersionedSerializer<X> {
        private final ToInt<X> to;
        private final FromInt<X> from;

        IntSerializer(ToInt<X> to, FromInt<X> from) {
            this.to = to;
            this.from = from;
        }

        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(X x) {
            int i = to.apply(x);
            return new byte[] {(byte) (i >>> 24), (byte) (i >>> 16), (byte) (i >>> 8), (byte) i};
        }

        @Override
        public X deserialize(int version, byte[] b) {
            return from.apply(((b[0] & 0xff) << 24) | ((b[1] & 0xff) << 16) | ((b[2] & 0xff) << 8) | (b[3] & 0xff));
        }
    }

    /**
     * taskbench's Zipf key table: the quantiles of ZIPF_TABLE evenly spaced probabilities under
     * weights 1/(k+1)^exponent, shuffled by a fixed xorshift permutation.
     */
    static int[] zipfKeys(long keySpace, double exponent) {
        int n = (int) Math.max(1, Math.min(keySpace, 0xffff_ffffL));
        double[] cdf = new double[n];
        double total = 0.0;
        for (int k = 0; k < n; k++) {
            total += 1.0 / Math.pow(k + 1, exponent);
            cdf[k] = total;
        }
        int[] keys = new int[ZIPF_TABLE];
        for (int i = 0; i < ZIPF_TABLE; i++) {
            double u = (i + 0.5) / ZIPF_TABLE * total;
            // the first index whose cumulative weight reaches u
            int lo = 0;
            int hi = n;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (cdf[mid] < u) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            keys[i] = Math.min(lo, n - 1);
        }
        long state = 0x9e37_79b9_7f4a_7c15L;
        for (int i = keys.length - 1; i >= 1; i--) {
            state ^= state << 13;
            state ^= state >>> 7;
            state ^= state << 17;
            int j = (int) Long.remainderUnsigned(state, i + 1);
            int t = keys[i];
            keys[i] = keys[j];
            keys[j] = t;
        }
        return keys;
    }

    static final class Reader<T> implements SourceReader<T, Split> {
        private final TaskbenchSource<T> spec;
        private final SourceReaderContext context;
        private final CompletableFuture<Void> splitArrived = new CompletableFuture<>();
        private final int[] zipf;
        private long first = -1; // this subtask's first value, once its split has arrived
        private long stride;
        private long emitted;
        private long startedNs;
        private boolean noMoreSplits;

        Reader(TaskbenchSource<T> spec, SourceReaderContext context) {
            this.spec = spec;
            this.context = context;
            this.zipf = Double.isNaN(spec.zipfExponent) ? null : zipfKeys(spec.keySpace, spec.zipfExponent);
        }

        @Override
        public void start() {
            context.sendSplitRequest();
        }

        @Override
        public InputStatus pollNext(ReaderOutput<T> output) {
            if (first < 0) {
                return noMoreSplits ? InputStatus.END_OF_INPUT : InputStatus.NOTHING_AVAILABLE;
            }
            long now = TaskbenchRecords.Clock.now();
            if (startedNs == 0) {
                startedNs = now;
            }
            if (spec.durationNs > 0 && now - startedNs >= spec.durationNs) {
                return InputStatus.END_OF_INPUT;
            }
            long n = spec.batch;
            if (spec.records >= 0) {
                n = Math.min(n, spec.records - emitted);
                if (n == 0) {
                    return InputStatus.END_OF_INPUT;
                }
            }
            long stamp = now;
            long perRecordNs = 0;
            if (spec.rate > 0) {
                double interval = 1e9 / spec.rate;
                long dueAt = startedNs + (long) (emitted * interval);
                if (dueAt > now) {
                    LockSupport.parkNanos(dueAt - now);
                    return InputStatus.MORE_AVAILABLE;
                }
                n = Math.min(n, (long) ((now - dueAt) / interval) + 1);
                stamp = dueAt;
                perRecordNs = (long) interval;
            }
            for (long i = 0; i < n; i++) {
                long seq = emitted + i;
                long value = first + seq * stride;
                if (zipf != null) {
                    value = value * Math.max(1, spec.keySpace) + zipf[(int) (seq & (ZIPF_TABLE - 1))];
                }
                if (spec.skewAfter >= 0 && seq >= spec.skewAfter) {
                    value *= Math.max(1, spec.keySpace);
                }
                output.collect(spec.codec.make(value, stamp + i * perRecordNs));
            }
            emitted += n;
            return InputStatus.MORE_AVAILABLE;
        }

        @Override
        public List<Split> snapshotState(long checkpointId) {
            return first < 0 ? new ArrayList<>() : new ArrayList<>(Arrays.asList(new Split((int) first)));
        }

        @Override
        public CompletableFuture<Void> isAvailable() {
            return splitArrived;
        }

        @Override
        public void addSplits(List<Split> splits) {
            for (Split s : splits) {
                first = s.subtask;
                stride = Math.max(1, context.currentParallelism());
            }
            splitArrived.complete(null);
        }

        @Override
        public void notifyNoMoreSplits() {
            noMoreSplits = true;
            splitArrived.complete(null);
        }

        @Override
        public void close() {}
    }
}
