// A native leak without JNI of its own: each java.util.zip.Inflater is kept and never ended,
// so the zlib state it allocated with malloc (inflateInit2_) stays. The Java objects are
// small; the native memory grows.
// Argument: how long to run, in milliseconds.
import java.util.ArrayList;
import java.util.List;
import java.util.zip.Inflater;

public class InflaterLeak {
    static final List<Inflater> KEPT = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        long end = System.nanoTime() + Long.parseLong(args[0]) * 1_000_000L;
        while (System.nanoTime() < end) {
            Inflater inflater = new Inflater();
            inflater.setInput(new byte[] {0x78, (byte) 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
            inflater.inflate(new byte[16]);
            KEPT.add(inflater);
            Thread.sleep(2);
        }
        System.out.println("inflaters " + KEPT.size());
    }
}
