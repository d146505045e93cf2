"""Fuzz every reader with many mutated files; exit non-zero when any breaks its contract.

    python benchmarks/fuzz.py                   # 10,000 cases per reader, then parse_one
    python benchmarks/fuzz.py --cases 500 --reader lab_csv --reader mca_spec

For each reader (``xrfhub.readers._MODULES``) and for the user's entry point
``xrfhub.sources.parse_one``, hypothesis draws seed files (real fixtures when
../shared/fixtures is there, synthetic otherwise) and mutates them (tests/fuzzing.py); every
case is written to a fresh folder and read under a 2 s alarm. A case may parse or raise
``InputError`` naming the file; anything else is a failure, printed and saved (with the
reproducing bytes) under ``--save`` (default ``fuzz-failures/``). Readers run one after another.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzzing  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def fuzz_reader(reader: str, cases: int, rng_seed: int, save: Path, base: str) -> dict:
    """Run ``cases`` cases against one reader; outcome counts, failures and timings."""
    tally: Counter = Counter()
    slowest = [0.0, ""]
    failures: list[str] = []
    strategy = fuzzing.cases(reader) if reader != "parse_one" else st.sampled_from(
        [s for s in fuzzing.all_seeds() if not s.target]).flatmap(lambda s: st.tuples(st.just(s), fuzzing.mutations(s)))

    @hypothesis_seed(rng_seed)
    @settings(max_examples=cases, database=None, deadline=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(case):
        seed, data = case
        start = time.perf_counter()
        try:
            tally[fuzzing.run_case(reader, seed, data, base)] += 1
        except fuzzing.FuzzFailure as exc:
            tally["failed"] += 1
            folder = save / reader
            folder.mkdir(parents=True, exist_ok=True)
            kept = folder / f"case{tally['failed']:04d}-{seed.label}-{seed.mutated}"
            kept.write_bytes(data)
            failures.append(f"{exc} [seed {seed.label}, bytes in {kept}]")
        took = time.perf_counter() - start
        if took > slowest[0]:
            slowest[:] = [took, seed.label]

    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    total = sum(tally.values())
    return {"reader": reader, "cases": total, "errors": tally["error"], "parsed": tally["parsed"],
            "failed": tally["failed"], "slowest_s": slowest[0], "slowest_seed": slowest[1],
            "rate": total / wall if wall else 0.0, "failures": failures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per reader (default 10000)")
    parser.add_argument("--reader", action="append", help="only these readers (module names, or parse_one)")
    parser.add_argument("--seed", type=int, default=20240601, help="hypothesis seed")
    parser.add_argument("--save", type=Path, default=Path("fuzz-failures"), help="where failing inputs are kept")
    args = parser.parse_args(argv)
    names = args.reader or [*fuzzing.READERS, "parse_one"]
    unknown = set(names) - {*fuzzing.READERS, "parse_one"}
    if unknown:
        parser.error(f"unknown reader(s) {sorted(unknown)}; known: {', '.join(fuzzing.READERS)}, parse_one")
    print(f"real fixtures: {'yes' if fuzzing.FIXTURES.is_dir() else 'no'} ({fuzzing.FIXTURES})")
    header = f"{'reader':<15}{'cases':>8}{'InputError':>12}{'parsed':>8}{'failed':>8}{'slowest s':>11}  {'cases/s':>8}"
    rows = []
    with tempfile.TemporaryDirectory(prefix="xrfhub-fuzz-") as base:
        for name in names:
            result = fuzz_reader(name, args.cases, args.seed, args.save, base)
            rows.append(result)
            print(f"{name}: {result['cases']} cases, {result['failed']} failed, "
                  f"{result['rate']:.0f}/s", flush=True)
            for line in result["failures"][:5]:
                print("   ", line[:400], flush=True)
    print()
    print(header)
    for r in rows:
        print(f"{r['reader']:<15}{r['cases']:>8}{r['errors']:>12}{r['parsed']:>8}{r['failed']:>8}"
              f"{r['slowest_s']:>11.3f}  {r['rate']:>8.0f}")
    failed = sum(r["failed"] for r in rows)
    print(f"\n{'FAIL' if failed else 'OK'}: {failed} failure(s) in {sum(r['cases'] for r in rows)} cases")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
