"""The in-process worker: the scheduled jobs (escalation, auto-close, delivery, retention) run
by `helpdesk serve` and `helpdesk worker` through the one per-workspace job runner."""
