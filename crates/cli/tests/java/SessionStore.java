// A static map that keeps every session (a reference leak): SessionStore$Session keeps
// growing; SessionStore$Request objects die with each request (not growing).
// Argument: how long to run, in milliseconds.
import java.util.HashMap;
import java.util.Map;

public class SessionStore {
    static final Map<Integer, Session> SESSIONS = new HashMap<>();

    static final class Session {
        final int id;
        final byte[] state = new byte[2000];

        Session(int id) {
            this.id = id;
        }
    }

    static final class Request {
        final byte[] body = new byte[1000];
    }

    public static void main(String[] args) throws Exception {
        long end = System.nanoTime() + Long.parseLong(args[0]) * 1_000_000L;
        long served = 0;
        int next = 0;
        while (System.nanoTime() < end) {
            for (int i = 0; i < 4; i++) {
                Request request = new Request();
                served += request.body.length;
            }
            SESSIONS.put(next, new Session(next));
            next++;
            Thread.sleep(1);
        }
        System.out.println("sessions " + SESSIONS.size() + " served " + served);
    }
}
