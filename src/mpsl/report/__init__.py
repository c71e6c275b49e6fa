"""Run reports: summary.json, events.jsonl and the pipeline Gantt chart."""
