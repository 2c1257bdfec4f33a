"""Time convlab next to its anchors and print the ratios as a table.

    python benchmarks/compare.py [--quick] [--filter S2] [--filter L ...] [--filter P1] [--filter Q1]

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
   convlab time (higher is better), and for the rows that issue 2 or issue 3 sets a target,
   the target, the measured value and PASS / MISS (one row per target where a variant
   has several).

The signal-level anchors are single-threaded (none of scipy.signal.correlate / oaconvolve /
fftconvolve, scipy.ndimage or numpy.convolve takes ``workers``), so they are timed once, in
the ``workers=1`` pass, and the ``workers=2`` rows compare against those times from the same
run. The PyTorch anchors of the layer-level cases (L1-L4, U1, U2, Q1) are multi-threaded: their setup
calls ``torch.set_num_threads(workers)`` and they are timed in every ``workers`` pass, each
row comparing convlab and PyTorch at the same worker count (the anchors whose metadata says
``_bench_threads = "workers"``). Without PyTorch those anchors are skipped and their rows
show no ratio; a convlab variant whose layer function does not exist yet shows "skip".

Peak memory (the targets of kind "peakmem": L1's forward pass, U1's training step): each side's ``peakmem_*``
method runs in a fresh Python process, which sets the case up, resets the kernel's
peak-resident-size mark (``/proc/self/clear_refs``), calls the method twice and reports the
peak resident size minus the resident size before the calls; see benchmarks/README.md.

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
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

import convlab  # noqa: E402

# The script's folder is sys.path[0], so this is benchmarks/benchmarks/, the asv suite.
from benchmarks import (  # noqa: E402
    bench_layers,
    bench_pooling,
    bench_separable,
    bench_signal,
    bench_unshared,
)

CLASSES = [
    bench_signal.S1Correlate1D,
    bench_signal.S2Correlate2D,
    bench_signal.S3Correlate2DLarge,
    bench_signal.S4Strided,
    bench_signal.S2Gradients,
    bench_layers.L1Conv3x3,
    bench_layers.L2Conv3x3Stride2,
    bench_layers.L3Conv5x5SingleChannel,
    bench_layers.L4Conv1x1,
    bench_unshared.U1LocallyConnected,
    bench_unshared.U2Tiled,
    bench_separable.P1SeparableGaussian,
    bench_separable.P2AutoDetects,
    bench_separable.P3SeparableLayer,
    bench_pooling.Q1Pool2x2,
]
# The cases whose anchors are PyTorch (multi-threaded, timed at the row's worker count).
TORCH_MODULES = {bench_layers.__name__, bench_unshared.__name__,
                 bench_pooling.__name__}  # (P3 mixes both kinds)

# The targets of issue 2 ("Speed to reach") and issue 3 (the L cases). kind:
#   "anchor"  ratio to the named anchor            >= value
#   "fastest" ratio to the fastest anchor          >= value
#   "own"     time(other variant) / time(variant)  >= value   (stride 1 vs stride 2)
#   "slower"  time(variant) / time(other variant)  <= value   (gradient vs forward)
#   "peakmem" peak memory increase of the variant's peakmem_ method / that of the named
#             anchor's                             <= value   (measured apart, see above)
# workers=None: the target applies to every workers value; likewise dtype (absent: every
# dtype).
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
    # issue 3: forward + input, weight and bias gradients against PyTorch autograd
    dict(case="L1", variant="forward + grads", dtype="float32", workers=None, kind="anchor",
         anchor="torch autograd", value=0.8),
    dict(case="L2", variant="forward + grads", dtype="float32", workers=None, kind="anchor",
         anchor="torch autograd", value=0.8),
    dict(case="L1", variant="forward + grads", dtype="float64", workers=None, kind="anchor",
         anchor="torch autograd", value=2.0),
    dict(case="L2", variant="forward + grads", dtype="float64", workers=None, kind="anchor",
         anchor="torch autograd", value=2.0),
    dict(case="L3", variant="forward + grads", dtype="float32", workers=None, kind="anchor",
         anchor="torch autograd", value=3.0),
    dict(case="L1", variant="forward", workers=None, kind="peakmem",
         anchor="torch F.conv2d", value=2.0),
    # issue 4: forward + every gradient at 2 workers; a variant may have several targets
    dict(case="U1", variant="forward + grads", workers=2, kind="fastest", value=2.0),
    dict(case="U1", variant="forward + grads", workers=2, kind="anchor",
         anchor="torch F.unfold + einsum", value=10.0),
    dict(case="U2", variant="forward + grads", workers=2, kind="fastest", value=1.5),
    dict(case="U1", variant="forward + grads", workers=2, kind="peakmem",
         anchor="torch F.unfold + einsum", value=0.5),
    # issue 5 (P1 so far): separable passes against the direct and the FFT anchor
    dict(case="P1", variant="separable", workers=2, kind="anchor",
         anchor="scipy.ndimage.correlate1d x2", value=4.0),
    dict(case="P1", variant="separable", workers=2, kind="anchor",
         anchor="scipy.signal.fftconvolve (dense)", value=2.0),
    dict(case="P2", variant="auto, dense kernel", workers=2, kind="slower",
         other="separable", value=1.2),
    # P3: a training step's forward pass and gradients, the gradients from the fused
    # separable_conv_backward (as PyTorch's autograd computes both in one backward call);
    # the three separate gradient calls are reported next to it, without a target
    dict(case="P3", variant="separable, forward + backward", workers=2, kind="own",
         other="dense conv, forward + grads", value=2.0),
    dict(case="P3", variant="separable, forward + backward", workers=2, kind="anchor",
         anchor="torch conv2d (dense), autograd", value=2.0),
    # issue 6: 2 x 2 / stride 2 max pooling against PyTorch (NCHW) at 2 workers
    dict(case="Q1", variant="max forward", workers=2, kind="anchor",
         anchor="torch F.max_pool2d", value=5.0),
    dict(case="Q1", variant="max forward + backward", workers=2, kind="anchor",
         anchor="torch max_pool2d autograd", value=3.0),
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


def _torch_status():
    torch = bench_layers._import_torch()
    if torch is None:
        return (f"not installed: the PyTorch anchors are skipped "
                f"(pip install {bench_layers.TORCH_REQUIREMENT})")
    return (f"{torch.__version__} (threads: torch.set_num_threads(workers) of each row; "
            f"{torch.__config__.parallel_info().splitlines()[-1].strip()})")


def machine_info(layer_cases=False):
    """The header lines; ``layer_cases``: PyTorch's version too (imported first, so that the
    thread pools it loads are listed)."""
    torch_line = [f"torch     {_torch_status()}"] if layer_cases else []
    lines = [
        f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"cpu       {_cpu_model()}; {os.cpu_count()} logical cores, {_usable_cores()} usable",
        f"python    {platform.python_version()} ({platform.platform()})",
        f"numpy     {np.__version__}   scipy {scipy.__version__}   "
        f"convlab {getattr(convlab, '__version__', '?')}",
        *torch_line,
        f"openmp    convlab kernels: {_openmp_status()}",
        f"threads   {_blas_summary()}",
    ]
    if os.environ.get(_UNSET_MARKER):
        lines.append(f"env       unset for this run: {os.environ[_UNSET_MARKER]}")
    lines.append("load avg  {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg()))
    return lines


# ----------------------------------------------------------------------------- timing


def _methods(cls, prefix="time_"):
    """The class's time_* (or other ``prefix``) methods with their metadata, in source order."""
    found = []
    for name, function in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith(prefix) and hasattr(function, "_bench_role"):
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


