"""Time convlab next to its anchors and print the ratios as a table.

    python benchmarks/compare.py [--quick] [--filter S2] [--filter S4 ...]

Runs the ``time_*`` methods of the asv benchmark classes in ``benchmarks/benchmarks/``
(one source of truth: the same inputs, the same calls), without asv. For every case, dtype
and ``workers`` it

1. calls each method twice (warm-up, then a timed call that sets how many calls make a
   sample) and checks that the methods of a group (convlab's variants and the anchors that
   compute the same thing) give the same result;
2. times all methods of the case round-robin (one sample of each in turn, so a burst of
   load from elsewhere hits convlab and its anchors alike), timeit-style: a sample is the
   mean of enough calls to last 0.1 s (0.01 s with --quick), garbage collection off, after
   one untimed call (so that no method pays for the caches and freed memory the previous
   one left); the median of the samples is reported (at most 9 samples, fewer but at
   least 3 once a case has taken 6 s);
3. prints one row per convlab variant with the fastest anchor and ratio = anchor time /
   convlab time (higher is better), and for the rows that issue 2 sets a target, the target,
   the measured value and PASS / MISS.

The anchors are single-threaded (none of scipy.signal.correlate / oaconvolve / fftconvolve,
scipy.ndimage or numpy.convolve takes ``workers``), so they are timed once, in the
``workers=1`` pass, and the ``workers=2`` rows compare against those times from the same run.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set, are removed from this script's own
environment (it re-executes itself without them, before numpy is imported); nothing else
is changed.
"""

import os
import sys

_UNSET_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_UNSET_MARKER = "CONVLAB_COMPARE_UNSET"

if any(name in os.environ for name in _UNSET_VARIABLES):
    _environment = {k: v for k, v in os.environ.items() if k not in _UNSET_VARIABLES}
    _environment[_UNSET_MARKER] = ",".join(n for n in _UNSET_VARIABLES if n in os.environ)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], _environment)

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import inspect  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

import convlab  # noqa: E402

# The script's folder is sys.path[0], so this is benchmarks/benchmarks/, the asv suite.
from benchmarks import bench_signal  # noqa: E402

CLASSES = [
    bench_signal.S1Correlate1D,
    bench_signal.S2Correlate2D,
    bench_signal.S3Correlate2DLarge,
    bench_signal.S4Strided,
    bench_signal.S2Gradients,
]

# The targets of issue 2 ("Speed to reach"). kind:
#   "anchor"  ratio to the named anchor            >= value
#   "fastest" ratio to the fastest anchor          >= value
#   "own"     time(other variant) / time(variant)  >= value   (stride 1 vs stride 2)
#   "slower"  time(variant) / time(other variant)  <= value   (gradient vs forward)
# workers=None: the target applies to every workers value.
TARGETS = [
    dict(case="S2", variant="direct", workers=2, kind="anchor",
         anchor="scipy.ndimage.correlate", value=8.0),
    dict(case="S2", variant="direct", workers=1, kind="anchor",
         anchor="scipy.ndimage.correlate", value=4.0),
    dict(case="S1", variant="auto", workers=None, kind="fastest", value=3.0),
    dict(case="S3", variant="auto", workers=None, kind="fastest", value=1.5),
    dict(case="S4", variant="direct", workers=None, kind="own",
         other="direct, stride 1", value=3.0),
    dict(case="S4", variant="auto", workers=None, kind="own",
         other="auto, stride 1", value=3.0),
    dict(case="S2-grad", variant="correlate_grad", workers=None, kind="slower",
         other="correlate", value=1.5),
    dict(case="S2-grad", variant="convolve_grad", workers=None, kind="slower",
         other="convolve", value=1.5),
]


# ----------------------------------------------------------------------------- machine


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def _openmp_status():
    try:
        from convlab._kernels import _direct
    except ImportError as error:
        return f"unknown ({error})"
    return "enabled" if _direct.openmp_enabled() else "disabled (serial build)"


def _blas_summary():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    pools = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
             for p in threadpool_info()]
    return ", ".join(pools) or "none loaded"


