#!/usr/bin/env python3
"""Random differential test: `tethys cron next --tsv` against tests/reference/cron_ref.py.

  python3 tests/reference/ref_diff.py [--n 3000] [--seed 1] [--tethys build/tethys] [--jobs 2]

Generates N random queries (deterministic for a seed): expressions of all four forms weighted
toward tricky cases (day specials, wrap-around, steps, mixed-case names, Unix DOW 7, both Unix
day fields restricted, all-24 hour fields in several spellings and near-all ones, some invalid
expressions), zones heavy on daylight-saving oddities, FROM either uniform in 1972..2199 or a
few hours before one of the zone's real offset changes, COUNT 1..20.  Runs them through the
engine (one batch) and through the reference (multiprocessing), compares status and every time
as instant AND offset, prints each disagreement and finally
`ref-diff: N compared, M disagree`; exits 1 on any disagreement.

--dump FILE writes the generated queries (TSV, the engine's input) for replaying;
--cases FILE reads queries from FILE instead of generating them.
"""

import argparse
import datetime as dt
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cron_ref as ref  # noqa: E402

ZONES = [
    "Europe/Berlin", "Europe/London", "America/New_York", "America/Sao_Paulo",
    "Australia/Lord_Howe", "Pacific/Chatham", "Europe/Dublin", "Asia/Kathmandu", "Asia/Kolkata",
    "America/Santiago", "Pacific/Apia", "America/Mexico_City", "Asia/Almaty", "America/Nuuk",
    "America/Asuncion", "Africa/Casablanca", "Asia/Gaza", "Antarctica/Troll", "Europe/Moscow",
    "America/St_Johns", "Asia/Tehran", "UTC",
]
# zones drawn more often: the ones with the most interesting changes
HEAVY = ["Europe/Berlin", "America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe",
         "Pacific/Chatham", "Europe/Dublin", "Pacific/Apia", "Africa/Casablanca",
         "Antarctica/Troll", "America/Santiago", "Asia/Gaza"]

T_MIN = ref.MIN_FROM
T_MAX = ref.local_sec(2199, 12, 31, 12 * 3600)

