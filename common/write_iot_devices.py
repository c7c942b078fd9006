"""Write a generated IoT fleet (common.iot_devices) of any size to Parquet, for trying per-group training at scale.

python -m common.write_iot_devices --devices 200 --rows-per-device 1000 --output /data/iot.parquet
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from common.iot_devices import GROUP, generate


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="write_iot_devices", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rows-per-device", type=int, default=200)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-edge-cases", action="store_true", help="every device trainable")
    parser.add_argument("--output", required=True, help="Parquet file to write")
    args = parser.parse_args(argv)
    frame = generate(args.devices, args.rows_per_device, args.seed, edge_cases=not args.no_edge_cases)
    frame.to_parquet(args.output, index=False)
    print(f"{len(frame)} readings of {frame[GROUP].nunique()} devices -> {args.output}")


if __name__ == "__main__":
    main()
