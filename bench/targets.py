"""The table of targets, from the JSON results the other benchmarks left in the work dir.

Run it after model_latency.py, end_to_end.py and bulk_classify.py (each with its default
section); it rewrites the targets section of docs/benchmarks.md.

    python bench/targets.py
"""

from __future__ import annotations

import json

import _common as common


def load(name: str) -> dict:
    path = common.WORK_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def upload_rows(data: dict) -> list[list[str]]:
    """Issue 22's targets, from bench/upload_cpu.py: each of its measurements takes the ratio
    within itself (the worker and the plain program on the same images, minutes apart at
    most), so the verdict is on the worst of this tree's measurements; PostgreSQL's CPU per
    upload is compared with the BENCH_APP_DIR checkout measured in the same pass (mean of each)."""
    runs = data.get("runs", [])
    rows = []
    for database in ("sqlite", "postgres"):
        ratios = [r["ratio"] for r in runs if r["subject"] == "today" and r["database"] == database]
        if ratios:
            rows.append(
                [
                    (
                        "worker CPU per single-image upload / plain decode + resize + model program CPU "
                        f"per image, {database}, 4 clients"
                    ),
                    " / ".join(f"{ratio:.2f}x" for ratio in ratios) + " (each measurement)",
                    "<= 1.8x",
                    verdict(max(ratios) <= 1.8),
                ]
            )

    def postgres_cpu(subject: str) -> list[float]:
        return [
            r["cpu_ms_per_upload"]["PostgreSQL backends"]
            for r in runs
            if r["subject"] == subject and r["database"] == "postgres"
        ]

    today, before = postgres_cpu("today"), postgres_cpu("before")
    if today:
        mean_today = sum(today) / len(today)
        statements = sorted({c for r in runs if r["subject"] == "today" for c in r["sql"]["counts"]})
        if before:
            mean_before = sum(before) / len(before)
            measured = f"{mean_today:.2f} ms / {mean_before:.2f} ms (BENCH_APP_DIR, same pass)"
            met = verdict(mean_today <= mean_before)
        else:
            measured, met = f"{mean_today:.2f} ms (no BENCH_APP_DIR run to compare)", "not compared"
        rows.append(
            [
                (
                    "PostgreSQL backend CPU per upload, this tree / the older checkout "
                    f"({'/'.join(map(str, statements))} SQL statements per upload)"
                ),
                measured,
                "<= the older checkout's",
                met,
            ]
        )
    return rows


def main() -> None:
    latency, e2e, bulk = (load(n) for n in ("model_latency", "end_to_end", "bulk_classify"))
    rows = []
    if latency:
        res = latency["results"]
        ours = res["ours"]["1"]["single_ms"]["p50"]
        for key, label in (("poc_a", "PoC (a), tf.lite.Interpreter"), ("poc_b", "PoC (b), ai-edge-litert")):
            ratio = res[key]["1"]["single_ms"]["p50"] / ours
            rows.append(
                [
                    f"single-image latency at 1 thread, {label} / ours",
                    f"{res[key]['1']['single_ms']['p50']:.2f} ms / {ours:.2f} ms = {ratio:.1f}x",
                    ">= 3x",
                    verdict(ratio >= 3),
                ]
            )
        poc_rss = res["poc_a"]["1"]["peak_rss_mb"]
        serving = latency["serving"]["peak_rss_mb"]
        rows.append(
            [
                "peak RSS, PoC (a) process / our Django serving process with the model loaded",
                f"{poc_rss:.0f} MB / {serving:.0f} MB = {poc_rss / serving:.1f}x",
                ">= 3x",
                verdict(poc_rss / serving >= 3),
            ]
        )
    for data, config in ((e2e, "the app's default settings"),):
        if not data:
            continue
        level = {entry["concurrency"]: entry for entry in data["levels"]}
        floor = data["floor"]["decode_plus_inference"]
        p50 = level[1]["latency_ms"]["p50"]
        rows.append(
            [
                f"API overhead: end-to-end p50 at concurrency 1 / raw decode + inference p50, {config}",
                f"{p50:.1f} ms / {floor['p50']:.2f} ms = {data['overhead_ratio']:.1f}x",
                "<= 2x",
                verdict(data["overhead_ratio"] <= 2),
            ]
        )
        raw = 2 * 1000 / floor["mean"]
        rows.append(
            [
                f"req/s at concurrency 8 / 2 workers of raw decode + inference, {config}",
                f"{level[8]['requests_per_s']:.0f} / {raw:.0f} = {data['throughput_share']:.0%}",
                ">= 80%",
                verdict(data["throughput_share"] >= 0.8),
            ]
        )
        worst = max(data["worker_peak_rss_mb"])
        rows.append(
            [
                f"peak RSS per gunicorn worker with the model loaded, {config}",
                f"{worst:.0f} MB (largest of {len(data['worker_peak_rss_mb'])})",
                "<= 150 MB",
                verdict(worst <= 150),
            ]
        )
    if bulk.get("best_floor"):
        rate = bulk["runs"]["without --save"]["images_per_s_after_startup"]
        for reference, label in (
            ("best_floor", "the model alone at its fastest on all cores, files already decoded"),
            ("program_floor", "a plain program that decodes the files and runs the model on all cores"),
        ):
            share = rate / bulk[reference]
            rows.append(
                [
                    f"`classify` 1,000 JPEGs after start-up / {label}",
                    f"{rate:.0f} / {bulk[reference]:.0f} images/s = {share:.0%}",
                    ">= 80%",
                    verdict(share >= 0.8),
                ]
            )
    rows += upload_rows(load("upload_cpu"))
    machine = latency.get("machine") or e2e.get("machine") or common.machine()
    busy = sorted({line.split(":", 1)[1].strip() for d in (latency, e2e, bulk) for line in d.get("busy", [])})
    body = "\n".join(
        [
            common.machine_line(machine),
            *(["CPU contention during the runs: " + "; ".join(busy)] if busy else []),
            "",
            common.table(["target", "measured (same run)", "target", "verdict"], rows),
        ]
    )
    common.write_section("targets", body)
    common.say(body)


if __name__ == "__main__":
    main()
