/*
 * QuartzCronBench - the Quartz 2.3.2 side of the cron benchmark (bench_cron.c is the
 * Tethys side; run.sh runs both, one after the other, and compares them).
 *
 * Same workload as bench_cron.c: the ten MIX expressions, each in UTC, Asia/Shanghai,
 * Europe/Berlin and America/New_York, next fire time after 1,000 instants spread evenly
 * over 2026-2030 with the same fixed jitter (instantAt).
 *
 *   java -cp <build>/quartz:/usr/share/java/quartz2.jar:/usr/share/java/slf4j-api.jar \
 *        QuartzCronBench time [--next-out FILE]
 *   java -XX:+UseParallelGC -Xms2g -Xmx2g -cp ... QuartzCronBench memory
 *
 * time:
 *   parse  new CronExpression(expr), timed in batches of PARSE_BATCH with System.nanoTime,
 *          PARSE_SAMPLES batches per expression after PARSE_WARMUP untimed parses of each
 *          (so the JIT has compiled the parser); median per-call time over all batches.
 *   next   getTimeAfter(Date) on one CronExpression per expression x zone (setTimeZone),
 *          every instant; each call timed as the mean of NEXT_BATCH identical calls, after
 *          WARMUP_ROUNDS untimed rounds over the whole workload (JIT warm-up); NEXT_ROUNDS
 *          timed rounds; median and p99 over all samples.  The garbage Quartz makes per call
 *          (a GregorianCalendar or two) is part of its cost, so GC pauses stay in the samples.
 * memory:
 *   retained heap per compiled expression: used heap (the least of three readings, each
 *   after System.gc()) is measured, new CronExpression objects are created and kept
 *   (setTimeZone to shared TimeZone objects), and used heap is measured again; the
 *   difference divided by the count.  Per expression with PER_EXPR copies of it alone;
 *   overall with COPIES of each of the ten (100,000 objects) at once.  Run it with the
 *   parallel collector: the serial one was seen to keep a previous batch of dead objects
 *   alive through several System.gc() calls, which under-counts the next batch.
 *
 * Results are folded into a checksum that is printed, so the JIT cannot drop the calls.
 * Output: readable lines, then key=value lines (quartz.next_ns_median=...) for run.sh.
 */

import java.io.FileWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.text.ParseException;
import java.util.Arrays;
import java.util.Date;
import java.util.TimeZone;

import org.quartz.CronExpression;

public final class QuartzCronBench {
    static final String[] MIX = {
        "0/5 * * * * ?",
        "0 0 12 * * ?",
        "0 15 10 ? * MON-FRI",
        "0 0/30 8-18 ? * MON-FRI",
        "0 0 2 L * ?",
        "0 0 9 ? * 6#3",
        "0 10,44 14 ? 3 WED",
        "0 0 0 1W * ?",
        "0 0 0 1 1 ? 2099",
        "15 4 * * * ? 2030-2040",
    };
    static final String[] ZONES = {"UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York"};

    static final int N_INSTANT = 1000;
    static final long T_BEGIN = 1767225600L; // 2026-01-01T00:00:00Z
    static final long T_END = 1924992000L;   // 2031-01-01T00:00:00Z

    static final int PARSE_BATCH = 100;
    static final int PARSE_SAMPLES = 200;
    static final int PARSE_WARMUP = 20000;
    static final int NEXT_BATCH = 8;
    static final int NEXT_ROUNDS = 5;
    static final int WARMUP_ROUNDS = 4;
    static final int COPIES = 10000;   // of each expression in the whole-mix measurement
    static final int PER_EXPR = 5000;  // copies per expression in the per-expression measurement

    static long sink;

    /** The i-th instant, exactly as bench_cron.c's instant_at(). */
    static long instantAt(int i) {
        long step = (T_END - T_BEGIN) / N_INSTANT;
        return T_BEGIN + (long) i * step + ((long) i * 104729) % 86400;
    }