def machine_info():
    lines = [
        f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"cpu       {_cpu_model()}; {os.cpu_count()} logical cores, {_usable_cores()} usable",
        f"python    {platform.python_version()} ({platform.platform()})",
        f"numpy     {np.__version__}   scipy {scipy.__version__}   "
        f"convlab {getattr(convlab, '__version__', '?')}",
        f"openmp    convlab kernels: {_openmp_status()}",
        f"threads   {_blas_summary()}",
    ]
    if os.environ.get(_UNSET_MARKER):
        lines.append(f"env       unset for this run: {os.environ[_UNSET_MARKER]}")
    lines.append("load avg  {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg()))
    return lines


# ----------------------------------------------------------------------------- timing


def _methods(cls):
    """The class's time_* methods with their metadata, in source order."""
    found = []
    for name, function in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("time_") and hasattr(function, "_bench_role"):
            found.append((inspect.getsourcelines(function)[1], name, function))
    return [(name, function) for _, name, function in sorted(found)]


def _applies(function, params):
    """False when the method's own setup skips these parameters (asv's NotImplementedError)."""
    setup = getattr(function, "setup", None)
    if setup is None:
        return True
    try:
        setup(*params)
    except NotImplementedError:
        return False
    return True


def _arrays(result):
    return list(result) if isinstance(result, tuple) else [result]


def _mismatch(result, reference):
    """None when ``result`` equals ``reference`` to a tolerance from the dtype, else why not."""
    results, references = _arrays(result), _arrays(reference)
    if len(results) != len(references):
        return f"{len(results)} outputs, expected {len(references)}"
    for got, want in zip(results, references):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            return f"shape {got.shape}, expected {want.shape}"
        if got.dtype != want.dtype:
            return f"dtype {got.dtype}, expected {want.dtype}"
        scale = float(np.max(np.abs(want))) if want.size else 0.0
        # Loose on purpose: this catches a wrong centring or a flipped kernel (errors of
        # the order of the result), not the rounding differences between engines.
        tolerance = 1e3 * np.finfo(want.dtype).eps * max(scale, 1.0)
        error = float(np.max(np.abs(got - want))) if got.size else 0.0
        if not error <= tolerance:
            return f"max error {error:.3g} > {tolerance:.3g}"
    return None


def time_round_robin(functions, once, *, samples, min_sample, budget):
    """Median seconds per call of each function, sampled in turn.

    ``once``: the warm-up time of each function, which sets how many calls make a sample.
    Stops after ``samples`` rounds, or earlier (but after 3 rounds) once ``budget`` seconds
    have passed.
    """
    numbers = {name: max(1, math.ceil(min_sample / max(once[name], 1e-9)))
               for name in functions}
    times = {name: [] for name in functions}
    start = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for round_ in range(samples):
            for name, function in functions.items():
                number = numbers[name]
                function()  # untimed: the first call after another method pays its mess
                t0 = time.perf_counter()
                for _ in range(number):
                    function()
                times[name].append((time.perf_counter() - t0) / number)
            gc.collect()
            if round_ >= 2 and time.perf_counter() - start > budget:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(values) for name, values in times.items()}


def run_case(cls, dtype, workers, settings, anchor_times):
    """Time one parameter combination; returns {method name: (metadata, seconds)}."""
    params = (dtype, workers)
    instance = cls()
    try:
        instance.setup(*params)
    except NotImplementedError:
        return {}, []
    methods = [(name, f) for name, f in _methods(cls) if _applies(f, params)]
    problems = []
    # Warm-up call, which also checks that each group computes one result.
    references, once = {}, {}
    for name, function in methods:
        result = function(instance, *params)
        # A second call, timed, sets how many calls make a sample (the first one pays for
        # cold caches and first-touch page faults).
        start = time.perf_counter()
        function(instance, *params)
        once[name] = time.perf_counter() - start
        group = function._bench_group
        if group not in references:
            references[group] = (name, result)
        else:
            why = _mismatch(result, references[group][1])
            if why:
                problems.append(f"{cls.case} {dtype} workers={workers}: {name} differs from "
                                f"{references[group][0]}: {why}")
        del result
    references.clear()
    bound = {name: (lambda f=function: f(instance, *params)) for name, function in methods}
    seconds = time_round_robin(bound, once, **settings)
    timed = {name: (function, seconds[name]) for name, function in methods}
    for name, (function, t) in timed.items():
        if function._bench_role == "anchor":
            anchor_times[(cls.case, dtype, name)] = (function, t)
    return timed, problems


# ----------------------------------------------------------------------------- table


def _target_for(case, variant, workers):
    for target in TARGETS:
        if (target["case"], target["variant"]) == (case, variant) and \
                target["workers"] in (None, workers):
            return target
    return None


def _evaluate(target, convlab_seconds, anchors, variants):
    """(target text, measured text, PASS/MISS/n/a)."""
    kind, value = target["kind"], target["value"]
    if kind == "anchor":
        text = f">={value:g}x {target['anchor'].removeprefix('scipy.')}"
        times = [t for label, t in anchors if label == target["anchor"]]
        if not times:
            return text, "-", "n/a"
        measured = times[0] / convlab_seconds
        return text, f"{measured:.2f}x", "PASS" if measured >= value else "MISS"
    if kind == "fastest":
        text = f">={value:g}x fastest"
        if not anchors:
            return text, "-", "n/a"
        measured = min(t for _, t in anchors) / convlab_seconds
        return text, f"{measured:.2f}x", "PASS" if measured >= value else "MISS"
    other = variants.get(target["other"])
    if kind == "own":
        text = f">={value:g}x {target['other']}"
        if other is None:
            return text, "-", "n/a"
        measured = other / convlab_seconds
        return text, f"{measured:.2f}x", "PASS" if measured >= value else "MISS"
    text = f"<={value:g}x {target['other']} time"
    if other is None:
        return text, "-", "n/a"
    measured = convlab_seconds / other
    return text, f"{measured:.2f}x", "PASS" if measured <= value else "MISS"


