"""The Examples in the docstrings of the installed package run as doctests.

Every module of convlab (found by walking the installed package) is searched with
:mod:`doctest`; numpy prints with ``legacy=False``; any failure fails the test.
"""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import convlab

PUBLIC = sorted(convlab.__all__)


def _modules():
    names = ["convlab"]
    names += [info.name for info in pkgutil.walk_packages(convlab.__path__, prefix="convlab.")
              if info.name != "convlab.__main__"]  # importing __main__ runs the demo
    return names


def _run(obj, name, globs):
    finder = doctest.DocTestFinder(recurse=True, exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(obj, name, globs=globs)
    report = []
    for test in tests:
        with np.printoptions(legacy=False):
            runner.run(test, out=report.append)
    results = doctest.TestResults(runner.failures, runner.tries)
    return tests, results, "".join(report)


@pytest.mark.parametrize("module", _modules())
def test_module_doctests(module):
    mod = importlib.import_module(module)
    tests, results, report = _run(mod, module, {"np": np, "convlab": convlab})
    assert results.failed == 0, f"{results.failed} doctest failure(s) in {module}:\n{report}"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_function_examples_run(name):
    """Each public function has examples, they are found through the public name, and pass."""
    obj = getattr(convlab, name)
    tests, results, report = _run(obj, f"convlab.{name}", {})
    assert sum(len(t.examples) for t in tests) > 0, f"convlab.{name} has no doctest examples"
    assert results.failed == 0, report
    assert results.attempted > 0
