"""Time lifetimes 0.11.3's BetaGeoFitter and GammaGammaFitter on customers saved by ``bench.clv_fit``.

Runs in the separate virtualenv ``bench.clv_fit --lifetimes`` creates (lifetimes needs an older numpy, scipy and
pandas than the project's), so it imports nothing of the project: ``python bench/lifetimes_fit.py CUSTOMERS.npz``
prints one JSON object with the seconds of each fit and the estimates.
"""

import json
import sys
import time

import numpy as np
from lifetimes import BetaGeoFitter, GammaGammaFitter


def main(path: str) -> None:
    data = np.load(path)
    frequency, recency, T, monetary_value = (data[k] for k in ("frequency", "recency", "T", "monetary_value"))
    started = time.perf_counter()
    bg = BetaGeoFitter(penalizer_coef=0.0).fit(frequency, recency, T)
    bg_done = time.perf_counter()
    repeat = frequency > 0
    gg = GammaGammaFitter(penalizer_coef=0.0).fit(frequency[repeat], monetary_value[repeat])
    gg_done = time.perf_counter()
    print(
        json.dumps(
            {
                "bg_nbd_seconds": bg_done - started,
                "gamma_gamma_seconds": gg_done - bg_done,
                "bg_nbd": {k: float(bg.params_[k]) for k in ("r", "alpha", "a", "b")},
                "gamma_gamma": {k: float(gg.params_[k]) for k in ("p", "q", "v")},
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