def _anchor_workers(function, workers):
    """The workers value an anchor's time belongs to: None for a single-threaded anchor
    (timed in the workers=1 pass, compared with every row), ``workers`` for an anchor that
    runs at the row's worker count (the PyTorch anchors)."""
    return workers if getattr(function, "_bench_threads", None) == "workers" else None


def run_case(cls, dtype, workers, settings, anchor_times):
    """Time one parameter combination; returns ({method name: (metadata, seconds)}, problems).

    A convlab variant whose own setup skips these parameters (a layer function convlab does
    not have yet) is returned with seconds None.
    """
    params = (dtype, workers)
    instance = cls()
    try:
        instance.setup(*params)
    except NotImplementedError:
        return {}, []
    methods, skipped = [], {}
    for name, function in _methods(cls):
        if _applies(function, params):
            methods.append((name, function))
        elif function._bench_role == "convlab":
            skipped[name] = (function, None)
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
            anchor_times[(cls.case, dtype, _anchor_workers(function, workers), name)] = \
                (function, t)
    timed.update(skipped)
    return {name: timed[name] for name, _ in _methods(cls) if name in timed}, problems


# ----------------------------------------------------------------------------- table


def _targets_for(case, variant, workers, dtype=None, kinds=None):
    return [target for target in TARGETS
            if (target["case"], target["variant"]) == (case, variant)
            and target["workers"] in (None, workers)
            and target.get("dtype") in (None, dtype)
            and (target["kind"] == "peakmem") == (kinds == "peakmem")]


