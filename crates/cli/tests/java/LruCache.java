// A LinkedHashMap LRU cache that evicts its eldest entry (removeEldestEntry) once full: it
// fills within the first second, then stays at its capacity. No class keeps growing.
// Argument: how long to run, in milliseconds.
import java.util.LinkedHashMap;
import java.util.Map;

public class LruCache {
    static final int CAPACITY = 500;

    static final class Entry {
        final byte[] value = new byte[300];
    }

    static final Map<Integer, Entry> CACHE = new LinkedHashMap<>(CAPACITY, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Integer, Entry> eldest) {
            return size() > CAPACITY;
        }
    };

    public static void main(String[] args) throws Exception {
        long end = System.nanoTime() + Long.parseLong(args[0]) * 1_000_000L;
        int next = 0;
        while (System.nanoTime() < end) {
            CACHE.put(next, new Entry());
            CACHE.get(next / 2);
            next++;
            Thread.sleep(1);
        }
        System.out.println("cached " + CACHE.size() + " of " + next);
    }
}