def rows_for(cls, dtype, workers, timed, anchor_times):
    variants = {f._bench_label: t for f, t in timed.values() if f._bench_role == "convlab"}
    rows = []
    for name, (function, seconds) in timed.items():
        if function._bench_role != "convlab":
            continue
        group = function._bench_group
        anchors = [(f._bench_label, t) for (case, dt, _), (f, t) in anchor_times.items()
                   if case == cls.case and dt == dtype and f._bench_group == group]
        if anchors:
            best_label, best = min(anchors, key=lambda item: item[1])
            anchor_cells = [best_label, f"{best * 1e3:.2f}", f"{best / seconds:.2f}"]
        else:
            anchor_cells = ["-", "-", "-"]
        target = _target_for(cls.case, function._bench_label, workers)
        target_cells = list(_evaluate(target, seconds, anchors, variants)) if target else \
            ["", "", ""]
        rows.append([cls.case, dtype, str(workers), function._bench_label,
                     f"{seconds * 1e3:.2f}", *anchor_cells, *target_cells])
    return rows


HEADER = ["case", "dtype", "workers", "convlab", "convlab ms", "fastest anchor", "anchor ms",
          "ratio", "target", "measured", "result"]
RIGHT = {"workers", "convlab ms", "anchor ms", "ratio", "measured"}


def format_table(rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]

    def line(cells):
        return "  ".join(c.rjust(w) if h in RIGHT else c.ljust(w)
                         for c, w, h in zip(cells, widths, HEADER)).rstrip()

    out = [line(HEADER), line(["-" * w for w in widths])]
    previous = None
    for row in rows:
        if previous is not None and row[0] != previous[0]:
            out.append("")
        out.append(line(row))
        previous = row
    return "\n".join(out)


# ----------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter samples (a smoke run; ratios are rougher)")
    parser.add_argument("--filter", action="append", default=[], metavar="TEXT",
                        help="only the cases whose name or class name contains TEXT "
                             "(case-insensitive; repeatable), e.g. S2, S4, grad")
    args = parser.parse_args(argv)

    if args.quick:
        settings = dict(samples=3, min_sample=0.01, budget=1.0)
    else:
        settings = dict(samples=9, min_sample=0.1, budget=6.0)

    classes = [cls for cls in CLASSES
               if not args.filter or any(f.lower() in cls.case.lower()
                                         or f.lower() in cls.__name__.lower()
                                         for f in args.filter)]
    if not classes:
        parser.error(f"no case matches {args.filter}; cases: "
                     + ", ".join(c.case for c in CLASSES))

    print("convlab benchmark comparison (benchmarks/compare.py"
          + (" --quick" if args.quick else "") + ")")
    print("\n".join(machine_info()))
    print()
    for cls in classes:
        print(f"  {cls.case:8} {cls.description}")
    print()

    started = time.perf_counter()
    rows, problems = [], []
    anchor_times = {}
    for cls in classes:
        for dtype, workers in itertools.product(*cls.params):
            print(f"... {cls.case} {dtype} workers={workers}", file=sys.stderr, flush=True)
            timed, found = run_case(cls, dtype, workers, settings, anchor_times)
            problems += found
            rows += rows_for(cls, dtype, workers, timed, anchor_times)

    print(format_table(rows))
    print()
    print("ratio = fastest anchor time / convlab time (higher is better); anchors are "
          "single-threaded and timed in the workers=1 pass of the same run.")
    print("measured: vs the named anchor, the fastest anchor, or convlab's own variant "
          "(S4: stride-1 time / stride-2 time; gradients: gradient time / forward time).")
    verdicts = [row[-1] for row in rows if row[-1] in ("PASS", "MISS")]
    print(f"targets: {verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS "
          f"of {len(verdicts)} target rows")
    for row in rows:
        if row[-1] == "MISS":
            print(f"  MISS  {row[0]} {row[1]} workers={row[2]} {row[3]}: "
                  f"{row[9]} (target {row[8]})")
    if problems:
        print("\nRESULT MISMATCHES (timings of these methods compare different results):")
        for problem in problems:
            print("  " + problem)
    print("\nload avg  {:.2f} {:.2f} {:.2f} (1, 5, 15 min); total {:.0f} s".format(
        *os.getloadavg(), time.perf_counter() - started))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