def _target_for(case, variant, workers, dtype=None, kinds=None):
    found = _targets_for(case, variant, workers, dtype, kinds)
    return found[0] if found else None


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
    variants = {f._bench_label: t for f, t in timed.values()
                if f._bench_role == "convlab" and t is not None}
    rows = []
    for name, (function, seconds) in timed.items():
        if function._bench_role != "convlab":
            continue
        group = function._bench_group
        anchors = [(f._bench_label, t) for (case, dt, w, _), (f, t) in anchor_times.items()
                   if case == cls.case and dt == dtype and w in (None, workers)
                   and f._bench_group == group]
        targets = _targets_for(cls.case, function._bench_label, workers, dtype) or [None]
        if seconds is None:
            # convlab lacks the function (yet): the anchor's time alone, no ratio.
            if anchors:
                best_label, best = min(anchors, key=lambda item: item[1])
                anchor_cells = [best_label, f"{best * 1e3:.2f}", "-"]
            else:
                anchor_cells = ["-", "-", "-"]
            for target in targets:
                target_cells = [_evaluate(target, 1.0, [], {})[0], "-", "n/a"] if target \
                    else ["", "", ""]
                rows.append([cls.case, dtype, str(workers), function._bench_label, "skip",
                             *anchor_cells, *target_cells])
            continue
        if anchors:
            best_label, best = min(anchors, key=lambda item: item[1])
            anchor_cells = [best_label, f"{best * 1e3:.2f}", f"{best / seconds:.2f}"]
        else:
            anchor_cells = ["-", "-", "-"]
        for target in targets:
            target_cells = list(_evaluate(target, seconds, anchors, variants)) if target \
                else ["", "", ""]
            rows.append([cls.case, dtype, str(workers), function._bench_label,
                         f"{seconds * 1e3:.2f}", *anchor_cells, *target_cells])
    return rows


HEADER = ["case", "dtype", "workers", "convlab", "convlab ms", "fastest anchor", "anchor ms",
          "ratio", "target", "measured", "result"]
RIGHT = {"workers", "convlab ms", "anchor ms", "ratio", "measured", "convlab MiB",
         "anchor MiB"}


def format_table(rows, header=HEADER):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.rjust(w) if h in RIGHT else c.ljust(w)
                         for c, w, h in zip(cells, widths, header)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    previous = None
    for row in rows:
        if previous is not None and row[0] != previous[0]:
            out.append("")
        out.append(line(row))
        previous = row
    return "\n".join(out)


# ----------------------------------------------------------------------------- peak memory

