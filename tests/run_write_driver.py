"""Write one prediction run through the library (tests/test_kill_writes.py kills it on the way).

    python run_write_driver.py STORE VALUES.npy RUN_ID
"""
import sys

import numpy as np

from xrfhub import predictions

if __name__ == "__main__":
    store, values, run_id = sys.argv[1:4]
    v = np.load(values)
    predictions.write_run(store, {"CaCO3": v}, group="spectra/ch2048", plugin="kill-test",
                          provenance={"model": "fixed"}, run_id=run_id, extra={"CaCO3_upper": v + 1})