MON_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DOW_NAMES = "SUN MON TUE WED THU FRI SAT".split()
# hand-picked expressions: readings the spec settles, boundaries, specials (all agreed on)
CURATED = """\
0 0 12 */5 * MON|0 0 12 */1 * ?|0 0 12 ? * */2|0 0 12 1-31 * MON|0 0 12 * * MON|0 0 12 ? * *
@every 0d0h0m1s|@every 366d|@every 366d1s|@every 365d24h|@every 00s|@every 1d25h|@every 0h60m
@EVERY 5S|@every 1h30m0s|@every 1m1h|@every 1s1s|@every 1d 1s|@every 7d|@every 86399s
0 0 12 LW,L-3,15W * ?|0 0 12 ? * L,MON|0 0 12 ? * l|0 0 12 ? * L-2|0 0 12 ? * 6L,FRI#2
0 0 12 ? * SUNL|0 0 12 ? * 0L|0 0 12 ? * 7#5|0 0 12 L-0 * ?|0 0 12 L-30 * ?|0 0 12 L-31 * ?
0 0 12 1 1 ? 1970-1971|0 0 12 ? JAN/3 SUN/2|0 0 12 ? * MON-FRI/2|0 0 12 ? * 06#02
0 0 12 0005W * ?|0 0 12 L-005 * ?|0 0 12 15w * ?|0 0 12 lw * ?|0 12 * * 0-7/8|0 12 * * */7
0 0 12 * * ? */230|0 0 12 * * ? */231|0 0 12 * */12 ?|0 0 12 ? JAN MON|0 0 12 ? MON JAN
0 0 12 1W-5 * ?|0 0 12 LW-2 * ?|0 0 12 ? * 2#1-3|0 0 12 ? * L#1|0 0 12 ? * 5L/2|0 0 12 L/2 * ?
0 0 12 ? * 7-1|0 0 12 ? * 1-7/7|0 0 12 ? * mon#1,L,Wed|0 12 1-15 * MON|0 12 */2 * MON
0 12 1-15 * */2|0 12 * * 0-0|0 12 * * 6-7/1|0 12 * * SAT-SUN|0 12 * * SUN-7|0 12 * * 0-7/7
0 12 * * 7/7|0 12 * * 1-7/3|0 12 * * SUN-6/3|0 0 12 ? * SAT-SUN/1|0 0 12 * NOV-FEB/2 ?
0 0 23-22 * * ?|0 0 1-0 * * ?|0 0 0-22,23 * * ?|0 0 */2,1/2 * * ?|0 0 5-4/1 * * ?
0 0 5-4/24 * * ?|0 0 */24 * * ?|*/60 * * * * ?|0 */60 * * * ?|0 0 12 31-1/31 * ?
0 0 12 30-2/2 * ?|* * * * * ?|0 0 12 ? * 1#05|0 0 12 31W * ?|0 0 12 1W * ?|0 0 12 ? * 1L,7L
0 0 12 * * * *|0 0 12 L,L * ?|0 0 12 ? * SAT,L|0 0 12 29 2 ?|0 0 12 L-28 2 ?|0 0 12 30W 2 ?
0 0 12 29W 2 ?|0 0 12 LW 2 ?|0 12 1 1 1|0 0 12 1 * ? 2199-1970|0 0 12 1 * ? 1970/229
0 30 2 * * ?|0 0 2 * * ?|0 */30 * * * ?|*/30 * * * *|0 30 1 * * ?|0 */15 0-22 * * ?
0 0 0 * * ?|0 30 23 * * ?|0 0 * 30 12 ?|0 0 0-22 30 12 ?|0 59 23 L * ?|0 0 0 1 * ?
*/5 2 * * *|0 0/30 1-3 * * ?|30 2 * * 0|0 0 2,3 * * ?|0 0,30 2,3 * * ?|* * 2 * * ?""".replace(
    "\n", "|").split("|")
MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]


# ----------------------------------------------------------------------------- generator

