// A request loop in the shape of a Java service, for bench/java.py: each request parses a
// header line, looks its session up in a bounded LRU (LinkedHashMap with removeEldestEntry),
// builds a response, and one in 16 compresses its body with a java.util.zip.Deflater (zlib's
// state is malloc'd natively, freed by end()): the native side sees steady malloc/free churn
// from JIT-compiled code. Two worker threads. Nothing leaks.
//
// Arguments: warm-up requests, measured requests (per thread). Prints the measured phase's
// throughput, which bench/java.py compares between tools (the JVM's steady speed, start-up
// and exit left out), and a checksum.
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.Deflater;

public class JavaService {
    static final int SESSIONS = 20_000;

    static final class Session {
        final String user;
        long requests;
        final byte[] state = new byte[256];

        Session(String user) {
            this.user = user;
        }
    }

    static final class Worker implements Runnable {
        final int seed;
        final long warmup;
        final long measured;
        long checksum;
        long measuredNs;
        final Map<String, Session> sessions =
                new LinkedHashMap<>(1 << 15, 0.75f, true) {
                    @Override
                    protected boolean removeEldestEntry(Map.Entry<String, Session> eldest) {
                        return size() > SESSIONS;
                    }
                };
        final byte[] compressed = new byte[8192];

        Worker(int seed, long warmup, long measured) {
            this.seed = seed;
            this.warmup = warmup;
            this.measured = measured;
        }

        long handle(long i) {
            long x = (i + seed) * 0x9E3779B97F4A7C15L;
            String header = "GET /item/" + (x >>> 40) % 100_000 + " user=" + (x >>> 20) % 50_000;
            String[] parts = header.split(" ");
            int item = Integer.parseInt(parts[1].substring(6));
            String user = parts[2].substring(5);
            Session session = sessions.computeIfAbsent(user, Session::new);
            session.requests++;
            StringBuilder body = new StringBuilder(512);
            for (int k = 0; k < 8; k++) {
                body.append("{\"item\":").append(item + k).append(",\"user\":\"")
                        .append(session.user).append("\"}");
            }
            long sum = body.length() + session.requests;
            if (i % 16 == 0) {
                Deflater deflater = new Deflater(Deflater.BEST_SPEED);
                deflater.setInput(body.toString().getBytes(StandardCharsets.UTF_8));
                deflater.finish();
                sum += deflater.deflate(compressed);
                deflater.end();
            }
            return sum;
        }

        @Override
        public void run() {
            for (long i = 0; i < warmup; i++) {
                checksum += handle(i);
            }
            long start = System.nanoTime();
            for (long i = warmup; i < warmup + measured; i++) {
                checksum += handle(i);
            }
            measuredNs = System.nanoTime() - start;
        }
    }

    public static void main(String[] args) throws Exception {
        long warmup = Long.parseLong(args[0]);
        long measured = Long.parseLong(args[1]);
        Worker[] workers = {new Worker(1, warmup, measured), new Worker(2, warmup, measured)};
        Thread[] threads = new Thread[workers.length];
        for (int t = 0; t < workers.length; t++) {
            threads[t] = new Thread(workers[t], "worker-" + t);
            threads[t].start();
        }
        long checksum = 0;
        long slowestNs = 0;
        for (int t = 0; t < workers.length; t++) {
            threads[t].join();
            checksum += workers[t].checksum;
            slowestNs = Math.max(slowestNs, workers[t].measuredNs);
        }
        double perSecond = measured * workers.length / (slowestNs / 1e9);
        System.out.printf("java-service: %d requests, %.0f requests/s, checksum %d%n",
                measured * workers.length, perSecond, checksum);
    }
}
