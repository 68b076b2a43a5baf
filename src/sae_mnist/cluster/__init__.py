"""Run the pipeline on a Slurm cluster: every stage a job, one shared DVC cache, one MLflow tracking server.

    python -m sae_mnist.cluster submit [--dry-run] [--partition P]   (make slurm)
    python -m sae_mnist.cluster status [--run DIR] [--wait]
    python -m sae_mnist.cluster collect [--run DIR]

See run.py for how a run goes, plan.py for what it runs, and docs/cluster.md.
"""
