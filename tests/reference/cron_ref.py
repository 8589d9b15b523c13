#!/usr/bin/env python3
"""Independent reference implementation of shared/spec/cron.md (Python 3.11 stdlib only).

Written from the spec text alone, deliberately simple, to differentially test the C engine
(tests/reference/ref_diff.py).  It is not used by the product.

  cron_ref.py --tsv                      filter: EXPR<TAB>TZ<TAB>FROM<TAB>COUNT lines on stdin,
                                         EXPR TZ FROM COUNT STATUS PAYLOAD lines on stdout
                                         (STATUS OK / INVALID / ERROR), as `tethys cron next --tsv`
  cron_ref.py EXPR TZ FROM [COUNT]       one query, one time per line
  cron_ref.py --self-test                a few hand-written checks
  cron_ref.py --brute-check [N [SEED]]   check the interval walk below against a second-by-second
                                         reading of section 7 on N random cases near offset changes

Model (spec sections in brackets):
  * An expression is parsed into sets: seconds-of-day (SEC x MIN x HOUR), months, years and a
    day predicate (DOM/DOW incl. specials, section 5 rules).  `next_match(q)` is the first
    matching LOCAL time >= q, in "local seconds" (wall-clock seconds since 1970-01-01T00:00
    as if it were UTC); it skips years, months and days that cannot match.
  * A zone is turned into a list of constant-offset intervals [T_k, T_k+1) of real instants
    with offset o_k (found by sampling zoneinfo daily and bisecting to the exact second; the
    daily sampling finds exactly zoneinfo's own transitions for all 599 zones, 1970-2037, and
    the same ones as 30-minute sampling up to 2200 for the zones ref_diff.py uses).
    Interval k shows the local times [T_k + o_k, T_k+1 + o_k).
  * Fire instants (section 7), walking the intervals in time order, which yields them sorted:
      - every matching local time L shown by interval k fires at L - o_k, unless the hour field
        is not all 24 hours and L was already shown by an earlier interval (a repeat);
      - at a forward change T_k, the skipped local times [T_k + o_k-1, T_k + o_k) that occur in
        no interval: if the hour field is not all 24 hours and any of them matches, T_k fires
        (the first instant after the gap), once.
  * @every D: instants t with t mod D == 0 (section 1).
  * Bounds (section 8): strictly after FROM; local time of the fire <= 2199-12-31T23:59:59;
    FROM before 1972-01-01T00:00:00Z is an error.
  * Offsets with seconds (only Africa/Monrovia, -00:44:30 until 1972-01-07T00:44:30Z) are
    printed as +-HH:MM:SS, which is not RFC 3339: the spec assumes they end before 1972.
"""

import bisect
import datetime as dt
import functools
import re
import sys
from zoneinfo import ZoneInfo

EPOCH_ORD = dt.date(1970, 1, 1).toordinal()
DAY = 86400
MIN_FROM = 63072000  # 1972-01-01T00:00:00Z


def local_sec(y, m, d, sod=0):
    return (dt.date(y, m, d).toordinal() - EPOCH_ORD) * DAY + sod


END_LOCAL = local_sec(2199, 12, 31, 86399)


def split_local(L):
    days, sod = divmod(L, DAY)
    d = dt.date.fromordinal(days + EPOCH_ORD)
    return d, sod


def days_in_month(y, m):
    if m == 12:
        return 31
    return (dt.date(y, m + 1, 1) - dt.date(y, m, 1)).days


class Invalid(Exception):
    pass


# ----------------------------------------------------------------------------- parsing

