"""QC thresholds: every check's default, documented, and overridable (``--set name=value``).

The defaults are deliberately loose: a flag should mean "look at this point", not "this run is
unusual". Ratios and medians are taken within a *run group* (core x run x tube voltage x
replicate, in depth order), because a voltage or a replicate is a different measurement.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import ConfigError


@dataclass(frozen=True)
class QCParams:
    """Thresholds of the per-point quality checks (see README, "Quality control")."""

    #: points in the centred rolling window (medians of throughput, scatter, Ar, elements)
    window: int = 21
    # ---- throughput: total counts per live second / its rolling median
    tube_off_ratio: float = 0.05        # below: bad, tube_off (no beam or no sample)
    throughput_bad_ratio: float = 0.5   # below: bad, throughput_low (half the counts gone)
    throughput_suspect_ratio: float = 0.7  # below: suspect, throughput_low
    throughput_high_ratio: float = 1.5  # above: suspect, throughput_high
    drift_ratio: float = 0.2            # rolling median off the run median by more: suspect, throughput_drift
    # ---- dead time (real - live) / real
    dead_time_excess: float = 0.15      # above the run's median by more: suspect, dead_time
    dead_time_max: float = 0.9          # at or above: bad, dead_time
    # ---- rolling anomalies (log scale): |log x - rolling median| > k x robust spread AND > log(1 + min_rel)
    anomaly_k: float = 6.0
    scatter_min_rel: float = 0.25       # scatter ratio: suspect, scatter_ratio
    element_min_rel: float = 0.5        # principal elements: suspect, element_anomaly
    principal_elements: int = 4         # how many of the strongest lines count as principal
    # ---- Ar K-alpha (air between foil and sediment), one-sided
    ar_min_rel: float = 1.0             # Ar above twice its rolling level (and k spreads): suspect, air_gap
    ar_min_fraction: float = 0.005      # ... and the excess is at least this fraction of all counts
    # ---- energy calibration: a known peak's position (Fe K-alpha or Ca K-alpha)
    peak_shift_kev: float = 0.04        # |measured - known| above: suspect, calibration_drift
    peak_shift_bad_kev: float = 0.12    # above: bad
    min_peak_counts: float = 200.0      # fewer net counts in the peak: calibration not checked (missing)
    # ---- tube anode: its line window / rolling median
    anode_ratio: float = 3.0            # own line / rolling median below 1/ratio, or another anode's above ratio: bad
    anode_z: float = 5.0                # ... and that other line's net counts this many Poisson sigmas above zero
    # ---- replicates: relative difference between replicate scans at one depth
    replicate_rel: float = 0.2          # throughput or a principal element: suspect, replicate
    # ---- vendor fit quality
    chi2_ratio: float = 5.0             # bAXIL chi-square / run median of that line, any line: suspect, fit_chi2
    mse_ratio: float = 2.0              # ITRAX MSE / run median: suspect, fit_mse
    # ---- detector geometry for the Compton energy
    scatter_angle_deg: float = 90.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_options(cls, pairs: dict[str, str] | None = None) -> "QCParams":
        """Defaults overridden by ``name=value`` pairs (values parsed as numbers)."""
        known = {f.name: f.type for f in fields(cls)}
        kw = {}
        for name, text in (pairs or {}).items():
            if name not in known:
                raise ConfigError(f"unknown QC threshold {name!r}; known: {', '.join(sorted(known))}")
            try:
                value = float(text)
            except (TypeError, ValueError):
                raise ConfigError(f"QC threshold {name}={text!r}: expected a number") from None
            if name in ("window", "principal_elements"):
                if value != int(value) or value < 1:
                    raise ConfigError(f"QC threshold {name}={text!r}: expected a positive whole number")
                value = int(value)
            kw[name] = value
        return cls(**kw)
