"""specgate's exit status: one code per outcome class, the same for a pytest run (`make bench`, the
GPU workflow's shards) and for every `specgate` command, so that CI can tell a regression from a
broken setup or a run that judged nothing. The codes avoid pytest's own 3 (internal error),
4 (pytest's usage error) and 5 (no tests collected); 2 is pytest's for a collection error, which is
how a pytest run reports specgate's usage errors."""

from __future__ import annotations

from enum import IntEnum


class Outcome(IntEnum):
    PASS = 0
    REGRESSION = 1  # a judged check failed (under pytest also any failing test that is not specgate's)
    USAGE = 2  # a bad command line or input file (pairings, results, baselines; validate's findings): nothing ran
    SETUP = 6  # a pairing could not run (preflight, model, prompt set, engine build); the rest judged fine
    NOT_JUDGED = 7  # conditions without a comparable baseline (--specgate-strict; compare, merge and ab
    #                 unless --allow-missing), or nothing judged at all; the rest judged fine


# The order CI reads them in when a run has several: a regression is a finding whatever else broke.
PRECEDENCE = (Outcome.REGRESSION, Outcome.SETUP, Outcome.NOT_JUDGED, Outcome.PASS)

HELP = """exit status (the same for `make bench` / pytest runs and every specgate command):
  0  pass: everything judged was within tolerance
  1  a regression (under pytest also any other failing test)
  2  an error in the input (pairings, results or baseline file, command line, or any problem
     `specgate validate` finds); nothing ran
  6  setup error: a pairing could not run (preflight, model, prompt set, engine build)
  7  not judged: conditions without a comparable baseline (--specgate-strict; compare, merge and ab
     unless --allow-missing), or nothing judged at all
A run with several outcomes exits with the first of 1, 6, 7."""


def worst(outcomes) -> Outcome:
    """The outcome a run with these outcomes exits with (PRECEDENCE; PASS for none)."""
    found = set(outcomes)
    return next(o for o in PRECEDENCE if o in found or o is Outcome.PASS)
