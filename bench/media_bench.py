"""Media processing benchmark: renditions per second per core, and peak memory per job.

    .venv/bin/python bench/media_bench.py [--jobs 8] [--no-video]

The main case is a 12-megapixel phone photo: 4032x3024 stored sideways with EXIF
orientation 6 and a GPS block, JPEG quality 92 (a real photo, Landscape_6.jpg,
enlarged, with sensor-like noise so the encoders do real work). Each job is the
whole `process_media` call: decode (JPEG at a reduced scale), orientation,
metadata drop, three widths in WebP and JPEG, placeholder.

- per core: one thread, jobs back to back; renditions / wall second (and / CPU second).
- all cores: a pool of one thread per core, as the media worker runs; renditions / wall
  second, then divided by the cores (Pillow releases the GIL while it decodes,
  resizes and encodes, so threads scale).
- peak memory: each job in a fresh process; the growth of its peak RSS (ru_maxrss)
  from just before the job, plus ffmpeg's own peak for video.

Writes bench/results/media_bench.json and bench/results/media_bench.md, and prints the table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image, ImageOps  # noqa: E402

from infra.media.processing import ProcessingLimits, process_media  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FIXTURES = ROOT / "tests" / "fixtures" / "images"
LIMITS = ProcessingLimits(job_seconds=600)


def phone_photo() -> bytes:
    """A 12 Mpx phone photo as a phone stores it: sensor-landscape pixels, EXIF orientation 6, GPS."""
    source = ImageOps.exif_transpose(Image.open(FIXTURES / "Landscape_6.jpg")).convert("RGB")  # 1800x1200
    w, h = source.size
    portrait = source.crop(((w - h * 3 // 4) // 2, 0, (w + h * 3 // 4) // 2, h))
    shown = portrait.resize((3024, 4032), Image.Resampling.LANCZOS)
    shown = Image.blend(shown, Image.effect_noise(shown.size, 24).convert("RGB"), 0.08)
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # 4032x3024, as the sensor saw it
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Phone", "Model 12", 6
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (43.0, 28.0, 2.81), "E", (11.0, 53.0, 6.45)
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def video(seconds: int = 10) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "phone.mp4"
        subprocess.run(
            [
                *("ffmpeg", "-nostdin", "-loglevel", "error"),
                *("-f", "lavfi", "-i", f"testsrc2=duration={seconds}:size=1920x1080:rate=30"),
                *("-f", "lavfi", "-i", f"sine=duration={seconds}"),
                *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"),
                str(path),
            ],
            check=True,
            timeout=300,
        )
        return path.read_bytes()


def cases(with_video: bool) -> dict[str, bytes]:
    found = {
        "phone photo 12 Mpx JPEG (4032x3024, orientation 6, GPS)": phone_photo(),
        "photo 1.2 Mpx JPEG (Landscape_6.jpg)": (FIXTURES / "Landscape_6.jpg").read_bytes(),
        "PNG with alpha 200x150 (transparent.png)": (FIXTURES / "transparent.png").read_bytes(),
        "animated GIF 31 frames (chi.gif)": (FIXTURES / "chi.gif").read_bytes(),
    }
    if with_video:
        found["video 10 s 1080p30 H.264 -> 720p"] = video()
    return found


def _high_water_mib() -> float:
    """This process's peak RSS (VmHWM). Unlike ru_maxrss it starts afresh at exec, so a
    child does not inherit the peak of the process that started it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_job_peak(data_path: str) -> dict[str, float]:
    """Run in a fresh process: the peak memory one job adds, and the peak of each ffmpeg run."""
    from infra.media.processing import video as video_module

    data = Path(data_path).read_bytes()
    ffmpeg_log = Path(data_path + ".ffmpeg-peaks")
    bounded = video_module._bounded
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists():  # measure each ffmpeg/ffprobe run's own peak (KiB), appended to a file

        def timed(cmd: list[str], limits: ProcessingLimits) -> list[str]:
            return [str(gnu_time), "-f", "%M", "-a", "-o", str(ffmpeg_log), *bounded(cmd, limits)]

        video_module._bounded = timed  # type: ignore[assignment]
    before = _high_water_mib()
    started = time.perf_counter()
    result = process_media(data, LIMITS)
    seconds = time.perf_counter() - started
    after = _high_water_mib()
    peaks = [int(v) / 1024 for v in ffmpeg_log.read_text().split()] if ffmpeg_log.exists() else [0.0]
    ffmpeg_log.unlink(missing_ok=True)
    return {
        "peak_mib": after - before,
        "process_peak_mib": after,
        "ffmpeg_peak_mib": max(peaks),
        "seconds": seconds,
        "renditions": len(result.renditions),
    }