# Run in a fresh interpreter: argv = benchmarks folder, module, class, method, dtype, workers.
# Prints one JSON line: {"increase": bytes, "exact": bool} or {"skip": why}.
_PEAKMEM_CHILD = r"""
import gc, importlib, json, resource, sys

sys.path.insert(0, sys.argv[1])
cls = getattr(importlib.import_module(sys.argv[2]), sys.argv[3])
method = getattr(cls, sys.argv[4])
params = (sys.argv[5], int(sys.argv[6]))


def status(field):
    try:
        with open("/proc/self/status", encoding="ascii") as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return status("VmHWM") is not None


def peak():
    hwm = status("VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


instance = cls()
try:
    instance.setup(*params)
    own_setup = getattr(method, "setup", None)
    if own_setup is not None:
        own_setup(*params)
except NotImplementedError as why:
    print(json.dumps({"skip": str(why)}))
    sys.exit(0)
gc.collect()
exact = reset_peak()
before = status("VmRSS") if exact else peak()
for _ in range(2):
    method(instance, *params)
    gc.collect()
print(json.dumps({"increase": peak() - before, "exact": exact}))
"""


def measure_peakmem(cls, name, dtype, workers):
    """Peak resident-size increase of one ``peakmem_*`` call pair in a fresh process.

    Returns {"increase": bytes, "exact": bool}, {"skip": why} or {"error": why}. "exact"
    is False where the kernel's peak mark cannot be reset (not Linux): the increase is then
    measured from the peak the setup reached, a lower bound.
    """
    command = [sys.executable, "-c", _PEAKMEM_CHILD, os.path.dirname(os.path.abspath(__file__)),
               cls.__module__, cls.__name__, name, dtype, str(workers)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 900 s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"error": last}
    return json.loads(lines[-1])


def peakmem_rows(cls, dtype, workers):
    """One row per convlab peakmem_ variant of a case that has a "peakmem" target, and the
    problems met."""
    methods = _methods(cls, prefix="peakmem_")
    measured = {name: measure_peakmem(cls, name, dtype, workers) for name, _ in methods}
    rows, problems = [], []
    for name, result in measured.items():
        if "error" in result:
            problems.append(f"{cls.case} {dtype} workers={workers}: {name}: {result['error']}")

    def mib(result):
        if "increase" in result:
            return f"{result['increase'] / 2**20:.1f}" + ("" if result["exact"] else " (>=)")
        return "skip" if "skip" in result else "error"

    for name, function in methods:
        if function._bench_role != "convlab":
            continue
        target = _target_for(cls.case, function._bench_label, workers, dtype, kinds="peakmem")
        if target is None:
            continue
        ours = measured[name]
        anchors = [(f._bench_label, measured[n]) for n, f in methods
                   if f._bench_role == "anchor" and f._bench_label == target["anchor"]]
        anchor_label, theirs = anchors[0] if anchors else (target["anchor"], {"skip": ""})
        text = f"<={target['value']:g}x {anchor_label} peak"
        if "increase" in ours and "increase" in theirs:
            value = ours["increase"] / max(theirs["increase"], 1)
            verdict = [f"{value:.2f}x", "PASS" if value <= target["value"] else "MISS"]
        else:
            verdict = ["-", "n/a"]
        rows.append([cls.case, dtype, str(workers), function._bench_label, mib(ours),
                     anchor_label, mib(theirs), text, *verdict])
    return rows, problems


MEMORY_HEADER = ["case", "dtype", "workers", "convlab", "convlab MiB", "anchor", "anchor MiB",
                 "target", "measured", "result"]


# ----------------------------------------------------------------------------- main


