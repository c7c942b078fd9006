"""A seeded, generated fleet of IoT devices (one model per device): sensor readings and failures.

Each row is one hourly reading of one device; `failure` says whether the device failed within 24 hours. Devices
fail for different reasons (a pump overheats, a fan's bearing wears and vibrates, a compressor's seal leaks and
loses pressure), with device-specific thresholds, so one model per device can beat one model for the fleet.

The default fleet (the bundled data set `iot_devices`) has 50 devices x 200 readings, including three devices a
per-device trainer must skip: one that never failed (one class) and two installed this week (15 readings each).

    python -m common.write_iot_devices --devices 200 --rows-per-device 1000 --output /tmp/iot.parquet
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEVICE_TYPES = ("pump", "fan", "compressor")
# The reading that drives each type's failures: pumps overheat, fans' bearings vibrate, compressors lose pressure.
_FAILURE_MODE = {"pump": "temperature_c", "fan": "vibration_mm_s", "compressor": "pressure_bar"}
_NEW_DEVICE_ROWS = 15
LABEL = "failure"
GROUP = "device_id"


def generate(devices: int = 50, rows_per_device: int = 200, seed: int = 3, edge_cases: bool = True) -> pd.DataFrame:
    """The fleet as one frame, identical for identical arguments. `edge_cases` makes the third-last device never
    fail and the last two new (15 readings); without it every device is trainable (the benchmark's fleet)."""
    if devices < 1 or rows_per_device < 1:
        raise ValueError(f"need at least one device and one reading, got {devices} x {rows_per_device}")
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(devices):
        rows = _rows(index, devices, rows_per_device, edge_cases)
        frames.append(_device(rng, index, rows, healthy=_healthy(index, devices, edge_cases)))
    return pd.concat(frames, ignore_index=True)


def _rows(index: int, devices: int, rows_per_device: int, edge_cases: bool) -> int:
    return _NEW_DEVICE_ROWS if edge_cases and devices >= 3 and index >= devices - 2 else rows_per_device


def _healthy(index: int, devices: int, edge_cases: bool) -> bool:
    return edge_cases and devices >= 3 and index == devices - 3


def _device(rng: np.random.Generator, index: int, rows: int, healthy: bool) -> pd.DataFrame:
    kind = DEVICE_TYPES[index % len(DEVICE_TYPES)]
    # Each device has its own operating point; readings drift around it, and wear grows between services.
    temperature = rng.normal(55 + rng.normal(0, 6), 4, rows)
    vibration = np.abs(rng.normal(2.5 + rng.normal(0, 0.6), 0.8, rows))
    pressure = rng.normal(6 + rng.normal(0, 0.8), 0.5, rows)
    humidity = np.clip(rng.normal(45 + rng.normal(0, 10), 8, rows), 5, 100)
    hours_since_service = rng.uniform(0, 2_000, rows)
    readings = {
        "temperature_c": temperature,
        "vibration_mm_s": vibration,
        "pressure_bar": pressure,
        "humidity_pct": humidity,
    }
    # The failure mode's reading, standardised on this device, with a device-specific threshold; compressors fail
    # on *low* pressure. Wear adds risk on every device.
    driver = readings[_FAILURE_MODE[kind]]
    z = (driver - driver.mean()) / driver.std()
    if kind == "compressor":
        z = -z
    threshold = rng.uniform(0.6, 1.4)
    logit = 3.0 * (z - threshold) + 1.2 * (hours_since_service / 1_000 - 1)
    failure = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    if healthy:
        failure[:] = 0
    frame = pd.DataFrame({GROUP: f"dev-{index:04d}", "device_type": kind, **readings})
    frame["hours_since_service"] = hours_since_service
    frame[LABEL] = failure
    return frame.round({name: 2 for name in (*readings, "hours_since_service")})
