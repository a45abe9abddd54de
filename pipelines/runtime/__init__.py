"""Runtime plumbing: the data directory's writer lock (lock.py), dbt's child process (dbt_child.py), the Dagster
instance's configuration (instance.py), the run launcher, executor and dead-run repair (monitoring.py), and the
one adapter to Dagster's private modules (dagster_private.py). It imports only pipelines.lib of ours: the
webserver and the daemon load monitoring.py and dagster_private.py through dagster.yaml."""