def _matches(text, cls):
    """``--filter TEXT``: the case names that contain TEXT; when none does, the class names
    (so that "L" selects L1-L4, not every class with an "l" in its name)."""
    text = text.lower()
    if any(text in c.case.lower() for c in CLASSES):
        return text in cls.case.lower()
    return text in cls.__name__.lower()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter samples (a smoke run; ratios are rougher)")
    parser.add_argument("--filter", action="append", default=[], metavar="TEXT",
                        help="only the cases whose name contains TEXT, or when no case "
                             "name does, whose class name does (case-insensitive; "
                             "repeatable), e.g. S2, S4, grad, L")
    args = parser.parse_args(argv)

    if args.quick:
        settings = dict(samples=3, min_sample=0.01, budget=1.0)
    else:
        settings = dict(samples=9, min_sample=0.1, budget=6.0)

    classes = [cls for cls in CLASSES
               if not args.filter or any(_matches(f, cls) for f in args.filter)]
    if not classes:
        parser.error(f"no case matches {args.filter}; cases: "
                     + ", ".join(c.case for c in CLASSES))

    print("convlab benchmark comparison (benchmarks/compare.py"
          + (" --quick" if args.quick else "") + ")")
    layer_cases = any(cls.__module__ in TORCH_MODULES for cls in classes)
    print("\n".join(machine_info(layer_cases)))
    print()
    for cls in classes:
        print(f"  {cls.case:8} {cls.description}")
    print()

    started = time.perf_counter()
    rows, problems = [], []
    memory_rows, memory_problems = [], []
    anchor_times = {}
    memory_cases = {t["case"] for t in TARGETS if t["kind"] == "peakmem"}
    for cls in classes:
        for dtype, workers in itertools.product(*cls.params):
            print(f"... {cls.case} {dtype} workers={workers}", file=sys.stderr, flush=True)
            timed, found = run_case(cls, dtype, workers, settings, anchor_times)
            problems += found
            rows += rows_for(cls, dtype, workers, timed, anchor_times)
        if cls.case in memory_cases:
            for dtype, workers in itertools.product(*cls.params):
                print(f"... {cls.case} {dtype} workers={workers}: peak memory",
                      file=sys.stderr, flush=True)
                found_rows, found = peakmem_rows(cls, dtype, workers)
                memory_rows += found_rows
                memory_problems += found

    print(format_table(rows))
    if memory_rows:
        print()
        print("peak memory: increase of the resident size over the inputs, for two calls in a "
              "fresh process per method")
        print(format_table(memory_rows, MEMORY_HEADER))
    print()
    if any(cls.__module__ not in TORCH_MODULES for cls in classes):
        print("ratio = fastest anchor time / convlab time (higher is better); anchors are "
              "single-threaded and timed in the workers=1 pass of the same run.")
    if layer_cases:
        print(("ratio = " if all(c.__module__ in TORCH_MODULES for c in classes)
               else "L, U and Q cases: ")
              + "PyTorch time / convlab time (higher is better), both at the row's worker "
              "count (torch.set_num_threads(workers)), timed in the same pass.")
    print("measured: vs the named anchor, the fastest anchor, or convlab's own variant "
          "(S4: stride-1 time / stride-2 time; gradients: gradient time / forward time; P2: auto time / separable time).")
    if memory_rows:
        print("peak memory measured: convlab's increase / PyTorch's increase (lower is "
              "better); '(>=)': a lower bound (peak mark not resettable here).")
    verdicts = [row[-1] for row in rows + memory_rows if row[-1] in ("PASS", "MISS")]
    print(f"targets: {verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS "
          f"of {len(verdicts)} target rows")
    for row in rows:
        if row[-1] == "MISS":
            print(f"  MISS  {row[0]} {row[1]} workers={row[2]} {row[3]}: "
                  f"{row[9]} (target {row[8]})")
    for row in memory_rows:
        if row[-1] == "MISS":
            print(f"  MISS  {row[0]} {row[1]} workers={row[2]} {row[3]} peak memory: "
                  f"{row[8]} (target {row[7]})")
    if problems:
        print("\nRESULT MISMATCHES (timings of these methods compare different results):")
        for problem in problems:
            print("  " + problem)
    if memory_problems:
        print("\nPEAK MEMORY MEASUREMENTS THAT FAILED:")
        for problem in memory_problems:
            print("  " + problem)
    print("\nload avg  {:.2f} {:.2f} {:.2f} (1, 5, 15 min); total {:.0f} s".format(
        *os.getloadavg(), time.perf_counter() - started))
    return 1 if problems or memory_problems else 0


if __name__ == "__main__":
    sys.exit(main())