MONTHS = {n: i + 1 for i, n in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
DAYS_Q = {n: i + 1 for i, n in enumerate("SUN MON TUE WED THU FRI SAT".split())}   # Quartz 1-7
DAYS_U = {n: i for i, n in enumerate("SUN MON TUE WED THU FRI SAT".split())}       # Unix 0-6

MACROS = {
    "@YEARLY": "0 0 0 1 1 ?", "@ANNUALLY": "0 0 0 1 1 ?", "@MONTHLY": "0 0 0 1 * ?",
    "@WEEKLY": "0 0 0 ? * SUN", "@DAILY": "0 0 0 * * ?", "@MIDNIGHT": "0 0 0 * * ?",
    "@HOURLY": "0 0 * * * ?",
}


class Field:
    """Field description: value range, names, step limit (number of values, section 3)."""

    def __init__(self, name, lo, hi, nsteps, names=None):
        self.name, self.lo, self.hi, self.nsteps, self.names = name, lo, hi, nsteps, names or {}


F_SEC = Field("second", 0, 59, 60)
F_MIN = Field("minute", 0, 59, 60)
F_HOUR = Field("hour", 0, 23, 24)
F_DOM = Field("day-of-month", 1, 31, 31)
F_MON = Field("month", 1, 12, 12, MONTHS)
F_DOWQ = Field("day-of-week", 1, 7, 7, DAYS_Q)
F_DOWU = Field("day-of-week", 0, 7, 7, DAYS_U)
F_YEAR = Field("year", 1970, 2199, 230)

TOKEN = r"[0-9]+|[A-Z]+"
ITEM = re.compile(rf"(?:(\*)|({TOKEN})(?:-({TOKEN}))?)(?:/([0-9]+))?")


def value(tok, f):
    if tok.isdigit():
        v = int(tok)
    elif tok in f.names:
        v = f.names[tok]
    else:
        raise Invalid(f"{f.name}: unknown name {tok!r}")
    if not f.lo <= v <= f.hi:
        raise Invalid(f"{f.name}: {tok} out of range")
    return v


def cyc(a, b, lo, hi):
    """Values a..b of the cyclic field lo..hi, wrapping when b < a (section 3)."""
    if a <= b:
        return list(range(a, b + 1))
    return list(range(a, hi + 1)) + list(range(lo, b + 1))


def plain_item(item, f, unix_dow=False):
    """Set of values of one ordinary item (`a`, `a-b`, `a/n`, `a-b/n`, `*/n`)."""
    m = ITEM.fullmatch(item)
    if not m:
        raise Invalid(f"{f.name}: bad item {item!r}")
    star, a, b, n = m.groups()
    if star and n is None:
        raise Invalid(f"{f.name}: * inside a list")
    step = 1
    if n is not None:
        step = int(n)
        if not 1 <= step <= f.nsteps:
            raise Invalid(f"{f.name}: step {n} out of range")
    if unix_dow:
        # section 2: Unix DOW counts 0-6 for *, steps and wrap; 7 is Sunday; a range or step
        # starting at 7 starts at Sunday; a range ending at 7 runs up to Sunday.
        if star:
            seq = list(range(0, 7))
        else:
            va = value(a, f)
            if b is None and n is None:
                return {va % 7}
            sa = 0 if va == 7 else va
            if b is None:                      # a/n
                seq = list(range(sa, 7))
            else:
                vb = value(b, f)
                if vb == 7 and va != 7:
                    eb = 7                     # up to the Sunday after Saturday
                else:
                    eb = 0 if vb == 7 else vb
                seq = [x % 7 for x in cyc(sa, eb, 0, 6)] if eb <= 6 else \
                    list(range(sa, 7)) + [0]
        return set(seq[::step])
    if star:
        seq = list(range(f.lo, f.hi + 1))
    else:
        va = value(a, f)
        if b is None and n is None:
            return {va}
        if b is None:
            seq = list(range(va, f.hi + 1))
        else:
            seq = cyc(va, value(b, f), f.lo, f.hi)
    return set(seq[::step])


def parse_field(text, f, allow_q=False, unix_dow=False, specials=None):
    """Returns (values set, special list).  text is upper-case."""
    if text == "?":
        if not allow_q:
            raise Invalid(f"{f.name}: ? not allowed here")
        return None, []
    if text == "*":
        if unix_dow:
            return set(range(7)), []
        return set(range(f.lo, f.hi + 1)), []
    vals, spec = set(), []
    for item in text.split(","):
        if item in ("*", "?"):
            raise Invalid(f"{f.name}: {item} inside a list")
        if specials is not None:
            s = specials(item)
            if s is not None:
                if s[0] == "val":
                    vals.add(s[1])
                else:
                    spec.append(s)
                continue
        vals |= plain_item(item, f, unix_dow)
    return vals, spec


def dom_special(item):
    if item == "L":
        return ("L", 0)
    if item == "LW":
        return ("LW",)
    m = re.fullmatch(r"L-([0-9]+)", item)
    if m:
        n = int(m.group(1))
        if not 0 <= n <= 30:
            raise Invalid(f"day-of-month: {item} out of range")
        return ("L", n)
    m = re.fullmatch(r"([0-9]+)W", item)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= 31:
            raise Invalid(f"day-of-month: {item} out of range")
        return ("W", n)
    if "L" in item or "W" in item:
        raise Invalid(f"day-of-month: bad item {item!r}")
    return None


def dow_special(item):
    if item == "L":
        return ("val", 7)
    m = re.fullmatch(rf"({TOKEN})L", item)
    if m and (m.group(1).isdigit() or m.group(1) in DAYS_Q):
        return ("nL", value(m.group(1), F_DOWQ))
    m = re.fullmatch(rf"({TOKEN})#([0-9]+)", item)
    if m:
        k = int(m.group(2))
        if not 1 <= k <= 5:
            raise Invalid(f"day-of-week: {item}: k out of range")
        return ("#", value(m.group(1), F_DOWQ), k)
    if "#" in item:
        raise Invalid(f"day-of-week: bad item {item!r}")
    return None


class Cron:
    every = None   # seconds for @every

    def __init__(self, expr):
        text = expr.upper()
        toks = text.split()  # runs of spaces/tabs (and other blanks; a tab-free TSV never has them)
        if not toks:
            raise Invalid("empty expression")
        if toks[0].startswith("@"):
            if toks[0] == "@EVERY":
                if len(toks) != 2:
                    raise Invalid("@every takes one duration")
                m = re.fullmatch(r"(?:([0-9]+)D)?(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?",
                                 toks[1])
                if not m or not toks[1]:
                    raise Invalid("bad @every duration")
                d, h, mi, s = (int(x) if x is not None else 0 for x in m.groups())
                tot = d * 86400 + h * 3600 + mi * 60 + s
                if not 1 <= tot <= 366 * 86400:
                    raise Invalid("@every duration out of range")
                self.every = tot
                return
            if len(toks) != 1 or toks[0] not in MACROS:
                raise Invalid("unknown macro")
            toks = MACROS[toks[0]].split()
        if len(toks) == 5:
            self.unix = True
            sec, (mi, hr, dom, mon, dow), yr = "0", toks, "*"
        elif len(toks) in (6, 7):
            self.unix = False
            sec, mi, hr, dom, mon, dow = toks[:6]
            yr = toks[6] if len(toks) == 7 else "*"
        else:
            raise Invalid(f"wrong number of fields: {len(toks)}")

        secs = parse_field(sec, F_SEC)[0]
        mins = parse_field(mi, F_MIN)[0]
        hours = parse_field(hr, F_HOUR)[0]
        self.months = parse_field(mon, F_MON)[0]
        self.years = parse_field(yr, F_YEAR)[0]
        if self.unix:
            self.dom, self.dom_spec = parse_field(dom, F_DOM)
            self.dow, self.dow_spec = parse_field(dow, F_DOWU, unix_dow=True)
            dom_star, dow_star = dom.startswith("*"), dow.startswith("*")
            self.day_mode = "and" if (dom_star or dow_star) else "or"
        else:
            self.dom, self.dom_spec = parse_field(dom, F_DOM, allow_q=True, specials=dom_special)
            self.dow, self.dow_spec = parse_field(dow, F_DOWQ, allow_q=True, specials=dow_special)
            dom_any, dow_any = dom in ("*", "?"), dow in ("*", "?")
            if dom == "?" and dow == "?":
                raise Invalid("? in both day fields")
            if dom_any and dow_any:
                self.day_mode = "all"
            elif dom_any:
                self.day_mode = "dow"
            elif dow_any:
                self.day_mode = "dom"
            else:
                raise Invalid("use ? in day-of-month or day-of-week")
        self.all_hours = hours == set(range(24))
        self.tod = sorted(h * 3600 + m * 60 + s for h in hours for m in mins for s in secs)
        self.sorted_months = sorted(self.months)
        self.sorted_years = sorted(self.years)
        self._mcache = {}
        self._nm = None

    # --- day matching (sections 4, 5)
    def dom_match(self, y, m, d, last):
        if d in self.dom:
            return True
        for s in self.dom_spec:
            if s[0] == "L":
                if d == last - s[1]:
                    return True
            elif s[0] == "LW":
                wd = dt.date(y, m, last).weekday()   # Mon=0 .. Sun=6
                lw = last - 1 if wd == 5 else last - 2 if wd == 6 else last
                if d == lw:
                    return True
            elif s[0] == "W":
                n = s[1]
                if n > last:
                    continue
                wd = dt.date(y, m, n).weekday()
                if wd == 5:
                    t = n - 1 if n - 1 >= 1 else n + 2
                elif wd == 6:
                    t = n + 1 if n + 1 <= last else n - 2
                else:
                    t = n
                if d == t:
                    return True
        return False

    def dow_match(self, y, m, d, last):
        wd = dt.date(y, m, d).weekday()
        if self.unix:
            return (wd + 1) % 7 in self.dow
        q = (wd + 1) % 7 + 1          # Quartz 1=Sunday
        if q in self.dow:
            return True
        for s in self.dow_spec:
            if s[0] == "nL" and q == s[1] and d + 7 > last:
                return True
            if s[0] == "#" and q == s[1] and (d - 1) // 7 + 1 == s[2]:
                return True
        return False

    def month_days(self, y, m):
        r = self._mcache.get((y, m))
        if r is None:
            last = days_in_month(y, m)
            r = []
            for d in range(1, last + 1):
                if self.day_mode == "all":
                    ok = True
                elif self.day_mode == "dom":
                    ok = self.dom_match(y, m, d, last)
                elif self.day_mode == "dow":
                    ok = self.dow_match(y, m, d, last)
                elif self.day_mode == "or":
                    ok = self.dom_match(y, m, d, last) or self.dow_match(y, m, d, last)
                else:
                    ok = self.dom_match(y, m, d, last) and self.dow_match(y, m, d, last)
                if ok:
                    r.append(d)
            self._mcache[(y, m)] = r
        return r

    def matches(self, L):
        d, sod = split_local(L)
        return (d.year in self.years and d.month in self.months and
                d.day in self.month_days(d.year, d.month) and
                self.tod[min(bisect.bisect_left(self.tod, sod), len(self.tod) - 1)] == sod)

    def next_match(self, q):
        """First matching local time >= q (local seconds), or None past END_LOCAL."""
        c = self._nm
        if c is not None and c[0] <= q and (c[1] is None or q <= c[1]):
            return c[1]
        r = self._next_match(q)
        self._nm = (q, r)
        return r

    def _next_match(self, q):
        if not self.tod or q > END_LOCAL:
            return None
        d, sod = split_local(q)
        y, m, day = d.year, d.month, d.day
        while True:
            # next allowed year
            i = bisect.bisect_left(self.sorted_years, y)
            if i == len(self.sorted_years):
                return None
            if self.sorted_years[i] != y:
                y, m, day, sod = self.sorted_years[i], 1, 1, 0
            # next allowed month in this year
            j = bisect.bisect_left(self.sorted_months, m)
            if j == len(self.sorted_months):
                y, m, day, sod = y + 1, 1, 1, 0
                continue
            if self.sorted_months[j] != m:
                m, day, sod = self.sorted_months[j], 1, 0
            mdays = self.month_days(y, m)
            k = bisect.bisect_left(mdays, day)
            while k < len(mdays):
                dd = mdays[k]
                s0 = sod if dd == day else 0
                t = bisect.bisect_left(self.tod, s0)
                if t < len(self.tod):
                    r = local_sec(y, m, dd, self.tod[t])
                    return r if r <= END_LOCAL else None
                k += 1
            if m == 12:
                y, m = y + 1, 1
            else:
                m += 1
            day, sod = 1, 0
            if y > 2199:
                return None


# ----------------------------------------------------------------------------- zones

UTC = dt.timezone.utc
SAMPLE = 86400   # daily: checked against zoneinfo's own transition list for all 599 zones, 1970-2037
T_LO = -86400 * 7          # 1969-12-25
T_HI = local_sec(2200, 1, 10)
NEG_INF, POS_INF = -(1 << 50), 1 << 50


class Zone:
    def __init__(self, name):
        self.name = name
        self.zi = ZoneInfo(name)
        self._build()

    def off(self, t):
        return int(dt.datetime.fromtimestamp(t, self.zi).utcoffset().total_seconds())

    def _build(self):
        starts, offs = [NEG_INF], [self.off(T_LO)]

        def find(a, oa, b, ob):
            # offsets at a and b differ: find every change in (a, b] with distinct ends
            if oa == ob:
                return
            lo, hi = a, b            # off(lo) == oa, off(hi) != oa
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.off(mid) == oa:
                    lo = mid
                else:
                    hi = mid
            oh = self.off(hi)
            starts.append(hi)
            offs.append(oh)
            find(hi, oh, b, ob)

        prev_t, prev_o = T_LO, offs[0]
        t = T_LO + SAMPLE
        while t <= T_HI:
            o = self.off(t)
            if o != prev_o:
                find(prev_t, prev_o, t, o)
            prev_t, prev_o = t, o
            t += SAMPLE
        self.starts, self.offs = starts, offs

    def interval(self, t):
        return bisect.bisect_right(self.starts, t) - 1

    def end(self, k):
        return self.starts[k + 1] if k + 1 < len(self.starts) else POS_INF

    def shows(self, j, L):
        """Does interval j show local time L?"""
        return (0 <= j < len(self.starts) and
                self.starts[j] + self.offs[j] <= L < self.end(j) + self.offs[j])

    def transitions(self):
        """[(instant, offset before, offset after)] of every offset change."""
        return [(self.starts[k], self.offs[k - 1], self.offs[k]) for k in range(1, len(self.starts))]


@functools.lru_cache(maxsize=None)
def zone(name):
    return Zone(name)


def fmt(t, o):
    L = t + o
    d, sod = split_local(L)
    sign = "+" if o >= 0 else "-"
    a = abs(o)
    off = f"{sign}{a // 3600:02d}:{a % 3600 // 60:02d}"
    if a % 60:
        off += f":{a % 60:02d}"  # cannot happen after 1972 in tzdata; kept visible if it does
    return (f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{sod // 3600:02d}:{sod % 3600 // 60:02d}:"
            f"{sod % 60:02d}{off}")


# ----------------------------------------------------------------------------- next()

WINDOW = 8   # intervals looked at either side for repeats / really-skipped times


def fire_instants(c, z, t_from, count):
    """The first `count` fire instants strictly after t_from, as (instant, offset)."""
    out = []
    if c.every is not None:
        t = (t_from // c.every + 1) * c.every
        while len(out) < count:
            o = z.off(t)
            if t + o > END_LOCAL:
                break
            out.append((t, o))
            t += c.every
        return out

    k0 = z.interval(t_from + 1)
    k = k0
    while k < len(z.starts) and len(out) < count:
        T, o = z.starts[k], z.offs[k]
        if T + o > END_LOCAL and k > k0:
            break
        # forward change at T: one fire if a really-skipped local time matches (section 7)
        if k > 0 and not c.all_hours and T > t_from and o > z.offs[k - 1] \
                and T + o <= END_LOCAL:
            gs, ge = T + z.offs[k - 1], T + o
            L = c.next_match(gs)
            while L is not None and L < ge:
                if not any(z.shows(j, L) for j in range(k - WINDOW, k + WINDOW)):
                    out.append((T, o))
                    break
                L = c.next_match(L + 1)
        # local times shown by this interval
        lo = (T if k > k0 else t_from + 1) + o
        hi = z.end(k) + o             # exclusive
        L = c.next_match(lo)
        while L is not None and L < hi and len(out) < count:
            t = L - o
            if c.all_hours or not any(z.shows(j, L) for j in range(k - WINDOW, k)):
                if not out or out[-1][0] != t:
                    out.append((t, o))
            L = c.next_match(L + 1)
        k += 1
    return out[:count]


def parse_from(s):
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})", s):
        raise ValueError(f"bad FROM {s!r}")
    a = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return int(a.timestamp())


def next_times(expr, tz, frm, count):
    """('OK', [rfc3339...]) | ('INVALID', msg) | ('ERROR', msg)."""
    try:
        c = Cron(expr)
    except Invalid as e:
        return "INVALID", str(e)
    try:
        t = parse_from(frm)
        z = zone(tz)
        n = int(count)
    except Exception as e:  # noqa: BLE001 - any bad input is an ERROR line
        return "ERROR", str(e)
    if t < MIN_FROM:
        return "ERROR", "FROM before 1972-01-01T00:00:00Z"
    return "OK", [fmt(t, o) for t, o in fire_instants(c, z, t, n)]


def tsv_main():
    for line in sys.stdin:
        line = line.rstrip("\r\n")
        f = line.split("\t")
        if len(f) < 4:
            print(f"{line}\tERROR\tneed 4 fields", flush=True)
            continue
        st, pay = next_times(f[0], f[1], f[2], f[3])
        if st == "OK":
            pay = ",".join(pay)
        print(f"{f[0]}\t{f[1]}\t{f[2]}\t{f[3]}\t{st}\t{pay}", flush=False)
    sys.stdout.flush()


def self_test():
    cases = [
        # daily 02:30 through a spring gap -> first instant after the gap
        ("0 30 2 * * ?", "America/New_York", "2021-03-13T12:00:00Z", 2,
         ["2021-03-14T03:00:00-04:00", "2021-03-15T02:30:00-04:00"]),
        # every 30 min through the autumn overlap: both occurrences
        ("0 */30 * * * ?", "America/New_York", "2021-11-07T05:10:00Z", 4,
         ["2021-11-07T01:30:00-04:00", "2021-11-07T01:00:00-05:00",
          "2021-11-07T01:30:00-05:00", "2021-11-07T02:00:00-05:00"]),
        # non-all hours in the overlap: first only
        ("0 */30 0-22 * * ?", "America/New_York", "2021-11-07T05:10:00Z", 3,
         ["2021-11-07T01:30:00-04:00", "2021-11-07T02:00:00-05:00", "2021-11-07T02:30:00-05:00"]),
        # Apia skipped 2011-12-30
        ("0 0 12 30 12 ?", "Pacific/Apia", "2011-12-01T00:00:00Z", 2,
         ["2011-12-31T00:00:00+14:00", "2012-12-30T12:00:00+14:00"]),
        ("@every 1d", "Asia/Shanghai", "2020-01-01T00:00:00Z", 1, ["2020-01-02T08:00:00+08:00"]),
        ("0 12 * * 1-7/2", "UTC", "2024-01-01T00:00:00Z", 4,
         ["2024-01-01T12:00:00+00:00", "2024-01-03T12:00:00+00:00",
          "2024-01-05T12:00:00+00:00", "2024-01-07T12:00:00+00:00"]),
    ]
    bad = 0
    for e, tz, f, n, want in cases:
        st, got = next_times(e, tz, f, n)
        if st != "OK" or got != want:
            bad += 1
            print(f"FAIL {e!r} {tz} {f}: {st} {got} != {want}")
    for e in ["0 0 12 5 JAN MON 2030", "0 12 * * 8", "0 0 12 ? * 0", "0 12 L * *",
              "@every 0s", "0 0 12 L-3W * ?", "0 *,5 * * * ?", "0 0 12 ? * ?"]:
        if next_times(e, "UTC", "2020-01-01T00:00:00Z", 1)[0] != "INVALID":
            bad += 1
            print(f"FAIL {e!r} should be INVALID")
    print("self-test:", "ok" if not bad else f"{bad} failed")
    return 1 if bad else 0


def brute_fires(c, zname, t_from, window):
    """Fire instants in (t_from, t_from + window] straight from section 7's wording, second by
    second, with zoneinfo only (no interval list): t fires if its local time matches and either
    the hour field is all 24 hours or no earlier instant showed that local time; or t is the
    first instant after a jump forward over a matching local time (hour field not all 24)."""
    zi = ZoneInfo(zname)

    def loc(t):
        d = dt.datetime.fromtimestamp(t, zi)
        return local_sec(d.year, d.month, d.day, d.hour * 3600 + d.minute * 60 + d.second)

    seen = set()
    for t in range(t_from - 2 * DAY, t_from + 1):     # local times shown before FROM
        seen.add(loc(t))
    out, prev = [], loc(t_from)
    for t in range(t_from + 1, t_from + window + 1):
        L = loc(t)
        fire = False
        if c.matches(L) and (c.all_hours or L not in seen):
            fire = True
        if not c.all_hours and L > prev + 1:
            # skipped local times (prev, L) that occur nowhere nearby
            for x in range(prev + 1, L):
                if c.matches(x) and x not in seen and not any(
                        loc(u) == x for u in range(t, t + 2 * 3600, 1)):
                    fire = True
                    break
        if fire and L <= END_LOCAL:
            out.append(t)
        seen.add(L)
        prev = L
    return out


def brute_check(n, seed):
    """Compare fire_instants with brute_fires on n random cases around offset changes."""
    import random
    r = random.Random(seed)
    zones = ["Europe/Berlin", "America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe",
             "Pacific/Chatham", "Europe/Dublin", "Pacific/Apia", "Africa/Casablanca",
             "Antarctica/Troll", "America/Santiago", "Asia/Gaza", "America/St_Johns"]
    exprs = ["0 */30 * * * ?", "0 */30 0-22 * * ?", "0 30 2 * * ?", "0 0 2 * * ?", "0 0 * * * ?",
             "0 0,30 2,3 * * ?", "*/20 */7 * * * ?", "*/20 */7 1-3 * * ?", "0 15 1 * * ?",
             "0 0 0 * * ?", "0 30 23 * * ?", "0 59 23 * * ?", "0 */10 22-1 * * ?",
             "0 */10 0-11,12-23 * * ?", "*/15 * * * *", "*/15 2 * * *", "0 0 12 * * ?",
             "0 45 2 * * ?", "0 0 3 * * ?", "0 0 * 30 12 ?", "0 0 12 30 12 ?", "0 0 0-22 * * ?"]
    bad = 0
    for i in range(n):
        zn = r.choice(zones)
        z = zone(zn)
        trans = [x for x in z.transitions() if MIN_FROM + 3 * DAY < x[0] < local_sec(2199, 1, 1)]
        T = r.choice(trans)[0]
        t_from = T - r.randint(0, 2 * 3600)
        e = r.choice(exprs)
        c = Cron(e)
        window = 5 * 3600
        want = brute_fires(c, zn, t_from, window)
        got = [t for t, _ in fire_instants(c, z, t_from, len(want) + 1)
               if t <= t_from + window]
        if got != want:
            bad += 1
            print(f"BRUTE MISMATCH {e!r} {zn} from={fmt(t_from, z.off(t_from))}:\n"
                  f"  walk:  {[fmt(t, z.off(t)) for t in got][:12]}\n"
                  f"  brute: {[fmt(t, z.off(t)) for t in want][:12]}")
    print(f"brute-check: {n} cases, {bad} mismatches")
    return 1 if bad else 0


def main(argv):
    if argv[1:2] == ["--brute-check"]:
        return brute_check(int(argv[2]) if len(argv) > 2 else 200,
                           int(argv[3]) if len(argv) > 3 else 1)
    if argv[1:2] == ["--tsv"]:
        tsv_main()
        return 0
    if argv[1:2] == ["--self-test"]:
        return self_test()
    if len(argv) in (4, 5):
        st, pay = next_times(argv[1], argv[2], argv[3], argv[4] if len(argv) == 5 else "1")
        if st == "OK":
            print("\n".join(pay))
            return 0
        print(f"{st}: {pay}", file=sys.stderr)
        return 2 if st == "INVALID" else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
