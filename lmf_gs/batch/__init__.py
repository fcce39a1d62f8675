"""``lmf-gs batch``: one submitit job per video (train, refine, evaluate), a live view of the
jobs, and the mean table over videos (the paper's Table 1).

- `jobs`: the per-video job and its steps (resumable, requeued on a timeout notice);
- `launch`: submitit executors, local (with a cap on parallel jobs) or SLURM (a job array);
- `status`: the live table of the jobs;
- `table`: the per-video metrics and their official mean.
"""
