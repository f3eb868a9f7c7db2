"""Writes audio2face-dashboard.json (Grafana, Prometheus data source) from the panel
list below, so the JSON stays consistent: python deploy/grafana/make_dashboard.py"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("audio2face-dashboard.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'namespace=~"$namespace"'

# (title, unit, [(PromQL expression, legend)]); two panels per row, in this order.
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Open streams (all replicas)", "short", [
        (f"sum(a2f_active_streams{{{SEL}}})", "open streams"),
        (f'sum(a2f_limit{{{SEL}, name="max_streams"}})', "capacity (sum of max_streams)"),
    ]),
    ("Open streams per pod", "short", [
        (f"sum by (pod) (a2f_active_streams{{{SEL}}})", "{{pod}}"),
    ]),
    ("Frame latency percentiles", "s", [
        (f"histogram_quantile({q}, sum by (le) (rate(a2f_frame_latency_seconds_bucket{{{SEL}}}[$__rate_interval])))", f"p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ]),
    ("Inference time percentiles, by engine", "s", [
        (f"histogram_quantile({q}, sum by (le, engine) (rate(a2f_inference_seconds_bucket{{{SEL}}}[$__rate_interval])))", f"p{int(q * 100)} {{{{engine}}}}")
        for q in (0.5, 0.95)
    ]),
    ("Refusals per second, by limit", "reqps", [
        (f"sum by (limit) (rate(a2f_refusals_total{{{SEL}}}[$__rate_interval]))", "{{limit}}"),
    ]),
    ("Errors per second, by kind", "reqps", [
        (f"sum by (kind) (rate(a2f_errors_total{{{SEL}}}[$__rate_interval]))", "{{kind}}"),
    ]),
    ("Streams ended per second, by outcome", "reqps", [
        (f"sum by (outcome) (rate(a2f_streams_total{{{SEL}}}[$__rate_interval]))", "{{outcome}}"),
    ]),
    ("Frames sent and audio received per second", "short", [
        (f"sum(rate(a2f_frames_out_total{{{SEL}}}[$__rate_interval]))", "frames/s"),
        (f"sum(rate(a2f_audio_seconds_in_total{{{SEL}}}[$__rate_interval]))", "audio s/s"),
    ]),
    ("Inference queue depth and batch size", "short", [
        (f"sum by (pod) (a2f_queue_depth{{{SEL}}})", "queued {{pod}}"),
        (f"sum(rate(a2f_batch_size_sum{{{SEL}}}[$__rate_interval])) / sum(rate(a2f_batch_size_count{{{SEL}}}[$__rate_interval]))", "mean batch"),
    ]),
]  # fmt: skip


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict:
    return {
        "uid": "audio2face",
        "title": "audio2face",
        "tags": ["audio2face"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "namespace",
                    "type": "query",
                    "datasource": DS,
                    "query": "label_values(a2f_active_streams, namespace)",
                    "includeAll": True,
                    "multi": True,
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": [panel(i, *p) for i, p in enumerate(PANELS)],
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(dashboard(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