class Gen:
    def __init__(self, rnd):
        self.r = rnd

    def case(self, s):
        """Random letter case for a name or keyword."""
        r = self.r.random()
        if r < 0.4:
            return s.upper()
        if r < 0.6:
            return s.lower()
        if r < 0.8:
            return s.capitalize()
        return "".join(c.upper() if self.r.random() < 0.5 else c.lower() for c in s)

    def num(self, v, width=2):
        if self.r.random() < 0.08:
            return str(v).zfill(width + self.r.randint(0, 1))
        return str(v)

    # --- ordinary items over lo..hi, optionally with names (value -> name)
    def tok(self, v, names=None):
        if names and self.r.random() < 0.5:
            return self.case(names(v))
        return self.num(v)

    def item(self, lo, hi, nsteps, names=None, focus=None):
        r = self.r
        pick = (lambda: r.choice(focus) if focus and r.random() < 0.7 else r.randint(lo, hi))
        k = r.random()
        if k < 0.30:
            return self.tok(pick(), names)
        if k < 0.55:                                   # range, often wrapping
            a, b = pick(), pick()
            return f"{self.tok(a, names)}-{self.tok(b, names)}"
        if k < 0.72:                                   # range with step
            a, b = pick(), pick()
            n = r.choice([1, 2, 3, 5, r.randint(1, nsteps)])
            return f"{self.tok(a, names)}-{self.tok(b, names)}/{self.num(n)}"
        if k < 0.85:
            return f"{self.tok(pick(), names)}/{self.num(r.choice([1, 2, 3, 7, r.randint(1, nsteps)]))}"
        return f"*/{self.num(r.choice([1, 2, 3, 4, 5, 10, 15, nsteps, r.randint(1, nsteps)]))}"

    def lst(self, lo, hi, nsteps, names=None, focus=None, extra=None):
        r = self.r
        n = r.choice([1, 1, 1, 2, 2, 3, 4])
        items = []
        for _ in range(n):
            if extra and r.random() < 0.35:
                items.append(extra())
            else:
                items.append(self.item(lo, hi, nsteps, names, focus))
        return ",".join(items)

    def simple(self, lo, hi, nsteps, names=None, focus=None, extra=None, star=0.25):
        r = self.r.random()
        if r < star:
            return "*"
        if r < star + 0.15 and focus:
            return ",".join(self.num(v) for v in sorted(set(self.r.sample(focus, min(len(focus), self.r.randint(1, 2))))))
        return self.lst(lo, hi, nsteps, names, focus, extra)

    # --- fields
    def secmin(self, focus=None, dense=False):
        r = self.r.random()
        if r < (0.35 if not dense else 0.1):
            return self.num(self.r.choice([0, 0, 0, 30, self.r.randint(0, 59)]))
        if dense and r < 0.4:
            return self.r.choice(["*", "*/5", "*/15", "*/30", "0/20", "*/7", "10-50/20", "50-10/10"])
        return self.simple(0, 59, 60, focus=focus, star=0.15)

    ALL24 = ["*", "*/1", "0-23", "0-23/1", "22-21", "00-23", "0-11,12-23", "*/1,3", "5-4",
             "12-11/1", "0/1", "23-22", "1-0", "*/2,1/2", "0-12,13-23/1"]
    NEAR = ["0-22", "1-23", "*/2", "3-1", "0-21,23", "*/3", "2-0", "4-2/1", "1/1", "*/23",
            "0-1,3-23"]

    def hour(self, focus=None):
        r = self.r.random()
        if r < 0.25:
            return self.r.choice(self.ALL24)
        if r < 0.35:
            return self.r.choice(self.NEAR)
        if r < 0.5 and focus:
            return ",".join(str(h) for h in sorted(set(self.r.sample(focus, self.r.randint(1, min(3, len(focus)))))))
        if r < 0.6 and focus:
            a = self.r.choice(focus)
            return f"{a}-{(a + self.r.randint(0, 3)) % 24}"
        return self.simple(0, 23, 24, focus=focus, star=0.05)

    def month(self, focus=None):
        return self.simple(1, 12, 12, names=lambda v: MON_NAMES[v - 1], focus=focus, star=0.5)

    def year(self, focus=None):
        r = self.r
        k = r.random()
        if k < 0.6:
            return "*"
        y0 = focus or r.randint(1972, 2199)
        c = [str(y0), f"{y0}-{min(2199, y0 + r.randint(0, 5))}", f"{y0 - r.randint(0, 3)}/{r.randint(1, 5)}",
             f"{r.randint(2100, 2199)}-{r.randint(1970, 2100)}",   # wrap
             f"{y0},{r.randint(1970, 2199)}", f"*/{r.choice([1, 2, 7, 230])}",
             f"{r.randint(1970, 2199)}-{r.randint(1970, 2199)}/{r.randint(1, 230)}"]
        return r.choice(c)

    def dom_special(self):
        r = self.r
        return r.choice(["L", "L", f"L-{r.randint(0, 30)}", f"L-{r.randint(0, 5)}", "LW",
                         f"{r.randint(1, 31)}W", f"{r.choice([1, 15, 28, 29, 30, 31])}W"])

    def dom_q(self, focus=None):
        r = self.r
        k = r.random()
        if k < 0.2:
            return self.case(self.dom_special())
        return self.simple(1, 31, 31, focus=focus, extra=lambda: self.case(self.dom_special()), star=0.0)

    def dow_name_q(self, v):
        return DOW_NAMES[v - 1]

    def dow_special(self):
        r = self.r
        n = r.randint(1, 7)
        nt = self.case(DOW_NAMES[n - 1]) if r.random() < 0.4 else str(n)
        return r.choice(["L", f"{nt}L", f"{nt}#{r.randint(1, 5)}", f"{nt}#{r.randint(1, 5)}"])

    def dow_q(self):
        r = self.r
        if r.random() < 0.2:
            return self.case(self.dow_special())
        return self.simple(1, 7, 7, names=self.dow_name_q, extra=lambda: self.case(self.dow_special()),
                           star=0.0)

    def dow_item_u(self):
        r = self.r
        name = lambda v: DOW_NAMES[v % 7]  # noqa: E731
        k = r.random()
        if k < 0.25:
            return self.tok(r.randint(0, 7), name)
        if k < 0.55:
            a, b = r.randint(0, 7), r.randint(0, 7)
            if a == 7 and b == 7:        # `7-7`: left out, the spec can be read two ways
                b = r.randint(0, 6)
            s = f"{self.tok(a, name)}-{self.tok(b, name)}"
            if r.random() < 0.4:
                s += f"/{r.randint(1, 7)}"
            return s
        if k < 0.75:
            return f"{self.tok(r.randint(0, 7), name)}/{r.randint(1, 7)}"
        if k < 0.85:
            return f"*/{r.randint(1, 7)}"
        return r.choice(["7", "0-7", "5-7", "7-2", "7/3", "1-7/2", "SUN-SAT/2", "FRI-MON", "sun-7"])

    def dow_u(self):
        r = self.r
        k = r.random()
        if k < 0.3:
            return "*"
        if k < 0.4:
            return f"*/{r.randint(1, 7)}"
        return ",".join(self.dow_item_u() for _ in range(r.choice([1, 1, 2, 3])))

    def dom_u(self, focus=None):
        r = self.r.random()
        if r < 0.35:
            return "*"
        if r < 0.45:
            return f"*/{self.r.randint(1, 31)}"
        return self.simple(1, 31, 31, focus=focus, star=0.0)

    # --- whole expressions
    def quartz(self, ctx):
        r = self.r
        dense = r.random() < 0.5
        sec = self.secmin(focus=ctx.get("secs"), dense=dense) if r.random() < 0.6 else self.num(0)
        mi = self.secmin(focus=ctx.get("mins"), dense=dense)
        hr = self.hour(ctx.get("hours"))
        k = r.random()
        if k < 0.3:
            dom, dow = r.choice([("*", "?"), ("?", "*"), ("*", "*"), ("?", "*")])
        elif k < 0.65:
            dom, dow = self.dom_q(ctx.get("days")), "?"
        else:
            dom, dow = r.choice(["?", "?", "*"]), self.dow_q()
        mon = self.month(ctx.get("months"))
        if ctx and r.random() < 0.6:      # make the change's own day(s) match
            dom, dow = r.choice([("*", "?"), ("?", "*")] + [(self.days_with(ctx), "?")] * 3)
            mon = r.choice(["*", ",".join(map(str, ctx["months"])), mon])
        f = [sec, mi, hr, dom, mon, dow]
        if r.random() < 0.3:
            f.append(self.year(ctx.get("year")))
        return f

    def unix(self, ctx):
        r = self.r
        dense = r.random() < 0.5
        mi = self.secmin(focus=ctx.get("mins"), dense=dense)
        hr = self.hour(ctx.get("hours"))
        k = r.random()
        if k < 0.3:
            dom, dow = "*", "*"
        elif k < 0.55:               # both restricted: OR
            dom, dow = self.simple(1, 31, 31, focus=ctx.get("days"), star=0.0), self.dow_u()
            if dow.startswith("*"):
                dow = self.dow_item_u()
        else:
            dom, dow = self.dom_u(ctx.get("days")), self.dow_u()
        mon = self.month(ctx.get("months"))
        if ctx and r.random() < 0.6:
            dom, dow = r.choice([("*", "*"), (self.days_with(ctx), "*"), (self.days_with(ctx), self.dow_u())])
            mon = r.choice(["*", ",".join(map(str, ctx["months"])), mon])
        return [mi, hr, dom, mon, dow]

    def days_with(self, ctx):
        """A day-of-month field that matches the days around the change (sometimes only them)."""
        r = self.r
        days = ",".join(map(str, ctx["days"]))
        return r.choice([days, days, f"{days},{r.randint(1, 31)}", f"{ctx['days'][0]}-{r.randint(1, 31)}",
                         f"{days},L", f"{days},{self.case(self.dom_special())}"])

    def every(self):
        r = self.r
        k = r.random()
        if k < 0.3:
            n = r.choice([1, 5, 7, 30, 45, 59, 60, 90, 3600, 5400, 86400, 604800, 31622400, 31622401])
            return f"@every {n}s"
        parts = []
        for u, mx in (("d", 400), ("h", 30), ("m", 70), ("s", 70)):
            if r.random() < 0.45:
                v = r.randint(0, mx) if r.random() < 0.5 else r.randint(0, 3)
                parts.append(self.num(v) + self.case(u))
        if not parts:
            parts = [f"{r.randint(1, 90)}{self.case('m')}"]
        return self.case("@every") + " " + "".join(parts)

    def invalid(self, f, unix):
        """Break a field list in one of the ways section 6 lists."""
        r = self.r
        f = list(f)
        i = r.randrange(len(f))
        k = r.randrange(14)
        if k == 0:                      # wrong number of fields: 3, 4 or 8
            f = f[:r.choice([3, 4])] if r.random() < 0.5 else (f + ["1", "2", "3"])[:8]
        elif k == 1:
            f[i] = r.choice(["60", "99", "-1", "2200", "32", "13", "8", "1969"])
        elif k == 2:
            f[i] = f[i] + "/0"
        elif k == 3:
            f[i] = "*/" + r.choice(["61", "25", "32", "13", "8", "231", "100"])
        elif k == 4:
            f[i] = "*," + f[i]
        elif k == 5:
            f[i] = f[i] + r.choice(["x", "-", ",", "#", "/", "W", "L", "L-2", "--5", "#2"])
        elif k == 6:
            f[i] = r.choice(["FOO", "MONDAY", "SEPT", "JANUARY", "Ju"])
        elif k == 7:
            f[i] = "?"
        elif k == 8:
            f[i] = r.choice(["L", "LW", "15W", "5L", "MON#2", "L-3"])
        elif k == 9:
            f[i] = r.choice(["2W-4", "5L-2", "3#", "L-3W", "L-31", "0W", "32W", "6#6", "8L", "0L",
                             "2#0", "1.5", "", "**", "5-*", "*/2/2"])
        elif k == 10 and not unix:
            f[3], f[5] = r.choice([("1", "MON"), ("L", "2"), ("?", "?"), ("*/2", "1#1"), ("15W", "L")])
        elif k == 11:
            return r.choice(["@every", "@every 5", "@every 1w", "@every 30s1m", "@every 1h 30m",
                             "@every 0s", "@every 367d", "@reboot", "@daily *", "@ hourly",
                             "@every 1h1h", "@every -5s", "@every 31622401s"])
        elif k == 12:
            f = f[:r.randint(0, 4)]
        else:
            f[i] = r.choice(["?", "*,5", "1,*", "?,1", "1,,2"])
        return " ".join(x for x in f if x is not None)