def measure_peak(data: bytes, runs: int = 3) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(data)
        f.flush()
        samples = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, __file__, "--one-job", f.name], check=True, capture_output=True, timeout=600
            ).stdout
            samples.append(json.loads(out))
    return {key: max(s[key] for s in samples) for key in samples[0]}


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (ffmpeg)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def measure_speed(data: bytes, jobs: int, threads: int) -> dict[str, float]:
    process_media(data, LIMITS)  # warm up: codecs, caches
    cpu0, started = _cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda _: process_media(data, LIMITS), range(jobs)))
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu0
    renditions = sum(len(r.renditions) for r in results)
    return {
        "jobs": jobs,
        "threads": threads,
        "renditions_per_job": renditions / jobs,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "ms_per_job": 1000 * wall / jobs * threads,
        "renditions_per_second": renditions / wall,
        "renditions_per_second_per_core": renditions / wall / threads,
        "renditions_per_cpu_second": renditions / cpu if cpu else 0.0,
    }


def table(rows: list[dict[str, Any]], cores: int) -> str:
    head = (
        "| case | input | renditions/job | ms/job, 1 thread | renditions/s/core, 1 thread (wall) "
        f"| renditions per CPU-second | renditions/s/core, {cores} threads (wall) | peak MiB/job (+ ffmpeg) |"
    )
    lines = [head, "|" + " --- |" * 8]
    for r in rows:
        one, all_, peak = r["one_core"], r["all_cores"], r["peak"]
        ffmpeg = f" (+ {peak['ffmpeg_peak_mib']:.0f})" if peak.get("ffmpeg_peak_mib") else ""
        lines.append(
            f"| {r['case']} | {r['input_bytes'] / 1e6:.2f} MB | {one['renditions_per_job']:.0f} "
            f"| {one['ms_per_job']:.0f} | {one['renditions_per_second_per_core']:.1f} "
            f"| {one['renditions_per_cpu_second']:.1f} | {all_['renditions_per_second_per_core']:.1f} "
            f"| {peak['peak_mib']:.0f}{ffmpeg} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=8, help="jobs per speed measurement")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--one-job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_job:
        print(json.dumps(one_job_peak(args.one_job)))
        return 0
    cores = os.cpu_count() or 1
    with_video = not args.no_video and subprocess.run(["which", "ffmpeg"], capture_output=True).returncode == 0
    rows = []
    for name, data in cases(with_video).items():
        jobs = max(2, args.jobs // 4) if name.startswith("video") else args.jobs
        print(f"… {name}", file=sys.stderr)
        rows.append(
            {
                "case": name,
                "input_bytes": len(data),
                "one_core": measure_speed(data, jobs, 1),
                "all_cores": measure_speed(data, max(jobs, cores), cores),
                "peak": measure_peak(data),
            }
        )
    report = {
        "benchmark": "media processing (infra/media/processing.process_media)",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": cores,
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Other processes share the machine: wall-clock rates drop when this is above the cores.
            "load_average_1m_at_end": os.getloadavg()[0],
        },
        "pillow": Image.__version__,  # type: ignore[attr-defined]
        "limits": LIMITS.__dict__,
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "media_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    text = table(rows, cores)
    load = report["machine"]["load_average_1m_at_end"]  # type: ignore[index]
    (RESULTS / "media_bench.md").write_text(
        f"# Media processing benchmark\n\n{report['when']}, {cores} cores (load average {load:.1f}), "
        f"Pillow {report['pillow']}. Made by bench/media_bench.py; see its docstring for what is measured.\n\n"
        f"{text}\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