    static double quantile(double[] sorted, int n, double q) {
        int k = (int) (q * n);
        return sorted[Math.min(k, n - 1)];
    }

    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "time";
        String nextOut = null;
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--next-out") && i + 1 < args.length) {
                nextOut = args[++i];
            } else {
                System.err.println("usage: QuartzCronBench time [--next-out FILE] | memory");
                System.exit(2);
            }
        }
        if (mode.equals("memory")) {
            memory();
        } else if (mode.equals("time")) {
            time(nextOut);
        } else {
            System.err.println("usage: QuartzCronBench time [--next-out FILE] | memory");
            System.exit(2);
        }
    }

    static void time(String nextOut) throws ParseException, IOException {
        int nE = MIX.length, nZ = ZONES.length;
        CronExpression[][] ce = new CronExpression[nE][nZ];
        for (int e = 0; e < nE; e++) {
            for (int z = 0; z < nZ; z++) {
                ce[e][z] = new CronExpression(MIX[e]);
                ce[e][z].setTimeZone(TimeZone.getTimeZone(ZONES[z]));
            }
        }
        Date[] instants = new Date[N_INSTANT];
        for (int i = 0; i < N_INSTANT; i++) {
            instants[i] = new Date(instantAt(i) * 1000L);
        }
        long t0 = System.nanoTime(), last = t0;
        for (int i = 0; i < 100000; i++) {
            last = System.nanoTime();
        }
        System.out.printf("QuartzCronBench: Quartz 2.3.2 on %s %s; %d expressions x %d zones x %d instants (2026-2030)%n",
                System.getProperty("java.vm.name"), System.getProperty("java.version"), nE, nZ, N_INSTANT);
        System.out.printf("  clock: System.nanoTime, %.1f ns per read%n", (last - t0) / 100000.0);

        // parse
        double[] parseAll = new double[nE * PARSE_SAMPLES];
        double[] parseMed = new double[nE];
        for (int e = 0; e < nE; e++) {
            for (int i = 0; i < PARSE_WARMUP; i++) {
                sink += new CronExpression(MIX[e]).hashCode();
            }
        }
        for (int e = 0; e < nE; e++) {
            double[] s = new double[PARSE_SAMPLES];
            for (int k = 0; k < PARSE_SAMPLES; k++) {
                long a = System.nanoTime();
                for (int i = 0; i < PARSE_BATCH; i++) {
                    sink += new CronExpression(MIX[e]).hashCode();
                }
                s[k] = (System.nanoTime() - a) / (double) PARSE_BATCH;
                parseAll[e * PARSE_SAMPLES + k] = s[k];
            }
            Arrays.sort(s);
            parseMed[e] = quantile(s, PARSE_SAMPLES, 0.5);
        }
        Arrays.sort(parseAll);
        double parseNs = quantile(parseAll, parseAll.length, 0.5);

        // next: warm-up rounds over the whole workload, then timed rounds
        for (int r = 0; r < WARMUP_ROUNDS; r++) {
            for (int e = 0; e < nE; e++) {
                for (int z = 0; z < nZ; z++) {
                    for (int i = 0; i < N_INSTANT; i++) {
                        Date d = ce[e][z].getTimeAfter(instants[i]);
                        sink += d == null ? 1 : d.getTime();
                    }
                }
            }
        }
        System.gc();
        int perRound = nE * nZ * N_INSTANT;
        double[] nextAll = new double[perRound * NEXT_ROUNDS];
        double[] nextMedExpr = new double[nE];
        int nAll = 0;
        for (int e = 0; e < nE; e++) {
            double[] s = new double[nZ * N_INSTANT * NEXT_ROUNDS];
            int n = 0;
            for (int r = 0; r < NEXT_ROUNDS; r++) {
                for (int z = 0; z < nZ; z++) {
                    CronExpression c = ce[e][z];
                    for (int i = 0; i < N_INSTANT; i++) {
                        Date from = instants[i];
                        long a = System.nanoTime();
                        for (int b = 0; b < NEXT_BATCH; b++) {
                            Date d = c.getTimeAfter(from);
                            sink += d == null ? 1 : d.getTime();
                        }
                        double ns = (System.nanoTime() - a) / (double) NEXT_BATCH;
                        nextAll[nAll++] = ns;
                        s[n++] = ns;
                    }
                }
            }
            Arrays.sort(s, 0, n);
            nextMedExpr[e] = quantile(s, n, 0.5);
        }
        Arrays.sort(nextAll, 0, nAll);
        double nextMed = quantile(nextAll, nAll, 0.5);
        double nextP99 = quantile(nextAll, nAll, 0.99);

        if (nextOut != null) {
            try (PrintWriter w = new PrintWriter(new FileWriter(nextOut))) {
                for (int e = 0; e < nE; e++) {
                    for (int z = 0; z < nZ; z++) {
                        for (int i = 0; i < N_INSTANT; i++) {
                            Date d = ce[e][z].getTimeAfter(instants[i]);
                            w.printf("%d\t%s\t%d\t%d%n", e, ZONES[z], instantAt(i),
                                    d == null ? -1 : d.getTime() / 1000);
                        }
                    }
                }
            }
        }

        System.out.printf("  %-28s %10s %10s%n", "expression", "parse ns", "next ns");
        for (int e = 0; e < nE; e++) {
            System.out.printf("  %-28s %10.0f %10.0f%n", MIX[e], parseMed[e], nextMedExpr[e]);
        }
        System.out.printf("  next(): %d samples (%d calls x %d rounds after %d warm-up rounds), each the mean of %d identical calls%n",
                nAll, perRound, NEXT_ROUNDS, WARMUP_ROUNDS, NEXT_BATCH);
        System.out.printf("quartz.parse_ns=%.1f%n", parseNs);
        System.out.printf("quartz.next_ns_median=%.1f%n", nextMed);
        System.out.printf("quartz.next_ns_p99=%.1f%n", nextP99);
        System.out.printf("quartz.checksum=%d%n", sink);
    }

    static long usedHeap(int gcs) {
        Runtime rt = Runtime.getRuntime();
        long best = Long.MAX_VALUE;
        for (int i = 0; i < gcs; i++) {
            System.gc();
            best = Math.min(best, rt.totalMemory() - rt.freeMemory());
        }
        return best;
    }

    static CronExpression make(int e, TimeZone zone) throws ParseException {
        CronExpression c = new CronExpression(MIX[e]);
        c.setTimeZone(zone);
        return c;
    }

    /** Heap retained per object by PER_EXPR copies of MIX[e]. */
    static long retainedPerCopy(int e, TimeZone[] zones) throws ParseException {
        CronExpression[] keep = new CronExpression[PER_EXPR];
        long before = usedHeap(3);
        for (int i = 0; i < PER_EXPR; i++) {
            keep[i] = make(e, zones[i % zones.length]);
        }
        long after = usedHeap(3);
        sink += keep[PER_EXPR - 1].hashCode();
        return (after - before) / PER_EXPR;
    }

    static void memory() throws ParseException {
        int nE = MIX.length;
        TimeZone[] zones = new TimeZone[ZONES.length];
        for (int z = 0; z < zones.length; z++) {
            zones[z] = TimeZone.getTimeZone(ZONES[z]);
            zones[z].getOffset(0L); // load the zone's rules before the baseline
        }
        make(0, zones[0]).getTimeAfter(new Date(0)); // load every class first

        // Per expression: PER_EXPR copies of one expression at a time (small heap, quick GCs).
        long[] perExpr = new long[nE];
        long max = 0;
        for (int e = 0; e < nE; e++) {
            perExpr[e] = retainedPerCopy(e, zones);
            max = Math.max(max, perExpr[e]);
        }

        // The whole mix: COPIES of each expression alive at once.
        CronExpression[] all = new CronExpression[nE * COPIES];
        long before = usedHeap(3);
        for (int i = 0; i < all.length; i++) {
            all[i] = make(i % nE, zones[(i / nE) % zones.length]);
        }
        long total = usedHeap(3) - before;

        System.out.printf("QuartzCronBench memory: parallel GC, used heap after System.gc(), before and after "
                + "creating the objects (%d of each expression alone, then %d of the mix)%n", PER_EXPR, all.length);
        for (int e = 0; e < nE; e++) {
            System.out.printf("  %-28s %8d bytes%n", MIX[e], perExpr[e]);
        }
        System.out.printf("quartz.bytes_per_expr=%d%n", total / all.length);
        System.out.printf("quartz.bytes_per_expr_max=%d%n", max);
        sink += all[all.length - 1].hashCode();
        System.out.printf("quartz.checksum=%d%n", sink);
    }
}
