/*
 * QuartzNext - a batch driver for Quartz 2.3.2's CronExpression, speaking the same TSV
 * protocol as `tethys cron next --tsv` (and conformance/cron/check.py's --tsv-cmd):
 *
 *   stdin:  EXPR<TAB>TZ<TAB>FROM<TAB>COUNT
 *   stdout: EXPR<TAB>TZ<TAB>FROM<TAB>COUNT<TAB>OK<TAB>t1,t2,...      (empty list: never fires)
 *           EXPR<TAB>TZ<TAB>FROM<TAB>COUNT<TAB>INVALID<TAB>message
 *           EXPR<TAB>TZ<TAB>FROM<TAB>COUNT<TAB>TIMEOUT<TAB>t1,...     (the times found before
 *                                                                       the limit)
 *           EXPR<TAB>TZ<TAB>FROM<TAB>COUNT<TAB>ERROR<TAB>message      (bad TZ/FROM/COUNT)
 *
 * Each vector: new CronExpression(EXPR), setTimeZone(TimeZone.getTimeZone(TZ)), then
 * getTimeAfter COUNT times starting from FROM (a null answer ends the list).  Times are
 * printed as RFC 3339 local times in TZ with seconds and a numeric offset, +00:00 for zero.
 *
 * Quartz's getTimeAfter can loop forever on some inputs (DOM `L-30W`), so each vector
 * runs on its own thread and is abandoned after --timeout-ms (default 2000): the thread
 * is stopped (Thread.stop still works on Java 17) so it does not keep burning a core, and
 * the vector is reported as TIMEOUT.  The batch therefore always completes, one output
 * line per input line, in order.
 *
 *   java -cp build/quartz:/usr/share/java/quartz2.jar:/usr/share/java/slf4j-api.jar \
 *       QuartzNext [--timeout-ms N] < in.tsv
 *   java ... QuartzNext --max-year     prints CronExpression.MAX_YEAR (this year + 100)
 */

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.TimeZone;

import org.quartz.CronExpression;

public final class QuartzNext {
    private static final DateTimeFormatter RFC3339 =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss");

    /** What one vector produced; filled by the worker thread. */
    private static final class Result {
        volatile String status; // null while running
        volatile String payload = "";
        final List<String> times = new ArrayList<>();
    }

    public static void main(String[] args) throws Exception {
        long timeoutMs = 2000;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--max-year")) {
                System.out.println(CronExpression.MAX_YEAR);
                return;
            } else if (args[i].equals("--timeout-ms") && i + 1 < args.length) {
                timeoutMs = Long.parseLong(args[++i]);
            } else {
                System.err.println("usage: QuartzNext [--timeout-ms N] [--max-year] < tsv");
                System.exit(2);
            }
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.endsWith("\r")) {
                line = line.substring(0, line.length() - 1);
            }
            String[] f = line.split("\t", -1);
            String head;
            Result r;
            if (f.length < 4) {
                head = line.replace('\t', ' ');
                r = new Result();
                r.status = "ERROR";
                r.payload = "expected EXPR<TAB>TZ<TAB>FROM<TAB>COUNT";
            } else {
                head = f[0] + "\t" + f[1] + "\t" + f[2] + "\t" + f[3];
                r = runWithLimit(f[0], f[1], f[2], f[3], timeoutMs);
            }
            String payload = r.status.equals("OK") || r.status.equals("TIMEOUT")
                    ? String.join(",", r.times) : r.payload;
            out.write(head + "\t" + r.status + "\t" + clean(payload));
            out.newLine();
            out.flush();
        }
    }

    /** Messages go on one TSV line: no tabs, no line breaks. */
    private static String clean(String s) {
        return s == null ? "" : s.replaceAll("[\\t\\r\\n]+", " ");
    }

    @SuppressWarnings({"deprecation", "removal"})
    private static Result runWithLimit(String expr, String tz, String from, String count, long timeoutMs)
            throws InterruptedException {
        Result r = new Result();
        Thread t = new Thread(() -> compute(expr, tz, from, count, r), "quartz-vector");
        t.setDaemon(true);
        t.start();
        t.join(timeoutMs);
        if (t.isAlive()) {
            try {
                t.stop();
            } catch (Throwable ignored) {
                // Thread.stop unsupported: the daemon thread is simply abandoned.
            }
            Result to = new Result();
            synchronized (r.times) {
                to.times.addAll(r.times);
            }
            to.status = "TIMEOUT";
            return to;
        }
        if (r.status == null) {
            r.status = "ERROR";
            r.payload = "worker ended without a result";
        }
        return r;
    }

    private static void compute(String expr, String tz, String from, String count, Result r) {
        int n;
        Date after;
        TimeZone zone = TimeZone.getTimeZone(tz);
        try {
            n = Integer.parseInt(count.trim());
            after = Date.from(OffsetDateTime.parse(from.trim()).toInstant());
        } catch (RuntimeException e) {
            r.payload = "bad COUNT or FROM: " + e;
            r.status = "ERROR";
            return;
        }
        if (!zone.getID().equals(tz) && !tz.equals("Z")) {
            r.payload = "unknown time zone " + tz;
            r.status = "ERROR";
            return;
        }
        CronExpression ce;
        try {
            ce = new CronExpression(expr);
            ce.setTimeZone(zone);
        } catch (Exception e) { // ParseException, or anything the constructor throws
            r.payload = e.getMessage() != null ? e.getMessage() : e.toString();
            r.status = "INVALID";
            return;
        }
        try {
            Date d = after;
            for (int i = 0; i < n; i++) {
                d = ce.getTimeAfter(d);
                if (d == null) {
                    break;
                }
                String s = format(d.toInstant(), zone);
                synchronized (r.times) {
                    r.times.add(s);
                }
            }
            r.status = "OK";
        } catch (Exception e) {
            r.payload = "getTimeAfter threw " + e;
            r.status = "ERROR";
        }
    }

    /** RFC 3339 local time in zone with seconds and a numeric offset (+00:00 for zero). */
    static String format(Instant t, TimeZone zone) {
        int offMs = zone.getOffset(t.toEpochMilli());
        ZoneOffset off = ZoneOffset.ofTotalSeconds(offMs / 1000);
        OffsetDateTime odt = t.atOffset(off);
        int secs = off.getTotalSeconds();
        int a = Math.abs(secs);
        String o = String.format("%c%02d:%02d", secs < 0 ? '-' : '+', a / 3600, (a / 60) % 60);
        return odt.format(RFC3339) + o;
    }
}
