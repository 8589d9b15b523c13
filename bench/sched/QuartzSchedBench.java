/*
 * QuartzSchedBench - Quartz 2.3.2 (RAMJobStore) on the same workloads as bench_sched.c.
 *
 *   java -cp ... QuartzSchedBench load N        heap and RSS per job after scheduling N
 *                                               jobs with a daily cron trigger
 *   java -cp ... QuartzSchedBench fire N SECS   N jobs on "* * * * * ?" for SECS seconds:
 *                                               lateness (now - scheduled fire time, taken
 *                                               inside a no-op job, as PERF-ANCHORS.md
 *                                               measures it) and fires delivered
 *
 * Configuration: Quartz's defaults (10 worker threads) with the misfire threshold set to
 * 5 s, the same as Tethys's default.  Output is key=value lines (quartz.*).
 */
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Date;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.quartz.CronScheduleBuilder;
import org.quartz.Job;
import org.quartz.JobBuilder;
import org.quartz.JobDetail;
import org.quartz.JobExecutionContext;
import org.quartz.Scheduler;
import org.quartz.Trigger;
import org.quartz.TriggerBuilder;
import org.quartz.impl.StdSchedulerFactory;

public class QuartzSchedBench {
    static long[] lateness;
    static final AtomicInteger count = new AtomicInteger();
    static final AtomicLong outside = new AtomicLong();
    static volatile long firstAt, lastAt; /* ms: the window of scheduled times counted */

    public static class NoOp implements Job {
        public void execute(JobExecutionContext ctx) {
            long now = System.currentTimeMillis();
            long at = ctx.getScheduledFireTime().getTime();
            if (at < firstAt || at > lastAt) {
                outside.incrementAndGet();
                return;
            }
            int i = count.getAndIncrement();
            if (i < lateness.length)
                lateness[i] = now - at;
        }
    }

    static Scheduler scheduler() throws Exception {
        Properties p = new Properties();
        p.setProperty("org.quartz.scheduler.instanceName", "bench");
        p.setProperty("org.quartz.threadPool.threadCount", "10");
        p.setProperty("org.quartz.jobStore.class", "org.quartz.simpl.RAMJobStore");
        p.setProperty("org.quartz.jobStore.misfireThreshold", "5000");
        p.setProperty("org.quartz.scheduler.skipUpdateCheck", "true");
        return new StdSchedulerFactory(p).getScheduler();
    }

    static void schedule(Scheduler s, int n, String cron) throws Exception {
        for (int i = 0; i < n; i++) {
            JobDetail job = JobBuilder.newJob(NoOp.class).withIdentity("j" + i).build();
            Trigger t = TriggerBuilder.newTrigger().withIdentity("t" + i)
                    .withSchedule(CronScheduleBuilder.cronSchedule(cron)).build();
            s.scheduleJob(job, t);
        }
    }

    static long rssKb() throws Exception {
        for (String line : Files.readAllLines(Paths.get("/proc/self/status")))
            if (line.startsWith("VmRSS:"))
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
        return -1;
    }

    static long usedHeap() {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 4; i++) {
            System.gc();
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                break;
            }
        }
        return rt.totalMemory() - rt.freeMemory();
    }

    static void load(int n) throws Exception {
        Scheduler s = scheduler();
        long heap0 = usedHeap(), rss0 = rssKb();
        long t0 = System.nanoTime();
        schedule(s, n, "0 0 3 * * ?");
        long t1 = System.nanoTime();
        long heap1 = usedHeap(), rss1 = rssKb();
        System.out.printf("quartz.load.jobs=%d%n", n);
        System.out.printf("quartz.load.seconds=%.3f%n", (t1 - t0) / 1e9);
        System.out.printf("quartz.load.heap_bytes_per_job=%.0f%n", (double) (heap1 - heap0) / n);
        System.out.printf("quartz.load.bytes_per_job=%.0f%n", (rss1 - rss0) * 1024.0 / n);
        s.shutdown(false);
    }

    static void fire(int n, int secs) throws Exception {
        lateness = new long[n * (secs + 2)];
        Scheduler s = scheduler();
        long now = System.currentTimeMillis();
        /* count fires scheduled in [now+5s, now+5s+secs) after a warm-up of a few seconds */
        firstAt = (now / 1000 + 5) * 1000;
        lastAt = firstAt + (secs - 1) * 1000L;
        schedule(s, n, "* * * * * ?");
        s.start();
        while (System.currentTimeMillis() < lastAt + 7000)
            Thread.sleep(100);
        s.shutdown(false);
        int got = Math.min(count.get(), lateness.length);
        long[] l = Arrays.copyOf(lateness, got);
        Arrays.sort(l);
        long expected = (long) n * secs;
        System.out.printf("quartz.fire.jobs=%d%n", n);
        System.out.printf("quartz.fire.seconds=%d%n", secs);
        System.out.printf("quartz.fire.expected=%d%n", expected);
        System.out.printf("quartz.fire.delivered=%d%n", got);
        System.out.printf("quartz.fire.delivered_pct=%.2f%n", 100.0 * got / expected);
        System.out.printf("quartz.fire.lateness_p50_ms=%.3f%n", got > 0 ? (double) l[got / 2] : -1.0);
        System.out.printf("quartz.fire.lateness_p99_ms=%.3f%n",
                got > 0 ? (double) l[(int) (got * 0.99)] : -1.0);
        System.out.printf("quartz.fire.lateness_max_ms=%.3f%n", got > 0 ? (double) l[got - 1] : -1.0);
    }

    public static void main(String[] a) throws Exception {
        org.slf4j.LoggerFactory.getLogger(QuartzSchedBench.class); /* no binding: silent */
        if (a.length >= 2 && a[0].equals("load"))
            load(Integer.parseInt(a[1]));
        else if (a.length >= 3 && a[0].equals("fire"))
            fire(Integer.parseInt(a[1]), Integer.parseInt(a[2]));
        else {
            System.err.println("usage: QuartzSchedBench load N | fire N SECS");
            System.exit(2);
        }
        System.exit(0);
    }
}
