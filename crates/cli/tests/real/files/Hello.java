// Run by the real-program suite (tests/real_programs.rs): compiled with javac by the test, then
// run with java natively and under leakscope; its output must be the same.
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class Hello {
    static long collatz(long n) {
        long steps = 0;
        while (n != 1) {
            n = (n % 2 == 0) ? n / 2 : 3 * n + 1;
            steps++;
        }
        return steps;
    }

    public static void main(String[] args) throws Exception {
        System.out.println("hello from java " + System.getProperty("java.specification.version"));
        Map<String, Integer> counts = new HashMap<>();
        String text = "the quick brown fox jumps over the lazy dog the end";
        for (String word : text.split(" ")) {
            counts.merge(word, 1, Integer::sum);
        }
        System.out.println(new TreeMap<>(counts));
        List<String> garbage = new ArrayList<>();
        for (int i = 0; i < 200_000; i++) {
            garbage.add("item-" + i);
            if (garbage.size() > 1000) {
                garbage.clear();
            }
        }
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<Long>> results = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            final int from = t * 25_000 + 1;
            results.add(pool.submit(() -> {
                long best = 0;
                for (long n = from; n < from + 25_000; n++) {
                    best = Math.max(best, collatz(n));
                }
                return best;
            }));
        }
        long best = 0;
        for (Future<Long> result : results) {
            best = Math.max(best, result.get());
        }
        pool.shutdown();
        System.out.println("longest collatz chain below 100001: " + best + " steps");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 10; i++) {
            sb.append(Integer.toHexString(i * 37));
        }
        System.out.println(sb);
    }
}
