"""`python -m tests.bench.peak ARGS...`: `conceptfreq ARGS...`, then this process's peak resident
memory (VmHWM, MiB) written to the file named by $CONCEPTFREQ_BENCH_PEAK_FILE. Not ru_maxrss: Linux
carries that over from the parent across fork+exec, so a child of a big benchmark process would
report the parent's peak."""

import os
import sys

from conceptfreq.cli import main


def peak_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    finally:
        if os.environ.get("CONCEPTFREQ_BENCH_PEAK_FILE"):
            with open(os.environ["CONCEPTFREQ_BENCH_PEAK_FILE"], "w") as out:
                out.write(f"{peak_mib():.1f}")
    sys.exit(code)