def sep(r):
    return r.choice([" "] * 8 + ["  ", "   "])


def fmt_from(r, t, zname):
    """FROM as RFC 3339: Z, the zone's own offset, or an arbitrary offset."""
    k = r.random()
    if k < 0.3:
        o = 0
        suffix = "Z"
    elif k < 0.7:
        o = ref.zone(zname).off(t)
        suffix = None
    else:
        o = r.choice([-12, -7, -3.5, 0, 2, 5.75, 8, 12.75, 14]) * 3600
        o = int(o)
        suffix = None
    if o % 60:                    # Africa/Monrovia until 1972-01-07: not writable in RFC 3339
        o, suffix = 0, "Z"
    s = ref.fmt(t, o)
    if suffix:
        s = s[:19] + suffix
    return s


def generate(n, seed, zones=None):
    r = random.Random(seed)
    heavy = HEAVY if zones is None else zones
    zones = ZONES if zones is None else zones
    g = Gen(r)
    out = []
    for _ in range(n):
        zname = r.choice(heavy) if r.random() < 0.5 else r.choice(zones)
        z = ref.zone(zname)
        trans = [x for x in z.transitions() if T_MIN + 86400 < x[0] < T_MAX]
        ctx = {}
        if trans and r.random() < 0.55:
            T, ob, oa = r.choice(trans)
            k = r.random()
            if k < 0.15:                 # right at the change, or at the end of an overlap
                t = r.choice([T, T + (ob - oa if ob > oa else 0)]) + r.randint(-2, 1)
            elif k < 0.35:               # after it (inside a repeated hour, say)
                t = T + r.randint(0, 3 * 3600)
            else:
                t = T - r.randint(1, 6 * 3600)
            # steer the schedule toward the local times around the change
            lb, la = T + ob, T + oa
            db, sb = ref.split_local(lb - 1)
            da, sa = ref.split_local(la)
            hours = sorted({sb // 3600, sa // 3600, (sb // 3600 + 1) % 24, (sa // 3600 - 1) % 24})
            ctx = {"hours": hours, "days": sorted({db.day, da.day}),
                   "months": sorted({db.month, da.month}), "year": db.year,
                   "mins": sorted({(sb % 3600) // 60, (sa % 3600) // 60, 0, 30}),
                   "secs": [0, (sb % 60), 59]}
        else:
            t = r.randint(T_MIN, T_MAX)
            k = r.random()
            if k < 0.03:
                t = r.choice([T_MIN, T_MIN + 1, T_MIN + 3600])
            elif k < 0.08:               # close to the end bound, 2199-12-31T23:59:59 local
                t = ref.END_LOCAL - z.off(ref.END_LOCAL - 14 * 3600) - r.choice(
                    [0, 1, 2, 30, 59, 60, 61, 3600, 86400, r.randint(0, 40 * 86400)])
        frm = fmt_from(r, t, zname)
        count = r.randint(1, 20)
        k = r.random()
        if k < 0.05:
            expr = r.choice(CURATED)
        elif k < 0.10:
            expr = g.case(r.choice(MACROS))
        elif k < 0.17:
            expr = g.every()
        else:
            unix = r.random() < 0.38
            f = g.unix(ctx) if unix else g.quartz(ctx)
            if r.random() < 0.08:
                expr = g.invalid(f, unix)
            else:
                expr = sep(r).join(f) if r.random() < 0.2 else " ".join(f)
        if r.random() < 0.02:
            expr = " " + expr + " "
        out.append((expr, zname, frm, str(count)))
    return out


# ----------------------------------------------------------------------------- running

def ref_one(q):
    return ref.next_times(*q)


def run_engine(cases, exe):
    inp = "".join("\t".join(c) + "\n" for c in cases)
    try:
        p = subprocess.run([exe, "cron", "next", "--tsv"], input=inp, capture_output=True,
                           text=True, timeout=600)
    except OSError as e:
        sys.exit(f"ref-diff: cannot run {exe}: {e} (build it, or pass --tethys PATH)")
    lines = p.stdout.splitlines()
    if len(lines) != len(cases):
        sys.exit(f"ref-diff: engine printed {len(lines)} lines for {len(cases)} queries "
                 f"(exit {p.returncode}): {p.stderr.strip()[:300]}")
    res = []
    for c, line in zip(cases, lines):
        f = line.split("\t")
        if len(f) < 5:
            res.append(("?", line))
            continue
        st, pay = f[4], f[5] if len(f) > 5 else ""
        res.append((st, [x for x in pay.split(",") if x] if st == "OK" else pay))
    return res


def parse_t(s):
    try:
        a = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return int(a.timestamp()), int(a.utcoffset().total_seconds())
    except ValueError:
        return None


def show_list(xs, i):
    return ",".join(f">>>{x}<<<" if j == i else x for j, x in enumerate(xs)) or "(none)"


def kind(tz, t, o):
    """What is special about fire instant t (offset o) in zone tz, for triage, or None."""
    try:
        z = ref.zone(tz)
    except Exception:  # noqa: BLE001
        return None
    k = z.interval(t)
    if z.offs[k] != o:
        return "at an instant where the zone's offset is not the one printed"
    L = t + o
    if any(z.shows(j, L) for j in range(k - 8, k)):
        return "the 2nd occurrence of a repeated local time"
    if any(z.shows(j, L) for j in range(k + 1, k + 8)):
        return "the 1st occurrence of a repeated local time"
    if t == z.starts[k] and k > 0 and z.offs[k - 1] < o:
        return "the first instant after a gap"
    return None


def compare(ans_ref, ans_eng, tz="UTC"):
    """None if equal, else a description."""
    sr, pr = ans_ref
    se, pe = ans_eng
    if sr != se:
        def d(s, p):
            return f"{s} {','.join(p) if s == 'OK' else p}"
        return f"status differs:\n    ref:    {d(sr, pr)}\n    engine: {d(se, pe)}"
    if sr != "OK":
        return None
    a = [parse_t(x) for x in pr]
    b = [parse_t(x) for x in pe]
    if a == b and None not in b:
        return None
    i = next((j for j in range(min(len(a), len(b))) if a[j] != b[j] or b[j] is None),
             min(len(a), len(b)))
    what = ("lengths differ" if i == min(len(a), len(b)) else
            "offset differs" if b[i] and a[i][0] == b[i][0] else "instant differs")
    for side, xs in (("ref", a), ("engine", b)):
        if i < len(xs) and xs[i]:
            k = kind(tz, *xs[i])
            if k:
                what += f"; {side} time #{i + 1} is {k}"
    return (f"time #{i + 1} {what} (ref {len(a)} times, engine {len(b)})\n"
            f"    ref:    {show_list(pr, i)}\n    engine: {show_list(pe, i)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tethys", default="build/tethys")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--zones", help="comma-separated zones to draw from instead of the built-in "
                    "list, or 'all' for every zone of this machine's tz database (slower)")
    ap.add_argument("--dump", help="write the generated queries to this TSV file")
    ap.add_argument("--cases", help="read queries (EXPR TZ FROM COUNT) from this TSV file")
    a = ap.parse_args()

    t0 = time.monotonic()
    if a.cases:
        with open(a.cases, encoding="utf-8") as fh:
            cases = [tuple(l.rstrip("\r\n").split("\t")[:4]) for l in fh
                     if l.strip() and not l.startswith("#")]
    else:
        zones = None
        if a.zones == "all":
            import zoneinfo
            zones = sorted(z for z in zoneinfo.available_timezones()
                           if not z.startswith(("posix/", "right/")) and z != "localtime")
        elif a.zones:
            zones = a.zones.split(",")
        cases = generate(a.n, a.seed, zones)
    if a.dump:
        with open(a.dump, "w", encoding="utf-8") as fh:
            fh.writelines("\t".join(c) + "\n" for c in cases)
    eng = run_engine(cases, a.tethys)
    t1 = time.monotonic()
    with mp.Pool(a.jobs) as pool:
        refs = pool.map(ref_one, cases, chunksize=25)
    t2 = time.monotonic()

    bad = 0
    for c, x, y in zip(cases, refs, eng):
        why = compare(x, y, c[1])
        if why:
            bad += 1
            print(f"DIFF {c[0]!r} tz={c[1]} from={c[2]} count={c[3]}: {why}")
    kinds = {}
    for x in refs:
        kinds[x[0]] = kinds.get(x[0], 0) + 1
    print(f"(seed {a.seed}; reference statuses {kinds}; engine {t1 - t0:.1f} s, "
          f"reference {t2 - t1:.1f} s)", file=sys.stderr)
    print(f"ref-diff: {len(cases)} compared, {bad} disagree")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
