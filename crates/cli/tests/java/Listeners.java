// A listener list that is never deregistered: every handled connection adds a
// Listeners$ConnectionListener to a static list and never removes it (growing), while the
// Listeners$Event objects it fires die at once (not growing).
// Argument: how long to run, in milliseconds.
import java.util.ArrayList;
import java.util.List;

public class Listeners {
    interface Listener {
        void on(Event event);
    }

    static final class Event {
        final byte[] payload = new byte[400];
    }

    static final class ConnectionListener implements Listener {
        final long[] counters = new long[24];

        @Override
        public void on(Event event) {
            counters[event.payload.length % counters.length]++;
        }
    }

    static final List<Listener> LISTENERS = new ArrayList<>();

    static void fire() {
        Event event = new Event();
        for (int i = Math.max(0, LISTENERS.size() - 8); i < LISTENERS.size(); i++) {
            LISTENERS.get(i).on(event);
        }
    }

    public static void main(String[] args) throws Exception {
        long end = System.nanoTime() + Long.parseLong(args[0]) * 1_000_000L;
        while (System.nanoTime() < end) {
            LISTENERS.add(new ConnectionListener());
            for (int i = 0; i < 10; i++) {
                fire();
            }
            Thread.sleep(1);
        }
        System.out.println("listeners " + LISTENERS.size());
    }
}
